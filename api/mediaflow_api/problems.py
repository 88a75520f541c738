"""Every error answered as RFC 9457 problem details (`application/problem+json`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import (
    HTTP_401_UNAUTHORIZED,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
)
from litestar.types import ExceptionHandlersMap
from pydantic import BaseModel, Field

from mediaflow_api.metrics import AUTH_FAILURES

PROBLEM_JSON = "application/problem+json"
# Problem types are identifiers, not links: RFC 9457 allows non-dereferenceable URIs.
TYPE_PREFIX = "urn:mediaflow:problem:"
VALIDATION_TYPE = f"{TYPE_PREFIX}invalid-request"
GENERIC_TYPE = "about:blank"  # RFC 9457 4.2.1: the problem is just the HTTP status

logger = logging.getLogger(__name__)


class FieldError(BaseModel):
    """One offending field of a request that failed validation."""

    # Optional (not required-but-nullable): answers leave out what is unknown
    # (`exclude_none`), and the schema must allow that.
    field: str | None = Field(
        default=None, description="Name of the field, when the error concerns one."
    )
    source: str | None = Field(
        default=None, description="Where it came from: body, query, path, header..."
    )
    message: str


class ProblemDetails(BaseModel):
    """The body of every error response (RFC 9457)."""

    type: str = Field(description="URI identifying the kind of problem.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int
    detail: str = Field(description="What went wrong with this request, and how to fix it.")
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[FieldError] | None = Field(
        default=None, description="The offending fields (validation errors only)."
    )


class Problem(HTTPException):
    """An error of this API with its own problem type, e.g. `Problem(409, "email-taken", ...)`."""

    def __init__(
        self,
        status_code: int,
        kind: str,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        errors: list[FieldError] | None = None,
    ) -> None:
        super().__init__(detail=detail, status_code=status_code, headers=headers)
        self.kind = kind  # the slug: a bounded label value of the API's metrics
        self.type = f"{TYPE_PREFIX}{kind}"
        self.title = title
        self.errors = errors


# What a 400 means, for every operation: Litestar answers it (as problem details, through
# `handle_http_exception`) when it cannot read a request at all, before any handler runs.
UNREADABLE_REQUEST = (
    "The request could not be read: a body that is not the documented encoding (e.g. "
    "malformed JSON, a truncated form), or a parameter that cannot be parsed."
)


def problem_responses(
    *statuses: int, meanings: Mapping[int, str] | None = None
) -> dict[int, ResponseSpec]:
    """OpenAPI entries for a handler's error statuses, e.g. `responses=problem_responses(422)`;
    `meanings` says what a status means for this operation (default: its HTTP phrase).

    400 is always included: Litestar would otherwise document its own 400 body
    (`status_code`, `detail`, `extra`) for every operation that reads a body or a
    parameter, where this API answers problem details like for every other error.
    """
    described = {s: HTTPStatus(s).phrase for s in statuses} | {400: UNREADABLE_REQUEST}
    described |= dict(meanings or {})
    return {
        status: ResponseSpec(
            ProblemDetails,
            description=meaning,
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status, meaning in sorted(described.items())
    }


def problem_response(
    request: Request[Any, Any, Any], problem: ProblemDetails, headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    """A problem-details response; `instance` is the request path."""
    problem.instance = request.url.path
    return Response(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _default_detail(request: Request[Any, Any, Any], status: int) -> str:
    """A sentence a person can act on, for exceptions raised without their own detail."""
    path, method = request.url.path, request.method
    return {
        404: f"Nothing exists at {path}; check the URL against the API docs at /docs.",
        405: f"{method} is not allowed on {path}; the Allow header lists the methods that are.",
    }.get(status, HTTPStatus(status).description or HTTPStatus(status).phrase)


def _field_errors(exc: ValidationException) -> list[FieldError]:
    extra = exc.extra if isinstance(exc.extra, list) else [exc.extra] if exc.extra else []
    return [
        FieldError(
            field=item.get("key"), source=item.get("source"), message=str(item.get("message"))
        )
        if isinstance(item, dict)
        else FieldError(field=None, source=None, message=str(item))
        for item in extra
    ]


def handle_http_exception(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[dict[str, Any]]:
    """Litestar's HTTP exceptions (including 404/405 from routing) and our `Problem`s."""
    status = exc.status_code
    if isinstance(exc, ValidationException):
        # 422 for fields that were read but are invalid, as the previous (FastAPI) service
        # answered; a body that cannot be parsed at all stays a 400.
        status = HTTP_422_UNPROCESSABLE_ENTITY
    phrase = HTTPStatus(status).phrase
    if status >= HTTP_500_INTERNAL_SERVER_ERROR and not isinstance(exc, Problem):
        # Litestar raises these for its own misconfiguration; the text is for operators only.
        logger.error("%s %s failed: %r", request.method, request.url.path, exc)
        return handle_unexpected(request, exc)
    if isinstance(exc, Problem):
        if status == HTTP_401_UNAUTHORIZED:
            AUTH_FAILURES.labels(reason=exc.kind).inc()
        problem = ProblemDetails(
            type=exc.type, title=exc.title, status=status, detail=exc.detail, errors=exc.errors
        )
    elif isinstance(exc, ValidationException):
        errors = _field_errors(exc)
        fields = ", ".join(e.field for e in errors if e.field)
        if fields:
            detail = f"Invalid value for {fields}; see `errors` for what each one must be."
        elif exc.detail != phrase:
            detail = exc.detail
        else:
            detail = "The request could not be read; check it against the API docs at /docs."
        problem = ProblemDetails(
            type=VALIDATION_TYPE,
            title="Your request is not valid",
            status=status,
            detail=detail,
            errors=errors,
        )
    else:
        detail = exc.detail if exc.detail and exc.detail != phrase else None
        problem = ProblemDetails(
            type=GENERIC_TYPE,
            title=phrase,
            status=status,
            detail=detail or _default_detail(request, status),
        )
    return problem_response(request, problem, headers=exc.headers)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """Anything else: a 500 that tells nothing internal, with the traceback in the log."""
    logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    problem = ProblemDetails(
        type=GENERIC_TYPE,
        title=HTTPStatus.INTERNAL_SERVER_ERROR.phrase,
        status=HTTP_500_INTERNAL_SERVER_ERROR,
        detail="The server failed to handle this request; the error has been logged. "
        "Try again later, or report it with the time of the request.",
    )
    return problem_response(request, problem)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
