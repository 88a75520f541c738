"""`/api/v1/auth`: register, login, refresh, logout, logout-all, me."""

from __future__ import annotations

from collections.abc import Mapping
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
from pydantic import BaseModel, ValidationError

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
# What the shared error statuses of these operations mean (OpenAPI descriptions).
TOO_MANY_ATTEMPTS = (
    "Too many attempts (Retry-After says when to retry): from this client address, or "
    "failed ones for this email from any address."
)
HASHING_BUSY = "This instance is already hashing as many passwords as it may at once (Retry-After)."
CONCURRENT_CHANGES = "The account changed concurrently too often; retry in a moment."


def parse_login_form(content_type: str, form: Mapping[str, Any]) -> LoginForm:
    """The login form from either encoding OAuth2 password forms are sent in (curl -d is
    urlencoded, curl -F multipart); 415 for another body, 422 naming the bad fields.

    A field sent empty counts as left out, as the previous (FastAPI) service read forms.
    """
    if content_type not in LOGIN_MEDIA_TYPES:
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the login as a form: application/x-www-form-urlencoded or "
            "multipart/form-data, with the fields `username` and `password`.",
        )
    try:
        return LoginForm.model_validate({k: v for k, v in form.items() if v != ""})
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


def form_schema(model: type[BaseModel]) -> Schema:
    """`model` as a form body, from the model's own JSON schema, as `parse_login_form` reads it.

    Every field is text. `X | None` is X (a form field is left out, never null), a single
    allowed value an enum; a field sent empty counts as left out, so a required field is at
    least one character and a field that may be left out may also be empty.
    """
    schema = model.model_json_schema()
    required = schema.get("required", [])
    properties = {}
    for name, prop in schema["properties"].items():
        (value,) = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
        if value.get("type") != "string":
            raise ValueError(f"{model.__name__}.{name}: a form field is text")
        enum = value.get("enum") or ([value["const"]] if "const" in value else None)
        min_length = value.get("minLength")
        if name in required:
            min_length = max(1, min_length or 0)
        elif enum is not None:
            enum = [*enum, ""]
        elif min_length or value.get("pattern"):
            raise ValueError(f"{model.__name__}.{name}: an optional field may be empty")
        properties[name] = Schema(
            type=OpenAPIType.STRING,
            description=prop.get("description"),
            enum=enum,
            min_length=min_length,
            max_length=value.get("maxLength"),
            pattern=value.get("pattern"),
            default=prop.get("default"),
        )
    return Schema(
        type=OpenAPIType.OBJECT,
        properties=properties,
        required=required,
        description=schema.get("description"),
    )


@dataclass
class LoginOperation(Operation):
    """The login body in both form encodings (the handler reads the form itself)."""

    def __post_init__(self) -> None:
        schema = form_schema(LoginForm)
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
        responses=problem_responses(
            meanings={
                409: "The email is already registered (counted like a failed login of it).",
                422: "A field is invalid (see `errors`): the email or the password length.",
                429: TOO_MANY_ATTEMPTS,
                503: HASHING_BUSY,
            }
        ),
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
        responses=problem_responses(
            meanings={
                401: "Wrong email or password (the same answer for both).",
                413: f"The body is over {LOGIN_MAX_BODY_BYTES // 1024} KiB.",
                415: "The body is neither application/x-www-form-urlencoded nor "
                "multipart/form-data.",
                422: "A field is missing, empty or invalid (see `errors`), e.g. a grant_type "
                "other than `password`.",
                429: TOO_MANY_ATTEMPTS,
                503: f"{HASHING_BUSY} Or: {CONCURRENT_CHANGES}",
            }
        ),
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
        responses=problem_responses(
            meanings={
                401: "The refresh token is not valid, expired, revoked or was used before "
                "(which revokes its whole login).",
                422: "`refresh_token` is missing, empty or too long.",
                503: CONCURRENT_CHANGES,
            }
        ),
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
        responses=problem_responses(
            meanings={
                401: "The refresh token is not valid (an expired one of the login works).",
                422: "`refresh_token` is missing, empty or too long.",
                503: CONCURRENT_CHANGES,
            }
        ),
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
        responses=problem_responses(401, meanings={503: CONCURRENT_CHANGES}),
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
