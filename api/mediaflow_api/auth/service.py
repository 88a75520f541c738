"""Register, log in, refresh, log out: the auth flows over `UserStore` and `TokenCodec`."""

from __future__ import annotations

import time

from mediaflow_api.auth.passwords import HashingBusyError, PasswordHashing
from mediaflow_api.auth.ratelimit import TokenBucketLimiter, retry_after_header
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
    public_id,
    rotate,
    storage_id,
    user_id,
)
from mediaflow_api.metrics import RATE_LIMITED
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


def _hashing_busy(error: HashingBusyError) -> Problem:
    return Problem(
        503,
        "busy",
        "Too many sign-ins at once",
        "This API instance is checking as many passwords as it may at once; retry in "
        f"{error.retry_after_seconds} seconds.",
        headers={"Retry-After": str(error.retry_after_seconds)},
    )


def account_limited(wait: float) -> Problem:
    retry_after = retry_after_header(wait)
    return Problem(
        429,
        "rate-limited",
        "Too many attempts",
        f"Too many failed sign-in attempts for this account; try again in {retry_after} seconds.",
        headers={"Retry-After": retry_after},
    )


def session_revoked() -> Problem:
    return unauthorized(
        "session-revoked",
        "Session ended",
        "The login this token belongs to was logged out, revoked or has ended; log in again.",
    )


class AuthService:
    """Blocking (Kubernetes calls, argon2): handlers call it from a worker thread.

    `hashing` bounds the argon2 work of the process; `account_limiter` counts failed
    attempts per email (a failed login, a registration of a taken email), from any address.
    """

    def __init__(
        self,
        store: UserStore,
        codec: TokenCodec,
        hashing: PasswordHashing,
        account_limiter: TokenBucketLimiter,
        session_max_seconds: int,
    ) -> None:
        self.store = store
        self.codec = codec
        self.hashing = hashing
        self.account_limiter = account_limiter
        self.session_max_seconds = session_max_seconds

    def _new_family(self, user: User) -> Tokens:
        """Start a refresh-token family on `user` (not saved) and return its first pair."""
        now = int(time.time())
        family, token_id = new_token_id(), new_token_id()
        user.families = prune(user.families, now)
        ends_at = now + self.session_max_seconds
        user.families[family] = Family(
            current=token_id, expires_at=min(now + self.codec.refresh_ttl, ends_at), ends_at=ends_at
        )
        return self._pair(user.id, family, token_id, now, ends_at)

    def _pair(self, uid: str, family: str, token_id: str, now: int, ends_at: int) -> Tokens:
        subject = public_id(uid)
        return Tokens(
            access_token=self.codec.encode(
                subject, TokenType.ACCESS, family=family, now=now, not_after=ends_at
            ),
            refresh_token=self.codec.encode(
                subject,
                TokenType.REFRESH,
                token_id=token_id,
                family=family,
                now=now,
                not_after=ends_at,
            ),
            expires_in=min(self.codec.access_ttl, ends_at - now),
        )

    def _check_account(self, email: str) -> None:
        if wait := self.account_limiter.wait(email):
            RATE_LIMITED.labels(limit="auth-account").inc()
            raise account_limited(wait)

    def register(self, email: str, password: str) -> tuple[User, Tokens]:
        self._check_account(email)
        uid = user_id(email)
        # A taken email answers 409 before any hashing (the 409 tells as much anyway).
        if self.store.get(uid) is None:
            try:
                password_hash = self.hashing.hash(password)
            except HashingBusyError as error:
                raise _hashing_busy(error) from error
            user = User(id=uid, email=email, password_hash=password_hash, created_at=now_utc())
            tokens = self._new_family(user)
            try:
                return self.store.create(user), tokens
            except EmailTakenError:
                pass
        # Probing which emails are registered counts like a failed login of that account.
        self.account_limiter.acquire(email)
        raise Problem(
            409,
            "email-taken",
            "Email already registered",
            f"An account for {email} exists already; log in instead, or use another email.",
        )

    def login(self, email: str, password: str) -> Tokens:
        self._check_account(email)
        user = self.store.get(user_id(email))
        # An unknown email costs a verification too and answers exactly like a wrong password.
        try:
            verified = self.hashing.verify(user.password_hash if user else None, password)
        except HashingBusyError as error:
            raise _hashing_busy(error) from error
        if not verified or user is None:
            self.account_limiter.acquire(email)
            raise unauthorized(*BAD_CREDENTIALS)
        for _ in range(MAX_WRITE_ATTEMPTS):
            tokens = self._new_family(user)
            if self.store.save(user):
                return tokens
            user = self.store.get(user.id)
            if user is None:
                raise unauthorized(*BAD_CREDENTIALS)
        raise _write_conflict()

    def _user_of(self, claims: Claims) -> User:
        uid = storage_id(claims.subject)
        user = self.store.get(uid) if uid else None
        if user is None:
            raise unauthorized("invalid-token", "Invalid token", "The account is gone.")
        return user

    def refresh(self, refresh_token: str) -> Tokens:
        try:
            claims = self.codec.decode(refresh_token, TokenType.REFRESH)
        except TokenError as error:
            raise invalid_token(error, "refresh") from error
        assert claims.family is not None  # noqa: S101 - required by decode for refresh tokens
        for _ in range(MAX_WRITE_ATTEMPTS):
            user = self._user_of(claims)
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
                    "This refresh token was revoked, has been replaced, or its login reached "
                    "its maximum lifetime; log in again.",
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
            family = user.families[claims.family]
            return self._pair(user.id, claims.family, token_id, now, family.ends_at)
        raise _write_conflict()

    def _revoke(self, user: User, families: set[str] | None) -> None:
        """Drop `families` of `user` (all when None) and save, re-reading on conflicts."""
        for _ in range(MAX_WRITE_ATTEMPTS):
            keep = set() if families is None else set(user.families) - families
            remaining = {name: f for name, f in user.families.items() if name in keep}
            if remaining == user.families:
                return
            user.families = remaining
            if self.store.save(user):
                return
            reread = self.store.get(user.id)
            if reread is None:
                return
            user = reread
        raise _write_conflict()

    def logout(self, refresh_token: str) -> None:
        """Revoke the login of `refresh_token` (its family): its refresh and access tokens
        stop working. An expired token still logs out; one of a gone login is a no-op."""
        try:
            claims = self.codec.decode(refresh_token, TokenType.REFRESH, verify_expiry=False)
        except TokenError as error:
            raise invalid_token(error, "refresh") from error
        assert claims.family is not None  # noqa: S101 - required by decode for refresh tokens
        self._revoke(self._user_of(claims), {claims.family})

    def logout_everywhere(self, user: User) -> None:
        """Revoke every login of `user`."""
        self._revoke(user, None)

    def authenticate(self, access_token: str) -> User:
        """The user an access token belongs to, or a 401 `Problem`; a token of a login that
        was logged out or revoked is refused at once (its family is checked on the user
        Secret this reads anyway)."""
        try:
            claims: Claims = self.codec.decode(access_token, TokenType.ACCESS)
        except TokenError as error:
            raise invalid_token(error, "access") from error
        user = self._user_of(claims)
        if claims.family is not None and claims.family not in prune(
            user.families, int(time.time())
        ):
            raise session_revoked()
        return user
