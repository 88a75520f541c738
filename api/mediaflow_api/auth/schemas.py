"""Request and response bodies of the auth endpoints (separate from the stored `User`)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from mediaflow_api.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from mediaflow_api.auth.users import User, normalize_email, public_id

MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
# Deliberately loose: one @, no spaces, a dot in the domain. Deliverability is not checked.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


class RegisterRequest(BaseModel):
    email: str = Field(max_length=MAX_EMAIL_LENGTH, examples=["ada@example.com"])
    password: str = Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
        description=f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
    )

    @field_validator("email")
    @classmethod
    def _is_email(cls, value: str) -> str:
        value = normalize_email(value)
        if not _EMAIL.match(value):
            raise ValueError("must be an email address like name@example.com")
        return value


class LoginForm(BaseModel):
    """The OAuth2 password grant form (RFC 6749 section 4.3.2)."""

    username: str = Field(min_length=1, max_length=MAX_EMAIL_LENGTH, description="The email.")
    # Longer than any registrable password, short enough to bound the hashing work.
    password: str = Field(min_length=1, max_length=4 * MAX_PASSWORD_LENGTH)
    grant_type: Literal["password"] | None = None
    scope: str = ""


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class Tokens(BaseModel):
    """An OAuth2 token response (RFC 6749 section 5.1)."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int = Field(description="Seconds until the access token expires.")


class UserView(BaseModel):
    id: str = Field(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
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
