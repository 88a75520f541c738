"""What the API knows about the request it is answering: its id (`X-Request-ID`), the user
once authenticated, and the one log line each request ends with.

The id is taken from the client's `X-Request-ID` when it is sane (`sanitise_request_id`),
otherwise made up (uuid4 hex). It is answered in the `X-Request-ID` header of every response,
errors and routing 404/405 included: the header is added by a `before_send` hook, which sees
every message the app sends, where middleware only wraps requests that matched a route. The
middleware (`RequestContextMiddleware`) makes the context current for everything logged
while a routed request runs; uploads write the id into the MediaJobs they create
(`mediaflow.io/request-id`), so one upload can be followed from request to pod.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from mediaflow_api.metrics import HEALTH_PATH, METRICS_PATH

REQUEST_ID_HEADER = "X-Request-ID"
# Long enough for a uuid with prefixes or a trace id, short enough for an annotation value
# and a log field; characters that need no quoting anywhere (headers, JSON, label selectors).
MAX_REQUEST_ID_LENGTH = 128
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]+$")
_STATE_KEY = "mediaflow_request"
QUIET_PATHS = frozenset({METRICS_PATH, HEALTH_PATH})

access_logger = logging.getLogger("mediaflow_api.access")


def sanitise_request_id(value: str | None) -> str | None:
    """`value` when it may be used as the request's id (1-128 characters of letters, digits
    and `._:-`), else None (the caller makes a new one)."""
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_REQUEST_ID_LENGTH or not _SAFE_REQUEST_ID.match(value):
        return None
    return value


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass
class RequestContext:
    """One request's id, its user once known, and what its log line reports."""

    request_id: str
    started: float = field(default_factory=time.perf_counter)
    user_id: str | None = None
    status: int | None = None
    logged: bool = False


_current: ContextVar[RequestContext | None] = ContextVar("mediaflow_request", default=None)


def current_context() -> RequestContext | None:
    """The context of the request being handled (None outside a routed request)."""
    return _current.get()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def context_of(scope: Scope) -> RequestContext:
    """The request's context, made on first use from its `X-Request-ID` header."""
    state: dict[str, Any] = scope.setdefault("state", {})  # type: ignore[typeddict-item]
    context = state.get(_STATE_KEY)
    if context is None:
        request_id = sanitise_request_id(_header(scope, b"x-request-id")) or new_request_id()
        context = state[_STATE_KEY] = RequestContext(request_id)
    return context


class RequestContextMiddleware(ASGIMiddleware):
    """Makes the request's context current while a routed request runs (log records of the
    handler and its threads carry the request and user id)."""

    scopes = ("http",)  # type: ignore[assignment]

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        token = _current.set(context_of(scope))
        try:
            await next_app(scope, receive, send)
        finally:
            _current.reset(token)


def request_line(scope: Scope, context: RequestContext) -> tuple[str, dict[str, Any]]:
    """The message and fields of a request's log line. `route` is the route template (None
    when no route matched); never the query string, headers or body."""
    duration_ms = round((time.perf_counter() - context.started) * 1000, 3)
    fields = {
        "request_id": context.request_id,
        "user_id": context.user_id,
        "method": scope.get("method"),
        "route": scope.get("path_template"),
        "path": scope.get("path"),
        "status": context.status,
        "duration_ms": duration_ms,
    }
    message = f"{fields['method']} {fields['path']} {context.status} {duration_ms:.1f}ms"
    return message, fields


async def before_send(message: Message, scope: Scope) -> None:
    """Every response gets `X-Request-ID`; its last body message logs the request's line."""
    if scope["type"] != "http":
        return
    context = context_of(scope)
    if message["type"] == "http.response.start":
        MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = context.request_id
        context.status = message["status"]
    elif (
        message["type"] == "http.response.body"
        and not message.get("more_body", False)
        and not context.logged
    ):
        context.logged = True
        text, fields = request_line(scope, context)
        access_logger.log(line_level(scope.get("path"), context.status), text, extra=fields)


def line_level(path: str | None, status: int | None) -> int:
    """WARNING for a 5xx; DEBUG for a scrape or probe that went well (every few seconds,
    they would drown the lines of real requests); INFO otherwise."""
    if (status or 0) >= 500:
        return logging.WARNING
    if path in QUIET_PATHS and (status or 0) < 400:
        return logging.DEBUG
    return logging.INFO
