"""The MediaJob contract of the API and the mapping of MediaJobs to job objects (pure)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from mediaflow_api.jobs.model import (
    ANNOTATION_DELETE_INPUT,
    ANNOTATION_FILENAME,
    ANNOTATION_FILENAMES,
    ANNOTATION_REQUEST_ID,
    DEFAULT_JOB_RETENTION_SECONDS,
    LABEL_BATCH,
    LABEL_JOB_TYPE,
    LABEL_OWNER,
    OPERATIONS,
    JobStatus,
    JobType,
    Listed,
    ListSelectors,
    active_count,
    active_selectors,
    batch_jobs,
    batch_mediajob_body,
    created_at,
    find_job,
    is_job_id,
    is_owned_by,
    item_removal_patch,
    job_label,
    list_selectors,
    listed,
    listed_jobs,
    mediajob_body,
    new_batch_name,
    new_job_id,
    owner_selector,
    page_names,
    result_filename,
    to_job,
    unlabelled_matching,
)
from mediaflow_api.settings import ApiSettings
from mediaflow_core.mediajob import MAX_TTL_SECONDS_AFTER_FINISHED, MediaJobSpec
from mediaflow_core.options import Operation

OWNER = "a" * 32
SPEC = {
    "operation": "ImageConvert",
    "input": {"object": {"key": "ns/uploads/x"}},
    "imageConvert": {"format": "webp"},
}


def mediajob(
    name: str | None = None,
    *,
    created: str = "2026-11-28T10:00:00Z",
    status: dict | None = None,
    filename: str = "holiday photo.jpg",
) -> dict:
    body = mediajob_body(
        name or new_job_id(),
        "ns",
        OWNER,
        filename,
        JobType.IMAGE_CONVERT_WEBP,
        SPEC,
        retention_seconds=DEFAULT_JOB_RETENTION_SECONDS,
    )
    body["metadata"]["creationTimestamp"] = created
    if status is not None:
        body["status"] = status
    return body


def cond(type_: str, status: str, at: str) -> dict:
    return {"type": type_, "status": status, "lastTransitionTime": at, "reason": "R"}


def signer(calls: list) -> object:
    def sign(key: str, filename: str) -> str:
        calls.append((key, filename))
        return f"http://127.0.0.1:9000/b/{key}?sig"

    return sign


def test_body_carries_the_contract() -> None:
    job_id = new_job_id()
    spec = {**SPEC, "operation": "VideoTrim"}
    body = mediajob_body(
        job_id, "team", OWNER, "clip.mov", JobType.VIDEO_TRIM, spec, retention_seconds=3600
    )
    meta = body["metadata"]
    assert body["apiVersion"] == "mediaflow.io/v1alpha1"
    assert body["kind"] == "MediaJob"
    assert (meta["name"], meta["namespace"]) == (job_id, "team")
    # Pending, as the operator's first status write says: it need not relabel.
    assert meta["labels"] == {
        LABEL_OWNER: OWNER,
        LABEL_JOB_TYPE: "video_trim",
        "mediaflow.io/phase": "Pending",
    }
    assert meta["annotations"] == {ANNOTATION_FILENAME: "clip.mov", ANNOTATION_DELETE_INPUT: "true"}
    assert LABEL_OWNER == "mediaflow.io/owner"
    assert LABEL_JOB_TYPE == "mediaflow.io/job-type"


def test_body_expires_after_the_retention_and_takes_its_upload_along() -> None:
    """The operator's TTL expiry deletes an API-made MediaJob `retention_seconds` after it
    finished; its finalizer then deletes the result and, by delete-input, the upload."""
    spec = {**SPEC, "input": {"object": {"key": "team/uploads/x/input"}}}
    body = mediajob_body(
        new_job_id(), "team", OWNER, "a.jpg", JobType.IMAGE_CONVERT_WEBP, spec,
        retention_seconds=604800,
    )  # fmt: skip
    assert body["spec"] == {**spec, "ttlSecondsAfterFinished": 604800}
    assert body["metadata"]["annotations"][ANNOTATION_DELETE_INPUT] == "true"
    assert "ttlSecondsAfterFinished" not in spec  # the caller's spec is left as it was
    # The spec is one the CRD's models accept, with the TTL where the operator reads it.
    assert MediaJobSpec.model_validate(body["spec"]).ttl_seconds_after_finished == 604800


def test_every_retention_the_settings_accept_is_a_ttl_the_crd_accepts() -> None:
    """The setting's bounds are within ttlSecondsAfterFinished's: an API whose retention the
    API server refused would fail every upload (at its MediaJob's creation)."""
    field = ApiSettings.model_fields["job_retention_seconds"]
    assert field.default == DEFAULT_JOB_RETENTION_SECONDS == 7 * 24 * 3600
    bounds = {type(m).__name__: m for m in field.metadata}
    assert bounds["Ge"].ge == 1
    assert bounds["Le"].le == MAX_TTL_SECONDS_AFTER_FINISHED
    for seconds in (bounds["Ge"].ge, DEFAULT_JOB_RETENTION_SECONDS, bounds["Le"].le):
        body = mediajob_body(
            new_job_id(), "ns", OWNER, "a.jpg", JobType.IMAGE_CONVERT_WEBP, SPEC,
            retention_seconds=seconds,
        )  # fmt: skip
        assert MediaJobSpec.model_validate(body["spec"]).ttl_seconds_after_finished == seconds


def test_job_types_are_the_previous_services() -> None:
    assert set(OPERATIONS) == set(JobType)
    assert set(OPERATIONS.values()) == set(Operation)
    assert [t.value for t in JobType if OPERATIONS[t] is Operation.IMAGE_CONVERT] == [
        "image_convert_webp",
        "image_convert_avif",
        "image_convert_format",
        "image_renditions",  # ours, additive: POST /image/renditions
    ]
    assert JobType.VIDEO_THUMBNAIL.value == "video_thumbnail"


def test_body_refuses_a_job_type_of_another_operation() -> None:
    with pytest.raises(ValueError, match="image_resize job is an ImageResize MediaJob"):
        mediajob_body(
            new_job_id(), "ns", OWNER, "a.jpg", JobType.IMAGE_RESIZE, SPEC, retention_seconds=60
        )


def test_job_ids_are_lowercase_uuid4() -> None:
    job_id = new_job_id()
    assert is_job_id(job_id)
    assert uuid.UUID(job_id).version == 4
    assert not is_job_id(job_id.upper())
    assert not is_job_id(str(uuid.uuid1()))
    assert not is_job_id("../../secrets")
    assert not is_job_id("")


def test_selector() -> None:
    assert owner_selector(OWNER) == f"mediaflow.io/owner={OWNER}"
    assert owner_selector(OWNER, JobType.VIDEO_CONVERT) == (
        f"mediaflow.io/owner={OWNER},mediaflow.io/job-type=video_convert"
    )


def test_ownership() -> None:
    body = mediajob()
    assert is_owned_by(body, OWNER)
    assert not is_owned_by(body, "b" * 32)
    del body["metadata"]["labels"][LABEL_JOB_TYPE]
    assert not is_owned_by(body, OWNER)


@pytest.mark.parametrize(
    ("phase", "expected"),
    [
        (None, JobStatus.PENDING),
        ("Pending", JobStatus.PENDING),
        ("Running", JobStatus.PROCESSING),
        ("Succeeded", JobStatus.COMPLETED),
        ("Failed", JobStatus.FAILED),
        ("Cancelled", JobStatus.CANCELLED),
    ],
)
def test_status_mapping(phase: str | None, expected: JobStatus) -> None:
    status = {"phase": phase} if phase else None
    assert to_job(mediajob(status=status)).status is expected


def test_new_mediajob_is_pending_with_creation_times() -> None:
    job = to_job(mediajob(created="2026-11-28T10:00:00Z"), signer(calls := []))
    assert job.status is JobStatus.PENDING
    assert job.progress == 0
    assert job.result_url is None
    assert job.error is None
    assert job.job_type is JobType.IMAGE_CONVERT_WEBP
    assert job.created_at == job.updated_at == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert calls == []


def test_completed_job_gets_a_fresh_url_with_the_original_name() -> None:
    status = {
        "phase": "Succeeded",
        "progress": 100,
        "conditions": [
            cond("Accepted", "True", "2026-11-28T10:00:01Z"),
            cond("Succeeded", "True", "2026-11-28T10:00:09Z"),
        ],
        "result": {"key": "ns/results/u/output", "contentType": "image/webp", "url": "stale"},
    }
    calls: list = []
    job = to_job(mediajob(status=status), signer(calls))
    assert job.status is JobStatus.COMPLETED
    assert job.progress == 100
    assert job.result_url == "http://127.0.0.1:9000/b/ns/results/u/output?sig"
    assert calls == [("ns/results/u/output", "holiday photo.webp")]
    assert job.updated_at == datetime(2026, 11, 28, 10, 0, 9, tzinfo=UTC)
    assert to_job(mediajob(status=status)).result_url is None  # no signer, no URL


def test_running_job_reports_progress() -> None:
    status = {
        "phase": "Running",
        "progress": 42,
        "conditions": [cond("Succeeded", "Unknown", "2026-11-28T10:00:03Z")],
    }
    job = to_job(mediajob(status=status))
    assert (job.status, job.progress) == (JobStatus.PROCESSING, 42)
    assert job.updated_at == datetime(2026, 11, 28, 10, 0, 3, tzinfo=UTC)


def test_failed_job_says_why() -> None:
    status = {"phase": "Failed", "message": "the input is not a valid image"}
    job = to_job(mediajob(status=status), signer(calls := []))
    assert job.error == "the input is not a valid image"
    assert job.result_url is None
    assert calls == []
    assert to_job(mediajob(status={"phase": "Failed"})).error


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("photo.jpg", "image/png", "photo.png"),
        ('evil"name\r\n.jpg', "image/jpeg", "evil_name_.jpg"),
        ("päivä.mov", "video/mp4", "p_iv_.mp4"),
        ("", "video/webm", "result.webm"),
        ("a.b", "application/x-unknown", "a.bin"),
        ("../../x.png", None, "x.bin"),
    ],
)
def test_result_filename_is_safe(filename: str, content_type: str | None, expected: str) -> None:
    assert result_filename(mediajob(filename=filename), content_type) == expected


def test_pages_newest_first_and_the_total() -> None:
    jobs = [mediajob(created=f"2026-11-28T10:00:{i:02d}Z") for i in range(5)]
    names = [j["metadata"]["name"] for j in jobs]
    items = [listed(j) for j in jobs]
    assert page_names(items, page=1, page_size=2) == ([names[4], names[3]], 5)
    assert page_names(items, 3, 2) == ([names[0]], 5)
    assert page_names(items, 4, 2) == ([], 5)


def test_same_second_jobs_have_a_stable_order() -> None:
    items = [listed(mediajob(created="2026-11-28T10:00:00Z")) for _ in range(5)]
    assert page_names(items, 1, 5) == page_names(list(reversed(items)), 1, 5)
    assert page_names(items, 1, 5)[0] == sorted(item.name for item in items)


def test_a_mediajob_being_deleted_is_gone_from_every_page() -> None:
    kept, deleting = mediajob(), mediajob(status={"phase": "Succeeded"})
    deleting["metadata"]["deletionTimestamp"] = "2026-11-28T10:05:00Z"
    assert listed(deleting).deleting
    assert page_names([listed(kept), listed(deleting)], 1, 20) == ([kept["metadata"]["name"]], 1)


def test_selectors_list_by_owner_type_and_phase_label() -> None:
    assert list_selectors(OWNER, None, None) == ListSelectors(f"mediaflow.io/owner={OWNER}")
    selectors = list_selectors(OWNER, JobType.VIDEO_TRIM, JobStatus.PROCESSING)
    base = f"mediaflow.io/owner={OWNER},mediaflow.io/job-type=video_trim"
    assert selectors.metadata == f"{base},!mediaflow.io/batch,mediaflow.io/phase=Running"
    unlabelled, batches = selectors.full
    assert unlabelled == f"{base},!mediaflow.io/batch,!mediaflow.io/phase"
    # Only a batch that has not finished can hold a processing job.
    assert batches == (
        f"{base},mediaflow.io/batch=true,mediaflow.io/phase notin (Cancelled,Failed,Succeeded)"
    )
    assert list_selectors(OWNER, None, JobStatus.FAILED).full[1] == (
        f"mediaflow.io/owner={OWNER},mediaflow.io/batch=true"
    )
    # Every status has the phase label value the operator writes for it.
    assert {s: list_selectors(OWNER, None, s).metadata.rsplit("=", 1)[1] for s in JobStatus} == {
        JobStatus.PENDING: "Pending",
        JobStatus.PROCESSING: "Running",
        JobStatus.COMPLETED: "Succeeded",
        JobStatus.FAILED: "Failed",
        JobStatus.CANCELLED: "Cancelled",
    }


def test_mediajobs_without_a_phase_label_are_classified_by_their_status() -> None:
    jobs = [
        mediajob(created="2026-11-28T10:00:01Z"),  # no status yet: pending
        mediajob(created="2026-11-28T10:00:02Z", status={"phase": "Succeeded"}),
        mediajob(created="2026-11-28T10:00:03Z", status={"phase": "Pending"}),
    ]
    pending = unlabelled_matching(jobs, JobStatus.PENDING)
    assert [item.name for item in pending] == [
        jobs[0]["metadata"]["name"],
        jobs[2]["metadata"]["name"],
    ]
    assert unlabelled_matching(jobs, JobStatus.COMPLETED) == [
        Listed(jobs[1]["metadata"]["name"], datetime(2026, 11, 28, 10, 0, 2, tzinfo=UTC))
    ]
    assert unlabelled_matching(jobs, JobStatus.FAILED) == []


def test_active_jobs_are_pending_or_running_and_not_being_deleted() -> None:
    jobs = [
        mediajob(),  # no status yet: pending
        mediajob(status={"phase": "Pending"}),
        mediajob(status={"phase": "Running"}),
        mediajob(status={"phase": "Succeeded"}),
        mediajob(status={"phase": "Failed"}),
        mediajob(status={"phase": "Cancelled"}),
    ]
    assert active_count(jobs) == 3
    jobs[2]["metadata"]["deletionTimestamp"] = "2026-11-28T10:05:00Z"
    assert active_count(jobs) == 2


def test_the_active_job_count_lists_only_active_or_unlabelled_mediajobs() -> None:
    owner = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    labelled, unlabelled = active_selectors(owner)
    owner_part = f"mediaflow.io/owner in ({owner},{owner.replace('-', '')})"
    assert labelled == f"{owner_part},mediaflow.io/phase in (Pending,Running)"
    assert unlabelled == f"{owner_part},!mediaflow.io/phase"


# A batch request's one MediaJob.

FILES = [(new_job_id(), "a.jpg"), (new_job_id(), "b/ü photo.png"), (new_job_id(), "c.jpg")]
BATCH_SPEC = {
    "operation": "ImageConvert",
    "inputs": [{"object": {"key": f"ns/uploads/batch-x/{job_id}/input"}} for job_id, _ in FILES],
    "imageConvert": {"format": "webp"},
}


def batch(status: dict | None = None, created: str = "2026-11-28T10:00:00Z") -> dict:
    body = batch_mediajob_body(
        new_batch_name(),
        "ns",
        OWNER,
        FILES,
        JobType.IMAGE_CONVERT_WEBP,
        BATCH_SPEC,
        retention_seconds=DEFAULT_JOB_RETENTION_SECONDS,
    )
    body["metadata"]["creationTimestamp"] = created
    body["metadata"]["resourceVersion"] = "41"
    if status is not None:
        body["status"] = status
    return body


def test_a_batch_mediajob_is_valid_and_names_every_files_job() -> None:
    body = batch()
    name = body["metadata"]["name"]
    assert name.startswith("batch-")
    assert not is_job_id(name)  # GET /jobs/{id} can never name it
    MediaJobSpec.model_validate(body["spec"])
    labels = body["metadata"]["labels"]
    assert labels[LABEL_BATCH] == "true"
    assert labels[LABEL_OWNER] == OWNER
    assert labels["mediaflow.io/phase"] == "Pending"
    assert batch_jobs(labels) == {job_id: i for i, (job_id, _) in enumerate(FILES)}
    assert all(len(key.split("/", 1)[1]) <= 63 for key in labels)  # label name limit
    annotations = body["metadata"]["annotations"]
    assert annotations[ANNOTATION_DELETE_INPUT] == "true"
    assert json.loads(annotations[ANNOTATION_FILENAMES]) == [f for _, f in FILES]
    assert ANNOTATION_FILENAME not in annotations
    assert body["spec"]["ttlSecondsAfterFinished"] == DEFAULT_JOB_RETENTION_SECONDS
    assert is_owned_by(body, OWNER)


def test_a_batch_body_needs_an_input_per_file() -> None:
    with pytest.raises(ValueError, match="one input per file"):
        batch_mediajob_body(
            "batch-x", "ns", OWNER, FILES[:2], JobType.IMAGE_CONVERT_WEBP, BATCH_SPEC,
            retention_seconds=60,
        )  # fmt: skip


def test_each_file_of_a_batch_is_its_items_job() -> None:
    items = [
        {
            "index": 0,
            "phase": "Succeeded",
            "result": {"key": "ns/results/u/items/000/output", "contentType": "image/webp"},
        },
        {"index": 1, "phase": "Failed", "reason": "InvalidInput", "message": "not an image"},
        {"index": 2, "phase": "Running"},
    ]
    conditions = [cond("Accepted", "True", "2026-11-28T10:00:01Z")]
    body = batch({"phase": "Running", "items": items, "conditions": conditions})
    calls: list = []
    done = find_job(body, FILES[0][0], signer(calls))
    assert done is not None
    assert (done.status, done.progress, done.job_type) == (
        JobStatus.COMPLETED, 100, JobType.IMAGE_CONVERT_WEBP,
    )  # fmt: skip
    assert done.result_url == "http://127.0.0.1:9000/b/ns/results/u/items/000/output?sig"
    assert calls == [("ns/results/u/items/000/output", "a.webp")]
    failed = find_job(body, FILES[1][0], signer(calls))
    assert failed is not None
    assert (failed.status, failed.error, failed.result_url) == (
        JobStatus.FAILED, "not an image", None,
    )  # fmt: skip
    running = find_job(body, FILES[2][0])
    assert running is not None
    assert (running.status, running.progress) == (JobStatus.PROCESSING, 0)
    assert running.updated_at == datetime(2026, 11, 28, 10, 0, 1, tzinfo=UTC)
    assert find_job(body, new_job_id()) is None  # not a file of this batch
    assert find_job(body, body["metadata"]["name"]) is None


def test_a_batch_not_yet_accepted_or_refused_whole_says_so_for_every_file() -> None:
    assert [find_job(batch(), job_id).status for job_id, _ in FILES] == [JobStatus.PENDING] * 3  # type: ignore[union-attr]
    refused = batch({"phase": "Failed", "message": "spec.inputs[1]: not allowed"})
    job = find_job(refused, FILES[1][0])
    assert job is not None
    assert (job.status, job.error) == (JobStatus.FAILED, "spec.inputs[1]: not allowed")


def test_a_batch_lists_one_job_per_remaining_file() -> None:
    body = batch(created="2026-11-28T10:00:05Z")
    single = mediajob(created="2026-11-28T10:00:01Z")
    body["metadata"]["labels"].pop(job_label(FILES[1][0]))  # deleted by its owner
    created = datetime(2026, 11, 28, 10, 0, 5, tzinfo=UTC)
    jobs = listed_jobs(
        body["metadata"]["name"], created, False, body["metadata"]["labels"]
    ) + listed_jobs(single["metadata"]["name"], created_at(single), False, None)
    names, total = page_names(jobs, 1, 20)
    assert total == 3
    assert set(names[:2]) == {FILES[0][0], FILES[2][0]}  # newest first: the batch's files
    assert names[2] == single["metadata"]["name"]
    batch_entries = [job for job in jobs if job.mediajob is not None]
    assert {job.mediajob_name for job in batch_entries} == {body["metadata"]["name"]}
    assert sorted(job.index for job in batch_entries) == [0, 2]  # type: ignore[type-var]


def test_a_status_filter_reads_each_files_status_from_its_item() -> None:
    items = [
        {"index": 0, "phase": "Succeeded"},
        {"index": 1, "phase": "Failed", "reason": "InvalidInput"},
        {"index": 2, "phase": "Succeeded"},
    ]
    body = batch({"phase": "Succeeded", "items": items})
    single = mediajob(status={"phase": "Succeeded"})
    completed = unlabelled_matching([body, single], JobStatus.COMPLETED)
    assert {job.name for job in completed} == {FILES[0][0], FILES[2][0], single["metadata"]["name"]}
    failed = unlabelled_matching([body, single], JobStatus.FAILED)
    assert [(job.name, job.index) for job in failed] == [(FILES[1][0], 1)]


def test_a_batch_counts_its_active_files_against_the_cap() -> None:
    items = [
        {"index": 0, "phase": "Succeeded"},
        {"index": 1, "phase": "Running"},
        {"index": 2, "phase": "Pending"},
    ]
    assert active_count([batch()]) == 3  # not accepted yet: every file pending
    running = batch({"phase": "Running", "items": items})
    assert active_count([running, mediajob()]) == 3
    running["metadata"]["labels"].pop(job_label(FILES[2][0]))  # deleted by its owner
    assert active_count([running]) == 1
    running["metadata"]["deletionTimestamp"] = "2026-11-28T10:05:00Z"
    assert active_count([running]) == 0


def test_deleting_one_file_removes_its_label_and_cancels_its_input() -> None:
    body = batch()
    patch = item_removal_patch(body, FILES[1][0])
    assert patch == {
        "metadata": {
            "resourceVersion": "41",
            "labels": {job_label(FILES[1][0]): None},
            "annotations": {"mediaflow.io/cancel-item-1": "true"},
        }
    }


@pytest.mark.parametrize(
    ("filenames", "expected"),
    [('["a.jpg", "b.jpg"]', "b.webp"), ("not json", "result.webp"), ('["a.jpg"]', "result.webp"),
     ("[1, 2]", "result.webp")],
)  # fmt: skip
def test_a_batch_files_result_is_named_after_it(filenames: str, expected: str) -> None:
    body = batch()
    body["metadata"]["annotations"][ANNOTATION_FILENAMES] = filenames
    assert result_filename(body, "image/webp", 1) == expected


def test_bodies_carry_the_request_that_made_them() -> None:
    """Single and batch MediaJobs of an upload name its request id (issue 13 item 6)."""
    single = mediajob_body(
        new_job_id(), "team", OWNER, "a.jpg", JobType.IMAGE_CONVERT_WEBP, SPEC,
        retention_seconds=60, request_id="rid-1",
    )  # fmt: skip
    assert single["metadata"]["annotations"][ANNOTATION_REQUEST_ID] == "rid-1"
    assert ANNOTATION_REQUEST_ID == "mediaflow.io/request-id"
    batch = batch_mediajob_body(
        new_batch_name(), "team", OWNER, FILES, JobType.IMAGE_CONVERT_WEBP, BATCH_SPEC,
        retention_seconds=60, request_id="rid-2",
    )  # fmt: skip
    assert batch["metadata"]["annotations"][ANNOTATION_REQUEST_ID] == "rid-2"
    without = mediajob_body(
        new_job_id(), "team", OWNER, "a.jpg", JobType.IMAGE_CONVERT_WEBP, SPEC,
        retention_seconds=60,
    )  # fmt: skip
    assert ANNOTATION_REQUEST_ID not in without["metadata"]["annotations"]
