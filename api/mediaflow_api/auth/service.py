"""Register, log in, refresh: the auth flows over `UserStore` and `TokenCodec`."""

from __future__ import annotations

import time

from mediaflow_api.auth.passwords import hash_password, verify_password
from mediaflow_api.auth.schemas import Tokens
from mediaflow_api.auth.tokens import Claims, TokenCodec, TokenError, TokenType, new_token_id
from mediaflow_api.auth.users import (
    MAX_WRITE_ATTEMPTS,
    EmailTakenError,
    Family,
    Rotation,
    User,
    UserStore,
    now_utc,
    prune,
    rotate,
    user_id,
)
from mediaflow_api.problems import Problem

BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def unauthorized(kind: str, title: str, detail: str) -> Problem:
    return Problem(401, kind, title, detail, headers=BEARER_CHALLENGE)


BAD_CREDENTIALS = (
    "invalid-credentials",
    "Wrong email or password",
    "The email or the password is wrong; check both, or register first.",
)


def invalid_token(error: TokenError, what: str) -> Problem:
    if error.expired:
        hint = "log in again" if what == "refresh" else "get a new one from /api/v1/auth/refresh"
        return unauthorized("token-expired", "Token expired", f"The {what} token expired; {hint}.")
    return unauthorized(
        "invalid-token",
        "Invalid token",
        f"The {what} token is not valid ({error}); log in again.",
    )


def _write_conflict() -> Problem:
    return Problem(
        503,
        "busy",
        "Too many concurrent changes",
        "Your account changed concurrently too many times; retry in a moment.",
    )


class AuthService:
    """Blocking (Kubernetes calls, argon2): handlers call it from a worker thread."""

    def __init__(self, store: UserStore, codec: TokenCodec) -> None:
        self.store = store
        self.codec = codec

    def _new_family(self, user: User) -> Tokens:
        """Start a refresh-token family on `user` (not saved) and return its first pair."""
        now = int(time.time())
        family, token_id = new_token_id(), new_token_id()
        user.families = prune(user.families, now)
        user.families[family] = Family(current=token_id, expires_at=now + self.codec.refresh_ttl)
        return self._pair(user.id, family, token_id, now)

    def _pair(self, subject: str, family: str, token_id: str, now: int) -> Tokens:
        return Tokens(
            access_token=self.codec.encode(subject, TokenType.ACCESS, now=now),
            refresh_token=self.codec.encode(
                subject, TokenType.REFRESH, token_id=token_id, family=family, now=now
            ),
            expires_in=self.codec.access_ttl,
        )

    def register(self, email: str, password: str) -> tuple[User, Tokens]:
        user = User(
            id=user_id(email), email=email, password_hash=hash_password(password),
            created_at=now_utc(),
        )  # fmt: skip
        tokens = self._new_family(user)
        try:
            return self.store.create(user), tokens
        except EmailTakenError as error:
            raise Problem(
                409,
                "email-taken",
                "Email already registered",
                f"An account for {email} exists already; log in instead, or use another email.",
            ) from error

    def login(self, email: str, password: str) -> Tokens:
        user = self.store.get(user_id(email))
        # An unknown email costs a verification too and answers exactly like a wrong password.
        if not verify_password(user.password_hash if user else None, password) or user is None:
            raise unauthorized(*BAD_CREDENTIALS)
        for _ in range(MAX_WRITE_ATTEMPTS):
            tokens = self._new_family(user)
            if self.store.save(user):
                return tokens
            user = self.store.get(user.id)
            if user is None:
                raise unauthorized(*BAD_CREDENTIALS)
        raise _write_conflict()

    def refresh(self, refresh_token: str) -> Tokens:
        try:
            claims = self.codec.decode(refresh_token, TokenType.REFRESH)
        except TokenError as error:
            raise invalid_token(error, "refresh") from error
        assert claims.family is not None  # noqa: S101 - required by decode for refresh tokens
        for _ in range(MAX_WRITE_ATTEMPTS):
            user = self.store.get(claims.subject)
            if user is None:
                raise unauthorized("invalid-token", "Invalid token", "The account is gone.")
            now = int(time.time())
            token_id = new_token_id()
            user.families = prune(user.families, now)
            outcome = rotate(
                user.families,
                claims.family,
                claims.token_id,
                token_id,
                now + self.codec.refresh_ttl,
            )
            if outcome is Rotation.UNKNOWN:
                raise unauthorized(
                    "refresh-revoked",
                    "Refresh token revoked",
                    "This refresh token was revoked or has been replaced; log in again.",
                )
            # On a conflict re-read: a concurrent refresh may have used this token meanwhile.
            if not self.store.save(user):
                continue
            if outcome is Rotation.REUSED:
                raise unauthorized(
                    "refresh-reused",
                    "Refresh token reused",
                    "This refresh token was used before, so every token of this login has been "
                    "revoked (it may have been stolen); log in again.",
                )
            return self._pair(user.id, claims.family, token_id, now)
        raise _write_conflict()

    def authenticate(self, access_token: str) -> User:
        """The user an access token belongs to, or a 401 `Problem`."""
        try:
            claims: Claims = self.codec.decode(access_token, TokenType.ACCESS)
        except TokenError as error:
            raise invalid_token(error, "access") from error
        user = self.store.get(claims.subject)
        if user is None:
            raise unauthorized("invalid-token", "Invalid token", "The account is gone.")
        return user
