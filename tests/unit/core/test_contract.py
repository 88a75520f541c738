"""The contract package: what the worker writes the operator reads back, and one S3 settings
model read alike by the API and the operator."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest

from mediaflow_api.settings import ApiSettings
from mediaflow_core import constants as c
from mediaflow_core.mediajob import MediaJobStatus
from mediaflow_core.naming import (
    MediaJobRef,
    cancel_item_annotation,
    cancelled_items,
    upload_input_key,
    upload_item_key,
    upload_prefix,
)
from mediaflow_core.storage import S3Settings
from mediaflow_core.termination import (
    MESSAGE_LIMIT,
    FailureReason,
    WorkerFailure,
    WorkerResult,
    read_termination,
)
from mediaflow_operator.builders import decide_input_deletion
from mediaflow_operator.config import OperatorSettings
from mediaflow_operator.deciders import followed
from mediaflow_operator.observed import JobView, PodView
from mediaflow_worker.report import failure_message, success_message

RESULT = {
    "size": 1234,
    "contentType": "image/webp",
    "format": "webp",
    "width": 640,
    "height": 480,
    "duration": None,
}


def finished_pod(message: str, exit_code: int) -> PodView:
    return PodView.from_body(
        {
            "metadata": {"name": "p", "creationTimestamp": "2026-12-02T00:00:00Z"},
            "status": {
                "containerStatuses": [
                    {
                        "name": "worker",
                        "state": {
                            "terminated": {
                                "exitCode": exit_code,
                                "message": message,
                                "startedAt": "2026-12-02T00:00:01Z",
                            }
                        },
                    }
                ]
            },
        }
    )


def decide_status(*, job: JobView, pods: list[PodView], now: datetime) -> dict:
    pending = MediaJobStatus.model_validate({"phase": "Pending", "jobName": "j"})
    transition = followed(pending, job=job, pods=tuple(pods), generation=1, now=now)
    assert transition is not None
    status = transition.status.model_dump(mode="json", by_alias=True, exclude_none=True)
    if transition.result is not None:  # what the status's result takes of the worker's
        status["result"] = transition.result.model_dump(
            by_alias=True, exclude_none=True, exclude={"format"}
        )
    return status


def job(condition: str, reason: str = "") -> JobView:
    return JobView("j", "u", ("o",), condition, reason, 300)


def test_the_workers_result_is_what_the_operator_records() -> None:
    text = success_message(dict(RESULT))
    assert json.loads(text) == RESULT  # the wire format: camelCase, nulls kept
    assert read_termination(text) == WorkerResult.model_validate(RESULT)
    status = decide_status(
        job=job("Complete"),
        pods=[finished_pod(text, 0)],
        now=datetime(2026, 12, 2, 0, 0, 5, tzinfo=UTC),
    )
    assert status["phase"] == "Succeeded"
    # The status schema's result: not the short format name, no nulls.
    assert status["result"] == {"size": 1234, "contentType": "image/webp", "width": 640,
                                "height": 480}  # fmt: skip


def test_the_workers_failure_is_what_the_operator_reports() -> None:
    text = failure_message(c.REASON_INVALID_INPUT, "the input is text/plain content, not JPEG")
    failure = read_termination(text)
    assert failure == WorkerFailure(
        reason=FailureReason.INVALID_INPUT, message="the input is text/plain content, not JPEG"
    )
    status = decide_status(
        job=job("Failed", "PodFailurePolicy"),
        pods=[finished_pod(text, c.EXIT_INVALID_INPUT)],
        now=datetime(2026, 12, 2, 0, 0, 5, tzinfo=UTC),
    )
    assert status["phase"] == "Failed"
    assert status["message"] == "the input is text/plain content, not JPEG"
    assert status["conditions"][-1]["reason"] == "InvalidInput"


def test_a_long_failure_fits_and_keeps_no_url_signature() -> None:
    text = failure_message(
        c.REASON_TRANSIENT_ERROR, "GET http://minio:9000/b/k?X-Amz-Signature=abc " + "x" * 5000
    )
    failure = read_termination(text)
    assert isinstance(failure, WorkerFailure)
    assert len(failure.message) == MESSAGE_LIMIT
    assert "abc" not in failure.message


@pytest.mark.parametrize(
    "text",
    [None, "", "not json", "[1, 2]", '{"size": "big"}', '{"reason": "Nope", "message": "x"}'],
)
def test_what_is_not_a_worker_message_reads_as_none(text: str | None) -> None:
    assert read_termination(text) is None


def test_a_complete_job_without_a_result_fails() -> None:
    status = decide_status(
        job=job("Complete"),
        pods=[finished_pod('{"reason": "TransientError", "message": "x"}', 0)],
        now=datetime(2026, 12, 2, 0, 0, 5, tzinfo=UTC),
    )
    assert (status["phase"], status["conditions"][-1]["reason"]) == ("Failed", "ResultMissing")


def test_the_apis_upload_key_is_an_upload_of_its_mediajob() -> None:
    ref = MediaJobRef(name="0b6f3c2e-9d4c-4a51-8e7f-1f2a3b4c5d6e", namespace="media", uid="u")
    assert upload_input_key(ref.namespace, ref.name).startswith(upload_prefix(ref))


def test_a_batch_files_upload_key_is_an_upload_of_the_batchs_mediajob() -> None:
    ref = MediaJobRef(name="batch-0b6f3c2e", namespace="media", uid="u")
    key = upload_item_key(ref.namespace, ref.name, "1f2a3b4c-9d4c-4a51-8e7f-1f2a3b4c5d6e")
    assert key.startswith(upload_prefix(ref))
    annotations = {c.ANNOTATION_DELETE_INPUT: "true"}
    decision = decide_input_deletion(ref, annotations, {"key": key}, "media")
    assert decision is not None
    assert decision.allowed


def test_the_annotation_that_cancels_one_item_is_read_back() -> None:
    annotations = {
        cancel_item_annotation(0): "true",
        cancel_item_annotation(17): "true",
        cancel_item_annotation(3): "false",  # only "true" cancels
        f"{c.ANNOTATION_CANCEL_ITEM_PREFIX}x": "true",  # not an index
        f"{c.ANNOTATION_CANCEL_ITEM_PREFIX}12345": "true",  # beyond any index
        c.ANNOTATION_CANCEL: "true",  # the whole MediaJob's: not an item's
    }
    assert cancelled_items(annotations) == {0, 17}
    assert cancelled_items(None) == frozenset()


S3_ENV = {
    "MEDIAFLOW_S3_ENDPOINT": "http://minio:9000",
    "MEDIAFLOW_S3_PUBLIC_ENDPOINT": "https://files.example.com",
    "MEDIAFLOW_S3_ACCESS_KEY": "access",
    "MEDIAFLOW_S3_SECRET_KEY": "secret-key-value",
    "MEDIAFLOW_S3_BUCKET": "media",
    "MEDIAFLOW_S3_REGION": "eu-west-1",
    "MEDIAFLOW_RESULT_URL_TTL_SECONDS": "600",
}


def test_api_and_operator_read_object_storage_from_the_same_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("MEDIAFLOW_")]:
        monkeypatch.delenv(name)
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    fields = list(S3Settings.model_fields)
    expected = S3Settings().model_dump(include=set(fields))
    assert expected["s3_bucket"] == "media"
    assert expected["result_url_ttl_seconds"] == 600
    for settings in (ApiSettings, OperatorSettings):
        assert settings().model_dump(include=set(fields)) == expected
        assert {settings.env_name(f) for f in fields} == set(S3_ENV)
        assert "secret-key-value" not in repr(settings())
    assert OperatorSettings.env_name("image") == "MEDIAFLOW_IMAGE"
    assert ApiSettings.env_name("port") == "MEDIAFLOW_API_PORT"


def test_both_refuse_an_endpoint_that_is_not_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MEDIAFLOW_S3_ENDPOINT", "minio:9000")
    for settings in (ApiSettings, OperatorSettings):
        with pytest.raises(ValueError, match="not an endpoint URL"):
            settings()
