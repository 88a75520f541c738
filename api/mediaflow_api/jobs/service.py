"""Reading, cancelling and deleting a user's MediaJobs (blocking: the Kubernetes client).

The API's Kubernetes access for jobs: get, list and delete MediaJobs in its namespace
(create too, for the upload endpoints).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from mediaflow_api.jobs.model import (
    Job,
    JobPage,
    JobStatus,
    JobType,
    active_count,
    is_deleted,
    is_job_id,
    is_owned_by,
    owner_selector,
    page_of,
    to_job,
)
from mediaflow_api.problems import Problem
from mediaflow_core.constants import GROUP, PLURAL, VERSION
from mediaflow_core.storage import Storage


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
        mediajobs = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, label_selector=owner_selector(owner, job_type)
        )["items"]
        return page_of(mediajobs, page, page_size, status, self._sign)

    def active_count(self, owner: str) -> int:
        """How many of `owner`'s jobs are pending or processing (read afresh: the MediaJobs
        are labelled by owner, their phase is in the status, so the owner's MediaJobs are
        listed and counted)."""
        mediajobs = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, label_selector=owner_selector(owner)
        )["items"]
        return active_count(mediajobs)

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
