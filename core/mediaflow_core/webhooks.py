"""Completion webhooks (issue 15): the event a finished MediaJob announces and its signature.

Pure functions, no I/O. The event is a CloudEvents 1.0 JSON document in structured mode; the
request carries the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
`webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`), so a receiver can
verify it with any Standard Webhooks library. The operator delivers (mediaflow_operator/
notifier.py); the API makes its users' signing secrets (`new_signing_secret`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import datetime
from typing import Any

from mediaflow_core import constants as c

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix)
EVENT_TYPE_PREFIX = "io.mediaflow.mediajob."
CONTENT_TYPE = "application/cloudevents+json"
# Standard Webhooks recommends 24 to 64 bytes of key.
SECRET_BYTES = 32
# A MediaJob with the API's owner label is an API job, whose name is the API's job id.
LABEL_OWNER = c.LABEL_OWNER
# What the event tells of the result.
RESULT_FIELDS = ("url", "urlExpiresAt", "size", "contentType", "width", "height", "duration")


class SigningSecretError(ValueError):
    """The signing secret is not `whsec_<base64>` (none usable)."""


def new_signing_secret() -> str:
    """A fresh signing secret, `whsec_<base64 of 32 random bytes>`."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signing_keys(value: str) -> list[bytes]:
    """The keys of a Secret's value: one or more `whsec_<base64>` separated by whitespace
    (during a rotation, the new one and the old one: each signs, as the specification
    allows several signatures). Raises SigningSecretError when there is none or one is bad."""
    keys = []
    for word in value.split():
        if not word.startswith(SECRET_PREFIX):
            raise SigningSecretError("a signing secret must start with 'whsec_'")
        try:
            key = base64.b64decode(word.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            raise SigningSecretError("a signing secret is 'whsec_' and base64") from None
        if not key:
            raise SigningSecretError("a signing secret must not be empty")
        keys.append(key)
    if not keys:
        raise SigningSecretError("no signing secret")
    return keys


def signature(keys: list[bytes], webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: `v1,<base64 HMAC-SHA256>` of `id.timestamp.body` with
    each key, separated by spaces."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for key in keys
    )


def signed_headers(keys: list[bytes], webhook_id: str, timestamp: int, body: bytes) -> dict:
    """Every header of one attempt (the only ones sent besides Host and Content-Length)."""
    return {
        "content-type": CONTENT_TYPE,
        "user-agent": "mediaflow-operator",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(keys, webhook_id, timestamp, body),
    }


def webhook_id(uid: str) -> str:
    """The id of a MediaJob's completion event: one per MediaJob (it ends once), the same on
    every attempt and after an operator restart."""
    return f"msg_{uid}"


def event_type(phase: str) -> str:
    """`io.mediaflow.mediajob.succeeded|failed|cancelled`."""
    return EVENT_TYPE_PREFIX + phase.lower()


def source(namespace: str, name: str) -> str:
    """The CloudEvents source: the MediaJob's API path."""
    return f"/apis/{c.API_VERSION}/namespaces/{namespace}/mediajobs/{name}"


def build_event(body: dict[str, Any], event_id: str, now: datetime) -> dict[str, Any]:
    """The CloudEvents structured-mode document for a finished MediaJob (its status says how
    it ended). `now` is the event's time when the status has no completionTime."""
    meta, status = body["metadata"], body.get("status") or {}
    namespace, name = meta["namespace"], meta["name"]
    phase = status.get("phase") or "Unknown"
    result = status.get("result") or {}
    data: dict[str, Any] = {
        "id": f"{namespace}/{name}",
        "namespace": namespace,
        "name": name,
        "uid": meta.get("uid"),
        "status": phase,
    }
    if (meta.get("labels") or {}).get(LABEL_OWNER):
        data["jobId"] = name
    if result:
        data["result"] = {key: result[key] for key in RESULT_FIELDS if result.get(key) is not None}
    if status.get("itemsDone"):
        data["itemsDone"] = status["itemsDone"]
    if phase != "Succeeded":
        succeeded = next(
            (x for x in status.get("conditions") or [] if x.get("type") == "Succeeded"), {}
        )
        data["error"] = {
            "reason": succeeded.get("reason") or phase,
            "message": status.get("message") or succeeded.get("message") or "",
        }
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source(namespace, name),
        "type": event_type(phase),
        "subject": name,
        "time": status.get("completionTime") or now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "datacontenttype": "application/json",
        "data": data,
    }


def encode(event: dict[str, Any]) -> bytes:
    """The request body: compact JSON, keys in a stable order."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
