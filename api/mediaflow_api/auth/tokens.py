"""JWTs: HS256 access and refresh tokens, issued and checked by pure functions."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from mediaflow_api.settings import ApiSettings

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud", "typ", "jti"]


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


class TokenError(Exception):
    """The token is not acceptable; `expired` tells the client that refreshing may help."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class Claims:
    """What a checked token says."""

    subject: str
    type: TokenType
    token_id: str
    expires_at: int
    # The login (refresh-token family): required in refresh tokens; in access tokens since
    # the family check (older access tokens have none and live out their short lifetime).
    family: str | None = None


def new_token_id() -> str:
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class TokenCodec:
    """Encodes and checks tokens with one key, issuer and audience."""

    key: str
    issuer: str
    audience: str
    access_ttl: int
    refresh_ttl: int

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> TokenCodec:
        return cls(
            key=settings.jwt_signing_key.get_secret_value(),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl=settings.jwt_access_ttl_seconds,
            refresh_ttl=settings.jwt_refresh_ttl_seconds,
        )

    def encode(
        self,
        subject: str,
        token_type: TokenType,
        *,
        token_id: str | None = None,
        family: str | None = None,
        now: float | None = None,
        not_after: int | None = None,
    ) -> str:
        """A signed token; `family` names the login it belongs to (access tokens carry it
        too, so that revoking the login stops them), `not_after` caps its expiry."""
        issued = int(time.time() if now is None else now)
        ttl = self.access_ttl if token_type is TokenType.ACCESS else self.refresh_ttl
        expires = issued + ttl if not_after is None else min(issued + ttl, not_after)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": issued,
            "exp": expires,
            "typ": token_type.value,
            "jti": token_id or new_token_id(),
        }
        if family is not None:
            claims["fam"] = family
        return jwt.encode(claims, self.key, algorithm=ALGORITHM)

    def decode(self, token: str, expected: TokenType, *, verify_expiry: bool = True) -> Claims:
        """The claims of `token` if it is valid and of the `expected` type; else `TokenError`.

        `verify_expiry=False` accepts an expired but otherwise valid token (logging out)."""
        required = [*REQUIRED_CLAIMS, "fam"] if expected is TokenType.REFRESH else REQUIRED_CLAIMS
        try:
            # algorithms= pins HS256 (no `none`, no algorithm confusion); `require` because
            # PyJWT otherwise accepts a token without `exp`; issuer= because it otherwise
            # ignores `iss`.
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": required, "verify_exp": verify_expiry},
            )
        except jwt.ExpiredSignatureError as error:
            raise TokenError("the token has expired", expired=True) from error
        except jwt.PyJWTError as error:
            raise TokenError(f"the token is not valid ({error})") from error
        if claims["typ"] != expected.value:
            raise TokenError(f"a {claims['typ']} token was given where a {expected} one is needed")
        if not all(isinstance(claims.get(name, ""), str) for name in ("sub", "jti", "fam")):
            raise TokenError("the token is not valid (malformed sub, jti or fam)")
        return Claims(
            subject=claims["sub"],
            type=expected,
            token_id=claims["jti"],
            expires_at=int(claims["exp"]),
            family=claims.get("fam"),
        )
