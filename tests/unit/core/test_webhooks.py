"""The completion event and its signature (issue 15): built and signed by pure functions,
verified with `standardwebhooks`, the Standard Webhooks reference library for Python."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from mediaflow_core import webhooks
from mediaflow_core.mediajob import MediaJobSpec

NOW = datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)


def succeeded(value: str, reason: str) -> dict:
    return {"type": "Succeeded", "status": value, "reason": reason, "lastTransitionTime": "x"}


def finished(phase: str = "Succeeded", **labels: str) -> dict:
    status: dict = {
        "phase": phase,
        "completionTime": "2026-12-03T07:59:58Z",
        "conditions": [
            {"type": "Accepted", "status": "True", "reason": "JobCreated",
             "lastTransitionTime": "2026-12-03T07:59:50Z"},
        ],
    }  # fmt: skip
    if phase == "Succeeded":
        status["result"] = {
            "bucket": "media", "key": "ns/results/u/output", "size": 1234,
            "contentType": "image/webp", "width": 640, "height": 480,
            "url": "https://files.example/ns/results/u/output?X-Amz-Signature=abc",
            "urlExpiresAt": "2026-12-03T08:59:58Z",
        }  # fmt: skip
        status["conditions"].append(succeeded("True", "Completed"))
    else:
        status["message"] = "the input is not a valid image"
        status["conditions"].append(succeeded("False", "InvalidInput"))
    return {
        "metadata": {"namespace": "team-a", "name": "job-1", "uid": "0a1b", "labels": labels},
        "status": status,
    }


def test_an_event_verifies_with_the_standard_webhooks_library() -> None:
    secret = webhooks.new_signing_secret()
    event = webhooks.build_event(finished(), webhooks.webhook_id("0a1b"), NOW)
    body = webhooks.encode(event)
    # The library checks the timestamp against its own clock: sign at "now" for it.
    now = int(datetime.now(UTC).timestamp())
    headers = webhooks.signed_headers(webhooks.signing_keys(secret), "msg_0a1b", now, body)
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    assert headers["webhook-id"] == "msg_0a1b"
    assert headers["content-type"] == "application/cloudevents+json"
    # The library's own signature is ours, byte for byte.
    ours = headers["webhook-signature"]
    theirs = Webhook(secret).sign("msg_0a1b", datetime.fromtimestamp(now, UTC), body.decode())
    assert ours == theirs


def test_a_tampered_body_or_another_key_does_not_verify() -> None:
    secret, other = webhooks.new_signing_secret(), webhooks.new_signing_secret()
    body = webhooks.encode(webhooks.build_event(finished(), "msg_x", NOW))
    now = int(datetime.now(UTC).timestamp())
    headers = webhooks.signed_headers(webhooks.signing_keys(secret), "msg_x", now, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"1234", b"1235"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_during_a_rotation_both_keys_sign_and_either_verifies() -> None:
    old, new = webhooks.new_signing_secret(), webhooks.new_signing_secret()
    body = webhooks.encode(webhooks.build_event(finished(), "msg_x", NOW))
    now = int(datetime.now(UTC).timestamp())
    headers = webhooks.signed_headers(webhooks.signing_keys(f"{new} {old}"), "msg_x", now, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(body, headers)
    assert Webhook(new).verify(body, headers)


def test_the_event_is_a_cloudevent_with_what_receivers_need() -> None:
    event = webhooks.build_event(finished(**{webhooks.LABEL_OWNER: "user-1"}), "msg_0a1b", NOW)
    assert event["specversion"] == "1.0"
    assert event["id"] == "msg_0a1b"
    assert event["type"] == "io.mediaflow.mediajob.succeeded"
    assert event["source"] == "/apis/mediaflow.io/v1alpha1/namespaces/team-a/mediajobs/job-1"
    assert event["time"] == "2026-12-03T07:59:58Z"
    assert event["datacontenttype"] == "application/json"
    data = event["data"]
    assert data["id"] == "team-a/job-1"
    assert data["jobId"] == "job-1"
    assert data["status"] == "Succeeded"
    assert data["result"]["size"] == 1234
    assert (data["result"]["width"], data["result"]["height"]) == (640, 480)
    assert data["result"]["url"].startswith("https://files.example/")
    assert "error" not in data
    assert "bucket" not in data["result"]


def test_a_failed_event_says_why_and_a_kubectl_job_has_no_api_id() -> None:
    event = webhooks.build_event(finished("Failed"), "msg_0a1b", NOW)
    assert event["type"] == "io.mediaflow.mediajob.failed"
    assert "jobId" not in event["data"]
    assert "result" not in event["data"]
    assert event["data"]["error"] == {
        "reason": "InvalidInput",
        "message": "the input is not a valid image",
    }
    assert webhooks.event_type("Cancelled") == "io.mediaflow.mediajob.cancelled"


@pytest.mark.parametrize(
    "value", ["", "secret", "whsec_", "whsec_not base64!", "whsec_@@@", "whsec_AAAA other"]
)
def test_bad_signing_secrets_are_refused(value: str) -> None:
    with pytest.raises(webhooks.SigningSecretError):
        webhooks.signing_keys(value)


def test_a_new_secret_has_32_random_bytes() -> None:
    one, two = webhooks.new_signing_secret(), webhooks.new_signing_secret()
    assert one != two
    assert len(base64.b64decode(one.removeprefix("whsec_"))) == 32


def test_spec_notify_is_validated() -> None:
    base = {"input": {"object": {"key": "ns/a"}}, "operation": "ImageConvert",
            "imageConvert": {"format": "webp"}}  # fmt: skip
    ref = {"name": "hooks", "key": "secret"}
    spec = MediaJobSpec.model_validate(
        {**base, "notify": {"url": "https://example.com/hook", "secretRef": ref}}
    )
    assert spec.notify is not None
    assert spec.notify.secret_ref.name == "hooks"
    for url in ("ftp://example.com/", "https://user:pw@example.com/", "https://" + "a" * 2050):
        with pytest.raises(ValueError, match="url"):
            MediaJobSpec.model_validate({**base, "notify": {"url": url, "secretRef": ref}})
    with pytest.raises(ValueError, match="secretRef"):
        MediaJobSpec.model_validate({**base, "notify": {"url": "https://example.com/"}})
