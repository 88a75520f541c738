"""Which MediaJob the operator's log lines are about (issue 13, structured logs).

A reconcile runs `about(body)`; while it runs, every line the operator's own loggers write
carries the MediaJob as Kopf's JSON lines carry an object (`object`: apiVersion, kind,
namespace, name, uid) and, when the API made it, its request id (`requestId`, from the
`mediaflow.io/request-id` annotation), so one upload can be followed from the API's request
to the operator and the worker's pod (which gets it as MEDIAFLOW_REQUEST_ID).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from mediaflow_core import constants as c
from mediaflow_operator.builders import request_id_of

# The operator's modules that log about one MediaJob while reconciling it.
LOGGERS = (
    "mediaflow_operator.reconciler",
    "mediaflow_operator.runtime",
    "mediaflow_operator.warm",
    "mediaflow_operator.progress",
)
_current: ContextVar[tuple[dict[str, str], str | None] | None] = ContextVar(
    "mediaflow_mediajob", default=None
)


def reference(body: dict[str, Any]) -> dict[str, str]:
    """The object reference Kopf's JSON log lines carry."""
    meta = body.get("metadata") or {}
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
    }


@contextmanager
def about(body: dict[str, Any] | None) -> Iterator[None]:
    """Log lines written in this block (this thread) are about the MediaJob `body`."""
    token = _current.set((reference(body), request_id_of(body)) if body is not None else None)
    try:
        yield
    finally:
        _current.reset(token)


class MediaJobFields(logging.Filter):
    """Adds the current MediaJob's reference and request id to a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _current.get()
        if current is not None:
            ref, request = current
            if not hasattr(record, "k8s_ref"):
                record.k8s_ref = ref
            if request is not None:
                record.requestId = request
        return True


FIELDS = MediaJobFields()


def install() -> None:
    """Give the operator's loggers the filter (a logger's filters see only its own records)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if FIELDS not in logger.filters:
            logger.addFilter(FIELDS)
