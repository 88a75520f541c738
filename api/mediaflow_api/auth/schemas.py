"""Request and response bodies of the auth endpoints (separate from the stored `User`)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from mediaflow_api.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from mediaflow_api.auth.users import User, normalize_email, public_id

MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
# The characters `str.strip()` removes (Python's whitespace), spelt out: in a JSON Schema
# pattern `\s` means ECMA-262's set, which differs (e.g. U+001F, U+0085, U+FEFF).
WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# What register takes as an email, on the value as sent (so that the schema can state it
# exactly): one @, no whitespace, a dot in the domain, whitespace around it ignored (the
# email is stored stripped and lowercased). Deliberately loose: deliverability is not checked.
EMAIL_PATTERN = (
    rf"^[{WHITESPACE}]*[^@{WHITESPACE}]+@[^@{WHITESPACE}]+\.[^@.{WHITESPACE}]+[{WHITESPACE}]*$"
)
_EMAIL = re.compile(EMAIL_PATTERN)
# The id as clients see it (`public_id`): a canonical UUID string.
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class RegisterRequest(BaseModel):
    email: str = Field(
        max_length=MAX_EMAIL_LENGTH,
        description="An email address like name@example.com: one @, no spaces, a dot in the "
        "domain. Stored lowercased; surrounding spaces are ignored.",
        examples=["ada@example.com"],
        # The validator below checks this pattern, with a message a person can act on.
        json_schema_extra={"pattern": EMAIL_PATTERN},
    )
    password: str = Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
        description=f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
    )

    @field_validator("email")
    @classmethod
    def _is_email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("must be an email address like name@example.com")
        return normalize_email(value)


class LoginForm(BaseModel):
    """The OAuth2 password grant form (RFC 6749 section 4.3.2).

    A field sent empty counts as left out, as the previous (FastAPI) service read forms: an
    empty `grant_type` or `scope` is accepted, an empty `username` or `password` is missing.
    """

    username: str = Field(min_length=1, max_length=MAX_EMAIL_LENGTH, description="The email.")
    # Longer than any registrable password, short enough to bound the hashing work.
    password: str = Field(min_length=1, max_length=4 * MAX_PASSWORD_LENGTH)
    grant_type: Literal["password"] | None = Field(
        default=None, description="`password` if sent (OAuth2 password grant)."
    )
    scope: str = Field(default="", description="Ignored: a token grants all of the user's rights.")


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class Tokens(BaseModel):
    """An OAuth2 token response (RFC 6749 section 5.1)."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Seconds until the access token expires.")


class UserView(BaseModel):
    # StringConstraints, not Field(pattern=): Litestar's OpenAPI generation drops the latter.
    id: Annotated[str, StringConstraints(pattern=UUID_PATTERN)] = Field(
        description="The user's id, a canonical UUID string (derived from the email).",
    )
    email: str
    is_active: bool = Field(
        default=True,
        description="Always true: an account exists (and can log in) or does not; there is "
        "no deactivation. Kept for the previous service's clients.",
    )
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls(id=public_id(user.id), email=user.email, created_at=user.created_at)


class Registered(BaseModel):
    user: UserView
    tokens: Tokens
