"""Reading, cancelling and deleting a user's MediaJobs (blocking: the Kubernetes client).

The API's Kubernetes access for jobs: get, list and delete MediaJobs in its namespace
(create too, for the upload endpoints).

A job list never reads all of a user's MediaJobs in full: it lists their metadata alone
(name, creation time, deletion), selected by owner, job type and phase labels, to count and
order them, then reads just the page's MediaJobs, side by side.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import msgspec
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from mediaflow_api.jobs.model import (
    Job,
    JobPage,
    JobStatus,
    JobType,
    Listed,
    is_deleted,
    is_job_id,
    is_owned_by,
    list_selectors,
    page_names,
    to_job,
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


class _Item(msgspec.Struct):
    metadata: _Metadata


class _MetadataList(msgspec.Struct):
    items: list[_Item] | None  # null when nothing matches


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

    def _read(self, owner: str, job_id: str) -> dict[str, Any]:
        """The MediaJob of `owner`'s job, or a 404 (also for other users' and malformed ids)."""
        if not is_job_id(job_id):
            raise job_not_found(job_id)
        try:
            mediajob = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, job_id
            )
        except ApiException as error:
            if error.status == 404:
                raise job_not_found(job_id) from error
            raise
        if not is_owned_by(mediajob, owner) or is_deleted(mediajob):
            raise job_not_found(job_id)
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
        selector, unlabelled_selector = list_selectors(owner, job_type, status)
        if unlabelled_selector is None or status is None:
            items = self._list_metadata(selector)
        else:
            labelled = _READS.submit(self._list_metadata, selector)
            unlabelled = self._list_full(unlabelled_selector)
            items = labelled.result() + unlabelled_matching(unlabelled, status)
        names, total = page_names(items, page, page_size)
        jobs = [
            to_job(mj, self._sign)
            for mj in _READS.map(self._get_or_none, names)
            # Deleted (or being deleted) since the list: gone for its owner.
            if mj is not None and is_owned_by(mj, owner) and not is_deleted(mj)
        ]
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
            Listed(
                i.metadata.name,
                i.metadata.creationTimestamp,
                i.metadata.deletionTimestamp is not None,
            )
            for i in _decode_metadata_list(body).items or []
        ]

    def _list_full(self, selector: str) -> list[dict[str, Any]]:
        return self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, label_selector=selector
        )["items"]

    def _get_or_none(self, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def get(self, owner: str, job_id: str) -> Job:
        return to_job(self._read(owner, job_id), self._sign)

    def delete(self, owner: str, job_id: str) -> None:
        """Delete one of `owner`'s jobs, whatever its state: the operator's finalizer stops
        its pod (a pending or processing job is thereby cancelled) and deletes its result
        and its upload. From this answer on the job is gone for its owner (reads treat a
        MediaJob being deleted as absent), even while the finalizer still runs."""
        self._read(owner, job_id)
        self._delete(job_id)

    def _delete(self, job_id: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, job_id
            )
        except ApiException as error:
            if error.status != 404:  # deleted concurrently: done anyway
                raise
