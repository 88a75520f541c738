"""`/api/v1/image/*` and `/api/v1/video/*`: one handler per upload endpoint of `ENDPOINTS`.

Each answers 202 with the job(s) it queued; the work happens in the MediaJob's pod.
"""

import time

from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_202_ACCEPTED

from mediaflow_api.auth.ratelimit import TokenBucketLimiter, retry_after_header
from mediaflow_api.auth.schemas import UserView
from mediaflow_api.envelope import Envelope, envelope
from mediaflow_api.metrics import RATE_LIMITED, UPLOAD_BYTES, UPLOAD_SECONDS, UPLOADS_REJECTED
from mediaflow_api.problems import Problem
from mediaflow_api.request_context import context_of
from mediaflow_api.uploads.forms import ENDPOINTS, RateGroup, UploadEndpoint
from mediaflow_api.uploads.openapi import error_responses, upload_operation
from mediaflow_api.uploads.quota import ActiveJobQuota
from mediaflow_api.uploads.service import (
    QueuedBatch,
    QueuedBatchJob,
    QueuedJob,
    StoredFile,
    UploadService,
)
from mediaflow_api.uploads.slots import UploadSlots, with_idle_timeout

API_PREFIX = "/api/v1"

SUMMARIES = {
    "/image/convert/webp": "Convert an image to WebP",
    "/image/convert/avif": "Convert an image to AVIF",
    "/image/convert/format": "Convert an image to another format",
    "/image/resize": "Resize an image",
    "/image/batch/convert/webp": "Convert up to 20 images to WebP",
    "/image/batch/convert/avif": "Convert up to 20 images to AVIF",
    "/image/batch/convert/format": "Convert up to 20 images to another format",
    "/image/renditions": "Make several renditions of an image (formats, sizes) from one decode",
    "/video/convert": "Convert a video to another container or codec",
    "/video/rotate": "Rotate a video",
    "/video/resize": "Resize a video",
    "/video/trim": "Cut a part out of a video",
    "/video/thumbnail": "Take one frame of a video as an image",
}


async def _submit(
    endpoint: UploadEndpoint, request: Request, user: UserView, service: UploadService
) -> list[StoredFile]:
    """Receive the upload; counted in the upload metrics (accepted: bytes and time by
    kind; refused: by the problem's slug)."""
    started = time.perf_counter()
    try:
        stored = await _receive(endpoint, request, user, service)
    except Problem as problem:
        UPLOADS_REJECTED.labels(reason=problem.kind).inc()
        raise
    kind = endpoint.kind.value
    UPLOAD_BYTES.labels(kind=kind).inc(sum(file.size for file in stored))
    UPLOAD_SECONDS.labels(kind=kind).observe(time.perf_counter() - started)
    return stored


async def _receive(
    endpoint: UploadEndpoint, request: Request, user: UserView, service: UploadService
) -> list[StoredFile]:
    limiters: dict[RateGroup, TokenBucketLimiter] = request.app.state.upload_limiters
    if wait := limiters[endpoint.rate_group].acquire(user.id):
        RATE_LIMITED.labels(limit=f"upload-{endpoint.rate_group.value}").inc()
        retry_after = retry_after_header(wait)
        raise Problem(
            429,
            "rate-limited",
            "Too many uploads",
            f"You have used up your {endpoint.rate_group.value} uploads for now; try again in "
            f"{retry_after} seconds.",
            headers={"Retry-After": retry_after},
        )
    service.check_announced_length(endpoint, request.headers.get("content-length"))
    settings = service.settings
    slots: UploadSlots = request.app.state.upload_slots
    with slots.hold(user.id) as upload:
        quota = ActiveJobQuota(
            settings.max_active_jobs_per_user,
            lambda: service.count_active_jobs(user.id),
            upload.uploads.creating,
        )
        body = with_idle_timeout(request.stream(), settings.upload_idle_timeout_seconds, upload)
        return await service.receive(
            endpoint,
            user.id,
            request.headers.get("content-type"),
            body,
            quota,
            request_id=context_of(request.scope).request_id,
        )


def _single(endpoint: UploadEndpoint) -> HTTPRouteHandler:
    async def upload(
        request: Request,
        current_user: NamedDependency[UserView],
        upload_service: NamedDependency[UploadService],
    ) -> Response[Envelope[QueuedJob]]:
        (stored,) = await _submit(endpoint, request, current_user, upload_service)
        return Response(
            envelope(QueuedJob(job_id=stored.job_id), "Job queued"),
            status_code=HTTP_202_ACCEPTED,
            headers={"Location": f"{API_PREFIX}/jobs/{stored.job_id}"},
        )

    return _route(endpoint, upload)


def _batch(endpoint: UploadEndpoint) -> HTTPRouteHandler:
    async def upload(
        request: Request,
        current_user: NamedDependency[UserView],
        upload_service: NamedDependency[UploadService],
    ) -> Response[Envelope[QueuedBatch]]:
        stored = await _submit(endpoint, request, current_user, upload_service)
        jobs = [QueuedBatchJob(job_id=s.job_id, filename=s.filename) for s in stored]
        return Response(
            envelope(QueuedBatch(jobs=jobs, total=len(jobs)), f"{len(jobs)} jobs queued"),
            status_code=HTTP_202_ACCEPTED,
        )

    return _route(endpoint, upload)


def _route(endpoint: UploadEndpoint, handler: object) -> HTTPRouteHandler:
    first, *rest = endpoint.path.strip("/").split("/")
    return post(
        endpoint.path,
        operation_id=first + "".join(word.capitalize() for word in rest),  # e.g. imageConvertWebp
        summary=SUMMARIES[endpoint.path],
        description=f"Answers 202 with the queued job{'s' if endpoint.batch else ''}; "
        f"follow it at /api/v1/jobs/{{job_id}}. The file's type is sniffed from its content "
        f"({endpoint.kind.value}s only); names and declared types are ignored.",
        tags=[endpoint.kind.value],
        security=[{"BearerToken": []}],
        status_code=HTTP_202_ACCEPTED,
        # The body streams to object storage; the service bounds each file itself.
        request_max_body_size=None,
        operation_class=upload_operation(endpoint),
        responses=error_responses(endpoint),
    )(handler)


UPLOAD_HANDLERS = [(_batch if e.batch else _single)(e) for e in ENDPOINTS.values()]
