"""The contract between the API and the MediaJobs it creates, as pure functions.

A MediaJob made by the API is named by its job id (a lowercase uuid4) in the API's
namespace, labelled with its owner, its job type and its phase (`Pending`; from then on the
operator keeps `mediaflow.io/phase` equal to `status.phase`), and annotated with the
uploaded file's name and `mediaflow.io/delete-input: "true"` (deleting it deletes its upload
too). Its spec carries `ttlSecondsAfterFinished` = the API's job retention, so the operator
deletes it that long after it finished, and with it its result and (delete-input) its upload:
API-made jobs never pile up. MediaJobs made with kubectl keep whatever TTL their author set.

A batch request (`/image/batch/...`) makes ONE MediaJob with an input per file
(`spec.inputs`), named `batch-<uuid4>` (never a job id), labelled `mediaflow.io/batch: "true"`
and, per file, `mediaflow.io/job-<job id>: "<its index>"`; the files' names are the JSON
list of the `mediaflow.io/filenames` annotation. Every file keeps its own job id: its job is
that input's item of the MediaJob's status. Deleting one file's job removes its label and
sets `mediaflow.io/cancel-item-<index>` (the operator stops it and deletes its files);
deleting the last one deletes the MediaJob.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, Field

from mediaflow_core.constants import (
    ANNOTATION_DELETE_INPUT,
    ANNOTATION_REQUEST_ID,
    API_VERSION,
    GROUP,
    KIND,
    LABEL_OWNER,
    LABEL_PHASE,
)
from mediaflow_core.naming import cancel_item_annotation, download_filename
from mediaflow_core.options import Operation

LABEL_JOB_TYPE = f"{GROUP}/job-type"
ANNOTATION_FILENAME = f"{GROUP}/filename"
# A batch request's MediaJob (see the module's docstring).
LABEL_BATCH = f"{GROUP}/batch"
LABEL_JOB_PREFIX = f"{GROUP}/job-"
ANNOTATION_FILENAMES = f"{GROUP}/filenames"
BATCH_NAME_PREFIX = "batch-"
MAX_PAGE_SIZE = 100
# How long an API-made MediaJob (and its files) stays after it finished, unless configured.
DEFAULT_JOB_RETENTION_SECONDS = 7 * 24 * 3600

_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class JobStatus(StrEnum):
    """The statuses of the previous service's job objects."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobType(StrEnum):
    """A job's type, as the previous service named them (the `mediaflow.io/job-type` label).

    Image conversions keep the previous service's three types (by endpoint), all of them
    `ImageConvert` MediaJobs; the other types are the operation in snake case.
    """

    IMAGE_CONVERT_WEBP = "image_convert_webp"
    IMAGE_CONVERT_AVIF = "image_convert_avif"
    IMAGE_CONVERT_FORMAT = "image_convert_format"
    IMAGE_RESIZE = "image_resize"
    VIDEO_CONVERT = "video_convert"
    VIDEO_ROTATE = "video_rotate"
    VIDEO_RESIZE = "video_resize"
    VIDEO_TRIM = "video_trim"
    VIDEO_THUMBNAIL = "video_thumbnail"
    # `POST /image/renditions`: an ImageConvert MediaJob with spec.renditions.
    IMAGE_RENDITIONS = "image_renditions"


# The operation of each job type's MediaJobs.
OPERATIONS: dict[JobType, Operation] = {
    JobType.IMAGE_CONVERT_WEBP: Operation.IMAGE_CONVERT,
    JobType.IMAGE_CONVERT_AVIF: Operation.IMAGE_CONVERT,
    JobType.IMAGE_CONVERT_FORMAT: Operation.IMAGE_CONVERT,
    JobType.IMAGE_RENDITIONS: Operation.IMAGE_CONVERT,
    **{JobType[op.name]: op for op in Operation if op is not Operation.IMAGE_CONVERT},
}

STATUSES: dict[str | None, JobStatus] = {
    None: JobStatus.PENDING,
    "Pending": JobStatus.PENDING,
    "Running": JobStatus.PROCESSING,
    "Succeeded": JobStatus.COMPLETED,
    "Failed": JobStatus.FAILED,
    "Cancelled": JobStatus.CANCELLED,
}
ACTIVE = frozenset({JobStatus.PENDING, JobStatus.PROCESSING})
# The `mediaflow.io/phase` label value of each status (the phase the operator wrote).
PHASES: dict[JobStatus, str] = {status: phase for phase, status in STATUSES.items() if phase}


class RenditionLink(BaseModel):
    """One rendition of a completed `image_renditions` job."""

    name: str = Field(description="The rendition's name, as requested.")
    url: str = Field(description="A presigned download URL of the rendition.")
    content_type: str = Field(description="MIME type of the rendition.")
    width: int | None = Field(default=None, description="Width in pixels.")
    height: int | None = Field(default=None, description="Height in pixels.")
    size: int = Field(ge=0, description="Size in bytes.")


class Job(BaseModel):
    """A conversion job, in the previous service's shape."""

    id: str = Field(description="The job id (a UUID).")
    status: JobStatus
    job_type: JobType
    progress: int = Field(ge=0, le=100, description="Percent done.")
    result_url: str | None = Field(
        default=None, description="When completed: a presigned download URL of the result."
    )
    error: str | None = Field(default=None, description="When failed: why.")
    renditions: list[RenditionLink] | None = Field(
        default=None,
        description="When a completed image_renditions job: every rendition with its own "
        "presigned URL, in the order requested (result_url is the first's). Null for other "
        "jobs, and until completed.",
    )
    created_at: datetime
    updated_at: datetime


class JobPage(BaseModel):
    """One page of the user's jobs, newest first."""

    items: list[Job]
    total: int = Field(description="How many jobs match, on every page.")
    page: int
    page_size: int


def new_job_id() -> str:
    return str(uuid.uuid4())


def is_job_id(text: str) -> bool:
    """Whether `text` is a job id (a lowercase uuid4), i.e. may name an API-made MediaJob."""
    return bool(_JOB_ID.match(text))


def owner_labels(owner: str) -> list[str]:
    """The `mediaflow.io/owner` values of `owner`'s MediaJobs: the user id (a dashed UUID),
    and its 32 hex digits, as releases before the UUID ids labelled them."""
    try:
        compact = uuid.UUID(owner).hex
    except ValueError:
        return [owner]
    return [owner] if compact == owner else [owner, compact]


def owner_selector(owner: str, job_type: JobType | None = None) -> str:
    """The label selector of `owner`'s MediaJobs (of one type when given)."""
    values = owner_labels(owner)
    selector = (
        f"{LABEL_OWNER}={owner}" if len(values) == 1 else f"{LABEL_OWNER} in ({','.join(values)})"
    )
    return f"{selector},{LABEL_JOB_TYPE}={job_type.value}" if job_type else selector


def mediajob_body(
    job_id: str,
    namespace: str,
    owner: str,
    filename: str,
    job_type: JobType,
    spec: dict[str, Any],
    *,
    retention_seconds: int,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The MediaJob to create for an upload of `filename` by `owner`, with `spec`, deleted
    `retention_seconds` after it finished (keyword and required, so that no path that makes
    a MediaJob for the API can leave it without a retention), annotated with the id of the
    request that made it."""
    if spec.get("operation") != OPERATIONS[job_type].value:
        raise ValueError(f"a {job_type.value} job is an {OPERATIONS[job_type].value} MediaJob")
    annotations = {ANNOTATION_FILENAME: filename, ANNOTATION_DELETE_INPUT: "true"}
    if request_id:
        annotations[ANNOTATION_REQUEST_ID] = request_id
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": job_id,
            "namespace": namespace,
            "labels": {
                LABEL_OWNER: owner,
                LABEL_JOB_TYPE: job_type.value,
                # What the operator's first status write says: it need not write the label.
                LABEL_PHASE: PHASES[JobStatus.PENDING],
            },
            "annotations": annotations,
        },
        # The operator's TTL expiry deletes it; its finalizer then deletes the result prefix
        # and, by the delete-input annotation above, the upload.
        "spec": {**spec, "ttlSecondsAfterFinished": retention_seconds},
    }


def new_batch_name() -> str:
    """The name of a batch request's MediaJob: never a job id (GET /jobs/{id} cannot name
    it), unique like one."""
    return f"{BATCH_NAME_PREFIX}{uuid.uuid4()}"


def job_label(job_id: str) -> str:
    """The label that names one file's job on its batch MediaJob (value: its index)."""
    return f"{LABEL_JOB_PREFIX}{job_id}"


def batch_mediajob_body(
    name: str,
    namespace: str,
    owner: str,
    files: list[tuple[str, str]],
    job_type: JobType,
    spec: dict[str, Any],
    *,
    retention_seconds: int,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The one MediaJob of a batch request: `files` are (job id, file name) in the order of
    `spec.inputs`, each file's job a label, their names an annotation."""
    if len(spec.get("inputs") or []) != len(files) or "input" in spec:
        raise ValueError("a batch MediaJob has one input per file, in spec.inputs")
    body = mediajob_body(
        name,
        namespace,
        owner,
        "",
        job_type,
        spec,
        retention_seconds=retention_seconds,
        request_id=request_id,
    )
    metadata = body["metadata"]
    metadata["labels"][LABEL_BATCH] = "true"
    metadata["labels"].update({job_label(job_id): str(i) for i, (job_id, _) in enumerate(files)})
    del metadata["annotations"][ANNOTATION_FILENAME]
    metadata["annotations"][ANNOTATION_FILENAMES] = json.dumps([name for _, name in files])
    return body


def is_batch(mediajob: dict[str, Any]) -> bool:
    return (mediajob.get("metadata", {}).get("labels") or {}).get(LABEL_BATCH) == "true"


def batch_jobs(labels: dict[str, str] | None) -> dict[str, int]:
    """The jobs of a batch MediaJob, from its labels: job id -> its input's index. A job
    deleted by its owner has no label any more."""
    jobs = {}
    for key, value in (labels or {}).items():
        job_id = key.removeprefix(LABEL_JOB_PREFIX)
        if job_id != key and is_job_id(job_id) and value.isdigit():
            jobs[job_id] = int(value)
    return jobs


def item_removal_patch(mediajob: dict[str, Any], job_id: str) -> dict[str, Any]:
    """The merge patch that deletes one file's job from its batch MediaJob: its label goes
    (it is gone for its owner at once) and its input is cancelled (the operator stops it and
    deletes its upload and result). Conditioned on the resourceVersion read, so that two
    deletes never both think another job remains."""
    index = batch_jobs(mediajob["metadata"].get("labels"))[job_id]
    return {
        "metadata": {
            "resourceVersion": mediajob["metadata"]["resourceVersion"],
            "labels": {job_label(job_id): None},
            "annotations": {cancel_item_annotation(index): "true"},
        }
    }


def is_owned_by(mediajob: dict[str, Any], owner: str) -> bool:
    labels = mediajob.get("metadata", {}).get("labels") or {}
    return labels.get(LABEL_OWNER) in owner_labels(owner) and labels.get(LABEL_JOB_TYPE) in set(
        JobType
    )


def is_deleted(mediajob: dict[str, Any]) -> bool:
    """Whether the MediaJob is being deleted (its finalizer still runs): for its owner the
    job is gone from the moment DELETE answered, so reads treat it as absent."""
    return bool(mediajob.get("metadata", {}).get("deletionTimestamp"))


def is_active(mediajob: dict[str, Any]) -> bool:
    """Whether the job counts against its owner's active-job cap: pending or processing,
    and not being deleted."""
    return not is_deleted(mediajob) and job_status(mediajob) in ACTIVE


def active_jobs(mediajob: dict[str, Any]) -> int:
    """How many of the MediaJob's jobs are active: one for a single file's (`is_active`),
    for a batch MediaJob its files' jobs that are pending or processing."""
    if not is_batch(mediajob):
        return int(is_active(mediajob))
    if is_deleted(mediajob):
        return 0
    return sum(
        1
        for index in batch_jobs(mediajob["metadata"].get("labels")).values()
        if item_status(mediajob, index) in ACTIVE
    )


def active_count(mediajobs: list[dict[str, Any]]) -> int:
    """How many jobs of `mediajobs` are active (see `active_jobs`)."""
    return sum(active_jobs(mj) for mj in mediajobs)


def active_selectors(owner: str) -> tuple[str, str]:
    """The label selectors that find `owner`'s possibly active MediaJobs without listing the
    finished ones: those labelled with an active phase, and those without the phase label
    (made before the operator wrote it), which `is_active` then judges by their status. A
    label lags its status by a request, so a job that just finished may still be counted:
    the cap errs on the safe side for that moment."""
    selector = owner_selector(owner)
    phases = ",".join(sorted(PHASES[status] for status in ACTIVE))
    return f"{selector},{LABEL_PHASE} in ({phases})", f"{selector},!{LABEL_PHASE}"


def job_status(mediajob: dict[str, Any]) -> JobStatus:
    return STATUSES.get((mediajob.get("status") or {}).get("phase"), JobStatus.PENDING)


def _item(mediajob: dict[str, Any], index: int) -> dict[str, Any] | None:
    """Input `index`'s entry of the status' items (None before the operator listed them)."""
    for item in (mediajob.get("status") or {}).get("items") or []:
        if item.get("index") == index:
            return item
    return None


def item_status(mediajob: dict[str, Any], index: int) -> JobStatus:
    """The status of one file's job of a batch MediaJob: its item's phase; the MediaJob's
    own while it has no items (not accepted yet: pending; refused whole: failed)."""
    item = _item(mediajob, index)
    if item is None:
        return job_status(mediajob)
    return STATUSES.get(item.get("phase"), JobStatus.PENDING)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def created_at(mediajob: dict[str, Any]) -> datetime:
    return _time(mediajob["metadata"]["creationTimestamp"])


def updated_at(mediajob: dict[str, Any]) -> datetime:
    """The latest condition transition, or the creation when there is none."""
    times = [
        _time(c["lastTransitionTime"])
        for c in (mediajob.get("status") or {}).get("conditions") or []
        if c.get("lastTransitionTime")
    ]
    return max([created_at(mediajob), *times])


def result_filename(
    mediajob: dict[str, Any],
    content_type: str | None,
    index: int | None = None,
    rendition: str | None = None,
) -> str:
    """The uploaded file's name (of input `index` of a batch) with the result's extension,
    safe for a header; a rendition's is `<stem>-<rendition>.<ext>`."""
    annotations = mediajob["metadata"].get("annotations") or {}
    name = annotations.get(ANNOTATION_FILENAME) or ""
    if index is not None:
        try:
            names = json.loads(annotations.get(ANNOTATION_FILENAMES) or "[]")
            name = names[index] if isinstance(names[index], str) else ""
        except (ValueError, IndexError, TypeError):
            name = ""
    return download_filename(PurePosixPath(name).stem, content_type, rendition)


def signed_results(
    mediajob: dict[str, Any],
    found: dict[str, Any],
    sign: Callable[[str, str], str],
    index: int | None = None,
) -> tuple[str | None, list[RenditionLink] | None]:
    """A completed job's result URL and, with renditions, every rendition's (`found`: the
    MediaJob's status, or its item's); the result URL downloads as the first rendition."""
    result = found.get("result") or {}
    renditions = [r for r in found.get("renditions") or [] if r.get("key") and r.get("name")]
    if not renditions:
        if not result.get("key"):
            return None, None
        return sign(
            result["key"], result_filename(mediajob, result.get("contentType"), index)
        ), None
    links = [
        RenditionLink(
            name=r["name"],
            url=sign(r["key"], result_filename(mediajob, r.get("contentType"), index, r["name"])),
            content_type=r.get("contentType") or "application/octet-stream",
            width=r.get("width"),
            height=r.get("height"),
            size=int(r.get("size") or 0),
        )
        for r in renditions
    ]
    return links[0].url, links


def to_job(mediajob: dict[str, Any], sign: Callable[[str, str], str] | None = None) -> Job:
    """The job object of a MediaJob. `sign(key, filename)` presigns the result's URL; it
    is called only for a completed job, and without it no URL is given."""
    status = mediajob.get("status") or {}
    state = job_status(mediajob)
    result_url, renditions = None, None
    if state is JobStatus.COMPLETED and sign is not None:
        result_url, renditions = signed_results(mediajob, status, sign)
    progress = 100 if state is JobStatus.COMPLETED else int(status.get("progress") or 0)
    return Job(
        id=mediajob["metadata"]["name"],
        status=state,
        job_type=JobType(mediajob["metadata"]["labels"][LABEL_JOB_TYPE]),
        progress=max(0, min(100, progress)),
        result_url=result_url,
        error=(status.get("message") or "the job failed") if state is JobStatus.FAILED else None,
        renditions=renditions,
        created_at=created_at(mediajob),
        updated_at=updated_at(mediajob),
    )


def to_item_job(
    mediajob: dict[str, Any],
    job_id: str,
    index: int,
    sign: Callable[[str, str], str] | None = None,
) -> Job:
    """The job object of one file of a batch MediaJob (input `index`), as `to_job` makes
    one of a single file's MediaJob."""
    item = _item(mediajob, index) or {}
    state = item_status(mediajob, index)
    result_url, renditions = None, None
    if state is JobStatus.COMPLETED and sign is not None:
        result_url, renditions = signed_results(mediajob, item, sign, index)
    error = None
    if state is JobStatus.FAILED:
        status = mediajob.get("status") or {}
        error = item.get("message") or item.get("reason") or status.get("message")
    return Job(
        id=job_id,
        status=state,
        job_type=JobType(mediajob["metadata"]["labels"][LABEL_JOB_TYPE]),
        progress=100 if state is JobStatus.COMPLETED else 0,
        result_url=result_url,
        error=(error or "the job failed") if state is JobStatus.FAILED else None,
        renditions=renditions,
        created_at=created_at(mediajob),
        updated_at=updated_at(mediajob),
    )


def find_job(
    mediajob: dict[str, Any], job_id: str, sign: Callable[[str, str], str] | None = None
) -> Job | None:
    """Job `job_id` of a MediaJob: the MediaJob's own, or one file's of a batch MediaJob;
    None when it has no such job."""
    if not is_batch(mediajob):
        return to_job(mediajob, sign) if mediajob["metadata"]["name"] == job_id else None
    index = batch_jobs(mediajob["metadata"].get("labels")).get(job_id)
    return None if index is None else to_item_job(mediajob, job_id, index, sign)


@dataclass(frozen=True)
class Listed:
    """What a list tells of one job without reading its MediaJob in full: its id, and for a
    file of a batch the MediaJob's name (`mediajob`) and its input's index."""

    name: str
    created: datetime
    deleting: bool = False
    mediajob: str | None = None
    index: int | None = None

    @property
    def mediajob_name(self) -> str:
        return self.mediajob or self.name


def listed_jobs(
    name: str, created: datetime, deleting: bool, labels: dict[str, str] | None
) -> list[Listed]:
    """The jobs of one listed MediaJob: itself, or each file's of a batch MediaJob."""
    if (labels or {}).get(LABEL_BATCH) != "true":
        return [Listed(name, created, deleting)]
    return [
        Listed(job_id, created, deleting, mediajob=name, index=index)
        for job_id, index in batch_jobs(labels).items()
    ]


def listed(mediajob: dict[str, Any]) -> Listed:
    return Listed(mediajob["metadata"]["name"], created_at(mediajob), is_deleted(mediajob))


@dataclass(frozen=True)
class ListSelectors:
    """The label selectors of a job list.

    Without a status filter, `metadata` alone: the MediaJobs listed by metadata (a batch
    MediaJob's labels name its files' jobs). With one, `metadata` selects single files'
    MediaJobs by their phase label, and `full` those whose status must be read to classify
    their jobs: single files' MediaJobs without a phase label (made before the operator wrote
    it, until it resumes them) and the batch MediaJobs that can hold a job of that status
    (each file's status is its item's)."""

    metadata: str
    full: tuple[str, ...] = ()


def list_selectors(owner: str, job_type: JobType | None, status: JobStatus | None) -> ListSelectors:
    selector = owner_selector(owner, job_type)
    if status is None:
        return ListSelectors(selector)
    single = f"{selector},!{LABEL_BATCH}"
    batches = f"{selector},{LABEL_BATCH}=true"
    if status in ACTIVE:
        # A finished MediaJob's items are all finished (`notin` also selects the unlabelled).
        finished = ",".join(sorted(PHASES[s] for s in JobStatus if s not in ACTIVE))
        batches += f",{LABEL_PHASE} notin ({finished})"
    return ListSelectors(
        f"{single},{LABEL_PHASE}={PHASES[status]}", (f"{single},!{LABEL_PHASE}", batches)
    )


def unlabelled_matching(mediajobs: Iterable[dict[str, Any]], status: JobStatus) -> list[Listed]:
    """Of MediaJobs read in full, the jobs whose status is `status`: single files' MediaJobs
    by their status, batch MediaJobs' files by their items'."""
    found = []
    for mj in mediajobs:
        if not is_batch(mj):
            if job_status(mj) is status:
                found.append(listed(mj))
            continue
        jobs = listed_jobs(
            mj["metadata"]["name"], created_at(mj), is_deleted(mj), mj["metadata"].get("labels")
        )
        found += [job for job in jobs if item_status(mj, job.index or 0) is status]
    return found


def newest_first(items: Iterable[Listed]) -> list[Listed]:
    """By creation, newest first; ties (one-second timestamps) by name, for stable pages."""
    by_name = sorted(items, key=lambda item: item.name)
    return sorted(by_name, key=lambda item: item.created, reverse=True)


def page_of(items: Iterable[Listed], page: int, page_size: int) -> tuple[list[Listed], int]:
    """The jobs on page `page` (from 1) of `items` newest first, and how many there are in
    all; MediaJobs being deleted are left out (gone for their owner)."""
    matching = newest_first(item for item in items if not item.deleting)
    start = (page - 1) * page_size
    return matching[start : start + page_size], len(matching)


def page_names(items: Iterable[Listed], page: int, page_size: int) -> tuple[list[str], int]:
    """The job ids on page `page` (see `page_of`) and the total."""
    jobs, total = page_of(items, page, page_size)
    return [job.name for job in jobs], total
