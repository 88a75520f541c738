"""Reading, cancelling and deleting a user's MediaJobs (blocking: the Kubernetes client).

The API's Kubernetes access for jobs: get, list, patch and delete MediaJobs in its namespace
(create too, for the upload endpoints).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from mediaflow_api.jobs.model import (
    ACTIVE,
    ANNOTATION_CANCEL,
    Job,
    JobPage,
    JobStatus,
    JobType,
    is_job_id,
    is_owned_by,
    job_status,
    owner_selector,
    page_of,
    to_job,
)
from mediaflow_api.problems import Problem
from mediaflow_operator.resources.constants import GROUP, PLURAL, VERSION
from mediaflow_operator.storage import Storage

# A status write by the operator between our read and our patch: re-read and try again.
MAX_PATCH_ATTEMPTS = 5


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
        if not is_owned_by(mediajob, owner):
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

    def get(self, owner: str, job_id: str) -> Job:
        return to_job(self._read(owner, job_id), self._sign)

    def cancel_or_delete(self, owner: str, job_id: str) -> tuple[Job, bool]:
        """Cancel a pending or running job (the operator stops it); delete a finished one
        (the operator's finalizer deletes its result and its input). Answers the job and
        whether it was deleted."""
        for _ in range(MAX_PATCH_ATTEMPTS):
            mediajob = self._read(owner, job_id)
            if job_status(mediajob) not in ACTIVE:
                self._delete(job_id)
                return to_job(mediajob), True
            # The resourceVersion makes the patch fail if the job finished meanwhile: a
            # cancel annotation on a finished MediaJob would do nothing.
            patch = {
                "metadata": {
                    "resourceVersion": mediajob["metadata"]["resourceVersion"],
                    "annotations": {ANNOTATION_CANCEL: "true"},
                }
            }
            try:
                patched = self.custom.patch_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, job_id, patch
                )
            except ApiException as error:
                if error.status == 409:
                    continue
                if error.status == 404:
                    raise job_not_found(job_id) from error
                raise
            return to_job(patched).model_copy(update={"status": JobStatus.CANCELLED}), False
        raise Problem(
            503,
            "busy",
            "The job is changing",
            f"Job {job_id} changed too often while being cancelled; retry in a moment.",
        )

    def _delete(self, job_id: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, job_id
            )
        except ApiException as error:
            if error.status != 404:  # deleted concurrently: done anyway
                raise
