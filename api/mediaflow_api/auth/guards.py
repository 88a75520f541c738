"""The rate-limit guard of login/register and the `current_user` dependency of later endpoints."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler

from mediaflow_api.auth.ratelimit import TokenBucketLimiter, client_address, retry_after_header
from mediaflow_api.auth.schemas import UserView
from mediaflow_api.auth.service import AuthService, unauthorized
from mediaflow_api.metrics import RATE_LIMITED
from mediaflow_api.problems import Problem
from mediaflow_api.request_context import context_of


def request_client(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client's address: the TCP peer, or what a trusted proxy says it forwarded for."""
    return client_address(
        connection.client.host if connection.client else None,
        connection.headers.getall("x-forwarded-for", []),
        connection.app.state.trusted_proxies,
    )


def auth_rate_limit(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """429 when this client address has used up its login/register attempts.

    A guard runs before the body is read, so a flood costs neither parsing nor hashing.
    """
    limiter: TokenBucketLimiter = connection.app.state.auth_limiter
    if wait := limiter.acquire(request_client(connection)):
        RATE_LIMITED.labels(limit="auth-address").inc()
        retry_after = retry_after_header(wait)
        raise Problem(
            429,
            "rate-limited",
            "Too many attempts",
            f"Too many sign-in attempts from your address; try again in {retry_after} seconds.",
            headers={"Retry-After": retry_after},
        )


def bearer_token(request: Request[Any, Any, Any]) -> str:
    """The token of `Authorization: Bearer <token>`, or a 401."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized(
            "missing-token",
            "Authentication required",
            "Send an access token as `Authorization: Bearer <token>`; get one from "
            "/api/v1/auth/login.",
        )
    return token.strip()


def provide_current_user(
    request: Request[Any, Any, Any], auth_service: NamedDependency[AuthService]
) -> UserView:
    """The user of the request's `Authorization: Bearer <access token>`, or a 401."""
    user = UserView.of(auth_service.authenticate(bearer_token(request)))
    context_of(request.scope).user_id = user.id  # for the request's log lines
    return user
