"""`POST /image/renditions` (pure parts): the form's JSON list becomes spec.renditions, a bad
list is a 422 with the model's words, and a completed job lists every rendition with its
own URL and file name (result_url the first's)."""

from __future__ import annotations

import json

import pytest

from mediaflow_api.jobs.model import (
    JobStatus,
    JobType,
    mediajob_body,
    new_job_id,
    to_item_job,
    to_job,
)
from mediaflow_api.uploads.forms import (
    ENDPOINTS,
    InvalidFieldsError,
    check_fields_so_far,
    mediajob_spec,
)
from mediaflow_api.uploads.openapi import request_body
from mediaflow_core.mediajob import MediaJobSpec

pytestmark = pytest.mark.unit

KEY = "ns/uploads/id/input"
ENDPOINT = ENDPOINTS["/image/renditions"]
LIST = [
    {"name": "w320-webp", "format": "webp", "width": 320},
    {"name": "w320-avif", "format": "avif", "width": 320, "quality": 50},
]


def test_the_list_becomes_the_specs_renditions() -> None:
    spec = mediajob_spec(ENDPOINT, {"renditions": json.dumps(LIST)}, KEY)
    assert "imageConvert" not in spec
    assert spec["renditions"] == [
        {"name": "w320-webp", "format": "webp", "quality": 85, "width": 320},
        {"name": "w320-avif", "format": "avif", "quality": 50, "width": 320},
    ]
    assert MediaJobSpec.model_validate(spec).renditions is not None
    assert ENDPOINT.job_type is JobType.IMAGE_RENDITIONS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[{", "must be a JSON list of renditions"),
        ("", "must be a JSON list of renditions"),
        ("{}", "Input should be a valid list"),
        ("[]", "at least 1 item"),
        (
            json.dumps([{"name": "a", "format": "webp"}, {"name": "a", "format": "png"}]),
            "rendition names must be unique; used more than once: a",
        ),
        (json.dumps([{"name": "a", "format": "gif"}]), "'webp', 'avif', 'png' or 'jpeg'"),
        (json.dumps([{"name": "Big", "format": "webp"}]), "should match pattern"),
        (json.dumps([{"name": f"r{i}", "format": "png"} for i in range(13)]), "at most 12"),
    ],
)
def test_a_bad_list_is_refused_before_the_file_with_the_models_words(
    text: str, message: str
) -> None:
    with pytest.raises(InvalidFieldsError) as caught:
        check_fields_so_far(ENDPOINT, {"renditions": text})
    ((field, detail),) = caught.value.errors
    assert field == "renditions"
    assert message in detail


def test_the_list_is_required() -> None:
    with pytest.raises(InvalidFieldsError) as caught:
        mediajob_spec(ENDPOINT, {}, KEY)
    assert caught.value.errors[0][0] == "renditions"


def test_the_openapi_body_documents_the_list() -> None:
    body = request_body(ENDPOINT)
    schema = body.content["multipart/form-data"].schema
    assert schema.required == ["file", "renditions"]
    renditions = schema.properties["renditions"]
    assert "JSON list" in renditions.description
    assert (renditions.min_items, renditions.max_items) == (1, 12)
    assert renditions.items.required == ["name", "format"]
    assert body.content["multipart/form-data"].encoding["renditions"].content_type == (
        "application/json"
    )


STATUS_RENDITIONS = [
    {"name": "w320-webp", "key": "ns/results/u/renditions/w320-webp", "contentType": "image/webp",
     "size": 10, "width": 320, "height": 240, "bucket": "b"},
    {"name": "w320-avif", "key": "ns/results/u/renditions/w320-avif", "contentType": "image/avif",
     "size": 9, "width": 320, "height": 240, "bucket": "b"},
]  # fmt: skip


def body(status: dict | None = None, **kw) -> dict:
    spec = mediajob_spec(ENDPOINT, {"renditions": json.dumps(LIST)}, KEY)
    mj = mediajob_body(
        new_job_id(), "ns", "u", "holiday photo.jpg", JobType.IMAGE_RENDITIONS, spec,
        retention_seconds=60,
    )  # fmt: skip
    mj["metadata"]["creationTimestamp"] = "2026-11-28T10:00:00Z"
    if status is not None:
        mj["status"] = status
    return mj


URL = "http://s/ns/results/u/renditions"


def sign(key: str, filename: str) -> str:
    return f"http://s/{key}?file={filename}"


def test_a_completed_job_lists_every_rendition_with_its_own_url_and_name() -> None:
    status = {
        "phase": "Succeeded",
        "result": {**STATUS_RENDITIONS[0], "name": None},
        "renditions": STATUS_RENDITIONS,
    }
    job = to_job(body(status), sign)
    assert job.status is JobStatus.COMPLETED
    assert job.renditions is not None
    assert [(r.name, r.url, r.content_type, r.width, r.size) for r in job.renditions] == [
        ("w320-webp", f"{URL}/w320-webp?file=holiday photo-w320-webp.webp", "image/webp", 320, 10),
        ("w320-avif", f"{URL}/w320-avif?file=holiday photo-w320-avif.avif", "image/avif", 320, 9),
    ]
    assert job.result_url == job.renditions[0].url


def test_renditions_are_null_until_completed_and_for_other_jobs() -> None:
    assert to_job(body({"phase": "Running"}), sign).renditions is None
    plain = body({"phase": "Succeeded", "result": {"key": "k", "contentType": "image/png"}})
    job = to_job(plain, sign)
    assert job.renditions is None
    assert job.result_url == "http://s/k?file=holiday photo.png"


def test_an_item_of_a_batch_lists_its_own_renditions() -> None:
    mj = body({"phase": "Succeeded", "items": [
        {"index": 0, "phase": "Succeeded", "renditions": STATUS_RENDITIONS}]})  # fmt: skip
    mj["metadata"]["annotations"]["mediaflow.io/filenames"] = json.dumps(["a.jpg"])
    job = to_item_job(mj, new_job_id(), 0, sign)
    assert job.renditions is not None
    assert job.renditions[1].url.endswith("?file=a-w320-avif.avif")
