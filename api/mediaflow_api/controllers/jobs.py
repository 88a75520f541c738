"""`/api/v1/jobs`: the user's jobs, one MediaJob each."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from mediaflow_api.auth.schemas import UserView
from mediaflow_api.envelope import Envelope, envelope
from mediaflow_api.jobs.model import MAX_PAGE_SIZE, Job, JobPage, JobStatus, JobType
from mediaflow_api.jobs.service import JobService
from mediaflow_api.problems import problem_responses


class JobsController(Controller):
    path = "/jobs"
    tags = ["jobs"]  # noqa: RUF012 - Litestar reads this class attribute
    security = [{"BearerToken": []}]  # noqa: RUF012 - Litestar reads this class attribute

    # Sync handlers in worker threads: the Kubernetes client blocks.
    @get(
        operation_id="listJobs",
        summary="Your jobs, newest first",
        description="One page of your jobs with the total, optionally of one status or type.",
        responses=problem_responses(400, 401, 422),
        sync_to_thread=True,
    )
    def list_jobs(
        self,
        current_user: NamedDependency[UserView],
        job_service: NamedDependency[JobService],
        page: Annotated[int, QueryParameter(ge=1, description="Page number, from 1.")] = 1,
        page_size: Annotated[
            int, QueryParameter(ge=1, le=MAX_PAGE_SIZE, description="Jobs per page.")
        ] = 20,
        status: Annotated[
            JobStatus | None, QueryParameter(description="Only jobs with this status.")
        ] = None,
        job_type: Annotated[
            JobType | None, QueryParameter(description="Only jobs of this type.")
        ] = None,
    ) -> Envelope[JobPage]:
        return envelope(job_service.list(current_user.id, page, page_size, status, job_type))

    @get(
        "/{job_id:str}",
        operation_id="getJob",
        summary="One of your jobs",
        description="When completed, `result_url` is a freshly presigned download URL; when "
        "failed, `error` says why.",
        responses=problem_responses(400, 401, 404),
        sync_to_thread=True,
    )
    def get_job(
        self,
        job_id: FromPath[str],
        current_user: NamedDependency[UserView],
        job_service: NamedDependency[JobService],
    ) -> Envelope[Job]:
        return envelope(job_service.get(current_user.id, job_id))

    @delete(
        "/{job_id:str}",
        operation_id="deleteJob",
        summary="Delete one of your jobs",
        description="Deletes the job whatever its status, as the previous service did: a "
        "pending or processing job is stopped, its upload and result are deleted. Answers 204 "
        "without a body; from then on the job is gone for you (GET answers 404, the list "
        "leaves it out), while the cluster finishes removing its pod and files.",
        status_code=HTTP_204_NO_CONTENT,
        responses=problem_responses(
            400,
            401,
            404,
            409,
            meanings={409: "One file's job of a batch changed too often meanwhile: try again."},
        ),
        sync_to_thread=True,
    )
    def delete_job(
        self,
        job_id: FromPath[str],
        current_user: NamedDependency[UserView],
        job_service: NamedDependency[JobService],
    ) -> None:
        job_service.delete(current_user.id, job_id)
