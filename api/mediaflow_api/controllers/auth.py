"""`/api/v1/auth`: register, login, refresh, logout, logout-all, me."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from pydantic import ValidationError

from mediaflow_api.auth.guards import auth_rate_limit, bearer_token
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
from mediaflow_api.problems import Problem, problem_responses

LOGIN_MEDIA_TYPES = (RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART)
LOGIN_MAX_BODY_BYTES = 16 * 1024


def parse_login_form(content_type: str, form: dict[str, Any]) -> LoginForm:
    """The login form from either encoding OAuth2 password forms are sent in (curl -d is
    urlencoded, curl -F multipart); 415 for another body, 422 naming the bad fields."""
    if content_type not in LOGIN_MEDIA_TYPES:
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the login as a form: application/x-www-form-urlencoded or "
            "multipart/form-data, with the fields `username` and `password`.",
        )
    try:
        return LoginForm.model_validate(form)
    except ValidationError as error:
        raise ValidationException(
            extra=[
                {
                    "key": ".".join(str(part) for part in e["loc"]) or None,
                    "message": e["msg"],
                    "source": "body",
                }
                for e in error.errors(include_input=False, include_url=False)
            ]
        ) from error


def _login_schema() -> Schema:
    schema = LoginForm.model_json_schema()
    properties = {
        name: Schema(
            type=OpenAPIType.STRING,
            description=prop.get("description"),
            min_length=prop.get("minLength"),
            max_length=prop.get("maxLength"),
        )
        for name, prop in schema["properties"].items()
    }
    return Schema(
        type=OpenAPIType.OBJECT, properties=properties, required=schema.get("required", [])
    )


@dataclass
class LoginOperation(Operation):
    """The login body in both form encodings (the handler reads the form itself)."""

    def __post_init__(self) -> None:
        schema = _login_schema()
        self.request_body = RequestBody(
            required=True,
            content={media.value: OpenAPIMediaType(schema=schema) for media in LOGIN_MEDIA_TYPES},
        )


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]  # noqa: RUF012 - Litestar reads this class attribute

    # Sync handlers in worker threads: argon2 and the Kubernetes client block.
    @post(
        "/register",
        operation_id="register",
        summary="Create an account",
        description="Creates the account and logs it in. Rate-limited per client address and "
        "per account (a taken email counts as a failed attempt); 503 with Retry-After when "
        "the instance hashes as many passwords as it may at once.",
        status_code=HTTP_201_CREATED,
        guards=[auth_rate_limit],
        responses=problem_responses(422, 409, 429, 503),
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
        description="Form fields `username` (the email) and `password`, urlencoded or "
        "multipart. Answers the flat OAuth2 token body, not the envelope. Rate-limited per "
        "client address and per account (failed attempts); 503 with Retry-After when the "
        "instance checks as many passwords as it may at once.",
        status_code=HTTP_200_OK,
        guards=[auth_rate_limit],
        responses=problem_responses(401, 413, 415, 422, 429, 503),
        operation_class=LoginOperation,
        # The form is read into memory: two short fields need far less than the app's 10 MB.
        request_max_body_size=LOGIN_MAX_BODY_BYTES,
    )
    async def login(
        self, request: Request[Any, Any, Any], auth_service: NamedDependency[AuthService]
    ) -> Tokens:
        form = parse_login_form(request.content_type[0], dict(await request.form()))
        return await anyio.to_thread.run_sync(
            auth_service.login, form.username.strip().lower(), form.password
        )

    @post(
        "/refresh",
        operation_id="refreshTokens",
        summary="Exchange a refresh token for a new pair",
        description="The refresh token given stops working. Presenting one that was already "
        "used revokes every token of its login. No refresh reaches past the login's maximum "
        "lifetime (MEDIAFLOW_API_SESSION_MAX_SECONDS).",
        status_code=HTTP_200_OK,
        responses=problem_responses(422, 401),
        sync_to_thread=True,
    )
    def refresh(
        self, data: JSONBody[RefreshRequest], auth_service: NamedDependency[AuthService]
    ) -> Envelope[Tokens]:
        return envelope(auth_service.refresh(data.refresh_token), "Tokens refreshed.")

    @post(
        "/logout",
        operation_id="logout",
        summary="Log out: revoke this login",
        description="Revokes the login (refresh-token family) of the refresh token given: its "
        "refresh tokens and the access tokens issued with them stop working at once. An "
        "expired token of the login works too; a login already gone answers 204 as well.",
        status_code=HTTP_204_NO_CONTENT,
        responses=problem_responses(422, 401),
        sync_to_thread=True,
    )
    def logout(
        self, data: JSONBody[RefreshRequest], auth_service: NamedDependency[AuthService]
    ) -> None:
        auth_service.logout(data.refresh_token)

    @post(
        "/logout-all",
        operation_id="logoutEverywhere",
        summary="Log out everywhere: revoke every login of the user",
        description="Revokes every login of the authenticated user, including the one of "
        "the access token sent: every refresh and access token stops working at once.",
        status_code=HTTP_204_NO_CONTENT,
        security=[{"BearerToken": []}],
        responses=problem_responses(401),
        sync_to_thread=True,
    )
    def logout_all(
        self, request: Request[Any, Any, Any], auth_service: NamedDependency[AuthService]
    ) -> None:
        auth_service.logout_everywhere(auth_service.authenticate(bearer_token(request)))

    @get(
        "/me",
        operation_id="getCurrentUser",
        summary="The logged-in user",
        security=[{"BearerToken": []}],
        responses=problem_responses(401),
    )
    async def me(self, current_user: NamedDependency[UserView]) -> Envelope[UserView]:
        return envelope(current_user)
