"""`/api/v1/auth`: register, login, refresh, me."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, URLEncodedBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from mediaflow_api.auth.guards import auth_rate_limit
from mediaflow_api.auth.schemas import (
    LoginForm,
    RefreshRequest,
    Registered,
    RegisterRequest,
    Tokens,
    UserView,
)
from mediaflow_api.auth.service import AuthService
from mediaflow_api.envelope import Envelope, envelope
from mediaflow_api.problems import problem_responses


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]  # noqa: RUF012 - Litestar reads this class attribute

    # Sync handlers in worker threads: argon2 and the Kubernetes client block.
    @post(
        "/register",
        operation_id="register",
        summary="Create an account",
        description="Creates the account and logs it in. Rate-limited per client address.",
        status_code=HTTP_201_CREATED,
        guards=[auth_rate_limit],
        responses=problem_responses(422, 409, 429),
        sync_to_thread=True,
    )
    def register(
        self, data: JSONBody[RegisterRequest], auth_service: NamedDependency[AuthService]
    ) -> Envelope[Registered]:
        user, tokens = auth_service.register(data.email, data.password)
        return envelope(Registered(user=UserView.of(user), tokens=tokens), "Account created.")

    @post(
        "/login",
        operation_id="login",
        summary="Log in (OAuth2 password grant)",
        description="Form fields `username` (the email) and `password`. Answers the flat OAuth2 "
        "token body, not the envelope. Rate-limited per client address.",
        status_code=HTTP_200_OK,
        guards=[auth_rate_limit],
        responses=problem_responses(422, 401, 429),
        sync_to_thread=True,
    )
    def login(
        self, data: URLEncodedBody[LoginForm], auth_service: NamedDependency[AuthService]
    ) -> Tokens:
        return auth_service.login(data.username.strip().lower(), data.password)

    @post(
        "/refresh",
        operation_id="refreshTokens",
        summary="Exchange a refresh token for a new pair",
        description="The refresh token given stops working. Presenting one that was already "
        "used revokes every token of its login.",
        status_code=HTTP_200_OK,
        responses=problem_responses(422, 401),
        sync_to_thread=True,
    )
    def refresh(
        self, data: JSONBody[RefreshRequest], auth_service: NamedDependency[AuthService]
    ) -> Envelope[Tokens]:
        return envelope(auth_service.refresh(data.refresh_token), "Tokens refreshed.")

    @get(
        "/me",
        operation_id="getCurrentUser",
        summary="The logged-in user",
        security=[{"BearerToken": []}],
        responses=problem_responses(401),
    )
    async def me(self, current_user: NamedDependency[UserView]) -> Envelope[UserView]:
        return envelope(current_user)
