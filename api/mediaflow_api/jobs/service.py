"""Reading, cancelling and deleting a user's MediaJobs (blocking: the Kubernetes client).

The API's Kubernetes access for jobs: get, list and delete MediaJobs in its namespace
(create too, for the upload endpoints).

A job list never reads all of a user's MediaJobs in full: it lists their metadata alone
(name, creation time, deletion, labels: a batch MediaJob's labels name its files' jobs),
selected by owner, job type and phase labels, to count and order them, then reads just the
page's MediaJobs, side by side. A status filter reads the batch MediaJobs that may hold a
job of that status in full (a file's status is its item's, which no label says).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import msgspec
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from mediaflow_api.jobs import reads
from mediaflow_api.jobs.model import (
    Job,
    JobPage,
    JobStatus,
    JobType,
    Listed,
    batch_jobs,
    find_job,
    is_batch,
    is_deleted,
    is_job_id,
    is_owned_by,
    item_removal_patch,
    job_label,
    list_selectors,
    listed_jobs,
    owner_selector,
    page_of,
    unlabelled_matching,
)
from mediaflow_api.problems import Problem
from mediaflow_core.constants import GROUP, PLURAL, VERSION
from mediaflow_core.storage import Storage

# A metadata-only list: each item is a PartialObjectMetadata, without spec and status.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
# The reads of one list request (the page's MediaJobs) run side by side on these threads,
# shared by the process; as many as the Kubernetes client keeps connections (cpu_count * 5
# by default; this machine's 2 cores: 10), so they reuse them.
_READS = ThreadPoolExecutor(max_workers=10, thread_name_prefix="job-reads")


class _Metadata(msgspec.Struct):
    name: str
    creationTimestamp: datetime  # noqa: N815 - the Kubernetes field
    deletionTimestamp: datetime | None = None  # noqa: N815 - the Kubernetes field
    labels: dict[str, str] | None = None


class _Item(msgspec.Struct):
    metadata: _Metadata


class _MetadataList(msgspec.Struct):
    items: list[_Item] | None  # null when nothing matches


# Tries of a delete of one file's job that lost a race with another change of its batch
# MediaJob (the patch is conditioned on the resourceVersion read).
REMOVE_TRIES = 5

# Decodes only the fields above: the rest (managed fields, annotations: most of each
# item's bytes) is skipped without building objects (measured: 4 ms for 2,000 items,
# where json.loads took 170 ms; bench/jobs_list.py).
_decode_metadata_list = msgspec.json.Decoder(_MetadataList).decode


def job_not_found(job_id: str) -> Problem:
    return Problem(
        404,
        "job-not-found",
        "Job not found",
        f"You have no job {job_id}; list your jobs at /api/v1/jobs.",
    )


class JobService:
    """One user's jobs in one namespace."""

    def __init__(self, api: kube.ApiClient, namespace: str, storage: Storage) -> None:
        self.api = api
        self.custom = kube.CustomObjectsApi(api)
        self.namespace = namespace
        self.storage = storage

    def _sign(self, key: str, filename: str) -> str:
        return self.storage.result_url(key, filename)[0]

    def _read(self, owner: str, job_id: str, fresh: bool = False) -> dict[str, Any]:
        """The MediaJob of `owner`'s job: the one named by the job id, or the batch
        MediaJob labelled with it; a 404 for other users' and malformed ids. From the API
        server's cache (reads.py) unless `fresh`."""
        if not is_job_id(job_id):
            raise job_not_found(job_id)
        mediajob = self._get_or_none(reads.BATCH_OF.get(job_id) or job_id, fresh)
        if mediajob is None:
            selector = f"{owner_selector(owner)},{job_label(job_id)}"
            found = self._list_full(selector)
            mediajob = found[0] if found else None
            if mediajob is not None:
                reads.BATCH_OF.put(job_id, mediajob["metadata"]["name"])
        if mediajob is None or not is_owned_by(mediajob, owner) or is_deleted(mediajob):
            raise job_not_found(job_id)
        if is_batch(mediajob) and job_id not in batch_jobs(mediajob["metadata"].get("labels")):
            raise job_not_found(job_id)  # that file's job was deleted
        return mediajob

    def list(
        self,
        owner: str,
        page: int,
        page_size: int,
        status: JobStatus | None,
        job_type: JobType | None,
    ) -> JobPage:
        """Page `page` of `owner`'s jobs, newest first, of one status and type when given."""
        selectors = list_selectors(owner, job_type, status)
        if status is None:
            items = self._list_metadata(selectors.metadata)
        else:
            labelled = _READS.submit(self._list_metadata, selectors.metadata)
            full = [_READS.submit(self._list_full, selector) for selector in selectors.full]
            read = [mj for future in full for mj in future.result()]
            items = labelled.result() + unlabelled_matching(read, status)
        listed, total = page_of(items, page, page_size)
        names = list(dict.fromkeys(job.mediajob_name for job in listed))
        mediajobs = dict(zip(names, _READS.map(self._get_or_none, names), strict=True))
        jobs = []
        for entry in listed:
            mj = mediajobs[entry.mediajob_name]
            # Deleted (or being deleted) since the list: gone for its owner.
            if mj is None or not is_owned_by(mj, owner) or is_deleted(mj):
                continue
            job = find_job(mj, entry.name, self._sign)
            if job is not None:  # None: a file's job deleted since the list
                jobs.append(job)
        return JobPage(items=jobs, total=total, page=page, page_size=page_size)

    def _list_metadata(self, selector: str) -> list[Listed]:
        """The MediaJobs of `selector`, from their metadata alone (a PartialObjectMetadata
        list: no spec, no status, about a third less to send and nothing to decode but
        three fields)."""
        request = self.api.param_serialize(
            "GET",
            f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{PLURAL}",
            query_params=[("labelSelector", selector)],
            header_params={"Accept": METADATA_LIST},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request[:3])
        response.read()
        body = self.api.response_deserialize(response, {"200": "bytearray"}).data
        return [
            job
            for i in _decode_metadata_list(body).items or []
            for job in listed_jobs(
                i.metadata.name,
                i.metadata.creationTimestamp,
                i.metadata.deletionTimestamp is not None,
                i.metadata.labels,
            )
        ]

    def _list_full(self, selector: str) -> list[dict[str, Any]]:
        return self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, label_selector=selector
        )["items"]

    def _get_or_none(self, name: str, fresh: bool = False) -> dict[str, Any] | None:
        return reads.get_mediajob(self.api, self.namespace, name, fresh)

    def get(self, owner: str, job_id: str) -> Job:
        job = find_job(self._read(owner, job_id), job_id, self._sign)
        if job is None:
            raise job_not_found(job_id)
        return job

    def delete(self, owner: str, job_id: str) -> None:
        """Delete one of `owner`'s jobs, whatever its state: the operator's finalizer stops
        its pod (a pending or processing job is thereby cancelled) and deletes its result
        and its upload. From this answer on the job is gone for its owner (reads treat a
        MediaJob being deleted as absent), even while the finalizer still runs.

        One file's job of a batch: its label goes and its input is cancelled (the operator
        stops it and deletes its files); the last one's delete deletes the MediaJob."""
        for _ in range(REMOVE_TRIES):
            # From etcd: the patch below is conditioned on the version read.
            mediajob = self._read(owner, job_id, fresh=True)
            name = mediajob["metadata"]["name"]
            jobs = batch_jobs(mediajob["metadata"].get("labels"))
            if not is_batch(mediajob) or len(jobs) == 1:
                self._delete(name)
                return
            try:
                patched = self.custom.patch_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, name,
                    item_removal_patch(mediajob, job_id),
                )  # fmt: skip
                reads.wrote(name, patched)
            except ApiException as error:
                if error.status == 404:  # the whole MediaJob went meanwhile: so did its jobs
                    return
                if error.status != 409:
                    raise
            else:
                return
        raise Problem(
            409,
            "job-busy",
            "The job is changing",
            f"Job {job_id} changed while it was being deleted; try again.",
        )

    def _delete(self, name: str) -> None:
        try:
            answer = self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except ApiException as error:
            if error.status != 404:  # deleted concurrently: done anyway
                raise
            answer = None
        reads.wrote(name, answer)
