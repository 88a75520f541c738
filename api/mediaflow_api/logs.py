"""The API's logging: JSON lines by default, text for development
(`MEDIAFLOW_API_LOG_FORMAT=json|text`), every record carrying the request and user id of
the request it was logged in (`request_context`). Uvicorn's loggers go through the same
handler; its access log is off, each request logs one line of its own instead
(`request_context.before_send`)."""

from __future__ import annotations

import logging
import sys
from typing import Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from mediaflow_api.request_context import current_context

LogFormat = Literal["json", "text"]

# What every JSON line has, beside the record's extra fields (method, route, status, ...).
JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(request_id)s %(user_id)s"
JSON_RENAMES = {"levelname": "level", "name": "logger"}
# Uvicorn adds a copy of its message with terminal colour codes: not for a JSON line.
JSON_OMITTED = (*RESERVED_ATTRS, "color_message")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s"


class RequestContextFilter(logging.Filter):
    """Gives each record `request_id` and `user_id` (None outside a request) unless the
    record brings its own (the request line does: it may be logged outside the context)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current_context()
        if not hasattr(record, "request_id"):
            record.request_id = context.request_id if context else None
        if not hasattr(record, "user_id"):
            record.user_id = context.user_id if context else None
        return True


def formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(
            JSON_FIELDS, rename_fields=JSON_RENAMES, timestamp="time", reserved_attrs=JSON_OMITTED
        )
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(log_format: LogFormat, level: str = "INFO") -> logging.Handler:
    """One stderr handler on the root logger, in `log_format`; returns it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Uvicorn's own loggers propagate to the root handler; its access log is replaced by the
    # request line (uvicorn.run(access_log=False)).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler
