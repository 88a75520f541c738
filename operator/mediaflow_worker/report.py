"""JSON log lines on stdout and the termination message; both keep URL signatures out.

The termination message is mediaflow_core.termination's model, which the operator reads back.
That module needs pydantic (~0.2 s of CPU to import), which a successful job has loaded for its
options anyway: it is imported when a message is written, not at the worker's start."""

from __future__ import annotations

import json
import re
import sys
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_LINES = threading.Lock()  # a warm pod's items log from several threads: whole lines only
# The API request that made the MediaJob being converted (MEDIAFLOW_REQUEST_ID, or a warm
# item's slot): every log line of it carries it as `requestId`.
request_id: ContextVar[str | None] = ContextVar("mediaflow_request_id", default=None)
_QUERY = re.compile(r"(https?://[^\s?#'\"]*)\?[^\s'\"]*")


def redact_url(url: str) -> str:
    """scheme://host/path: the query (presigned signature) and userinfo are dropped."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def redact(text: str) -> str:
    """Remove URL query strings from free text (exception messages quote URLs)."""
    return _QUERY.sub(r"\1?<redacted>", text)


def log(event: str, **fields: Any) -> None:
    """Write one JSON log line to stdout."""
    record = {"event": event, **fields}
    if (request := request_id.get()) is not None:
        record.setdefault("requestId", request)
    line = json.dumps(record, separators=(",", ":"), default=str) + "\n"
    with _LINES:
        sys.stdout.write(line)
        sys.stdout.flush()


def failure_message(reason: str, message: str, cost: dict[str, Any] | None = None) -> str:
    """Termination message of a failure, always under the 4096-byte limit (`cost`: the
    fields of a WorkerCost, what the attempt cost)."""
    from mediaflow_core.termination import WorkerCost, WorkerFailure

    spent = WorkerCost.model_validate(cost) if cost is not None else None
    return WorkerFailure.of(reason, redact(message), spent).to_json()


def success_message(result: dict[str, Any]) -> str:
    """Termination message of a success (`result`: the fields of a WorkerResult)."""
    # What WorkerResult(**result).to_json() writes (a unit test compares the two), without
    # loading pydantic only for this: the operator validates the message with the model when it
    # reads it back, and a plain ImageConvert job never loads pydantic otherwise.
    keys = ("size", "contentType", "format", "width", "height", "duration")
    message = {key: result.get(key) for key in keys}
    if result.get("renditions") is not None:
        message["renditions"] = result["renditions"]
    if result.get("cost") is not None:
        message["cost"] = result["cost"]
    return json.dumps(message, separators=(",", ":"))


def write_termination(path: str, text: str) -> None:
    """Write the termination message; failing to is logged, never fatal."""
    try:
        Path(path).write_text(text)
    except OSError as exc:
        log("termination-log-unwritable", path=path, error=exc.strerror)
