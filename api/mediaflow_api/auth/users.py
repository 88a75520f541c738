"""Users as Kubernetes Secrets (docs/architecture.md): naming, encoding, refresh families."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

SECRET_TYPE = "mediaflow.io/user"  # noqa: S105 - a Secret type, not a secret
USER_LABEL = "mediaflow.io/user"
LABELS = {
    "app.kubernetes.io/part-of": "mediaflow",
    "app.kubernetes.io/managed-by": "mediaflow-api",
    USER_LABEL: "true",
}
# A Secret holds at most 1 MiB: keep only the newest families of each user.
MAX_FAMILIES = 50
# Concurrent refreshes of one user conflict on resourceVersion; retry this many times.
MAX_WRITE_ATTEMPTS = 5


def normalize_email(email: str) -> str:
    return email.strip().lower()


def user_id(email: str) -> str:
    """The stable key of the user with `email`: 32 hex digits of sha256 of the normalized
    email. It names the Secret; clients see it as a UUID (`public_id`)."""
    return hashlib.sha256(normalize_email(email).encode()).hexdigest()[:32]


def public_id(uid: str) -> str:
    """The id clients see: the same 128 bits as a canonical (dashed, lowercase) UUID string,
    as the previous service's ids were (its clients check `^[0-9a-f-]{36}$`)."""
    return str(uuid.UUID(hex=uid))


def storage_id(text: str) -> str | None:
    """The 32-hex key of a user id given either way (dashed as issued now, 32 hex digits as
    tokens and labels of earlier releases carry it); None if it is no id."""
    if len(text) not in (32, 36):
        return None
    try:
        return uuid.UUID(hex=text).hex
    except ValueError:
        return None


def secret_name(uid: str) -> str:
    """The Secret's name: the same email always maps to the same name, so a second
    registration is the API server's atomic 409 AlreadyExists."""
    return f"user-{uid}"


@dataclass
class Family:
    """One login's chain of refresh tokens; only `current` may be used next.

    `expires_at` slides with each refresh (the refresh-token lifetime); `ends_at` is fixed
    at the login (the session's absolute lifetime): no refresh reaches past it.
    """

    current: str
    expires_at: int
    ends_at: int


@dataclass
class User:
    id: str
    email: str
    password_hash: str
    created_at: datetime
    families: dict[str, Family] = field(default_factory=dict)
    resource_version: str | None = None


class Rotation(Enum):
    ROTATED = "rotated"
    REUSED = "reused"  # an already-used token: the family is revoked
    UNKNOWN = "unknown"  # no such family (revoked, expired or pruned)


def rotate(
    families: dict[str, Family], family: str, token_id: str, new_token_id: str, new_expiry: int
) -> Rotation:
    """Advance `family` from `token_id` to `new_token_id` in place, or revoke it on reuse."""
    current = families.get(family)
    if current is None:
        return Rotation.UNKNOWN
    if current.current != token_id:
        del families[family]
        return Rotation.REUSED
    families[family] = Family(
        current=new_token_id, expires_at=min(new_expiry, current.ends_at), ends_at=current.ends_at
    )
    return Rotation.ROTATED


def prune(families: dict[str, Family], now: int) -> dict[str, Family]:
    """Families not yet expired, the newest `MAX_FAMILIES` of them."""
    alive = [(name, f) for name, f in families.items() if f.expires_at > now]
    alive.sort(key=lambda item: item[1].expires_at, reverse=True)
    return dict(alive[:MAX_FAMILIES])


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def encode_data(user: User) -> dict[str, str]:
    """The Secret's `data` (base64 values); no plaintext password is ever part of it."""
    families = {
        name: {"current": f.current, "expiresAt": f.expires_at, "endsAt": f.ends_at}
        for name, f in user.families.items()
    }
    return {
        "email": _b64(user.email),
        "password-hash": _b64(user.password_hash),
        "created-at": _b64(user.created_at.isoformat()),
        "refresh-families": _b64(json.dumps(families, separators=(",", ":"))),
    }


def decode_secret(secret: kube.V1Secret) -> User:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
    families = {
        # Families of earlier releases have no end: they end where they expire now, so
        # they can no longer slide (at most one refresh-token lifetime from the upgrade).
        name: Family(
            current=f["current"],
            expires_at=int(f["expiresAt"]),
            ends_at=int(f.get("endsAt", f["expiresAt"])),
        )
        for name, f in json.loads(data.get("refresh-families") or "{}").items()
    }
    return User(
        id=secret.metadata.name.removeprefix("user-"),
        email=data["email"],
        password_hash=data["password-hash"],
        created_at=datetime.fromisoformat(data["created-at"]),
        families=families,
        resource_version=secret.metadata.resource_version,
    )


class EmailTakenError(Exception):
    """A user Secret for this email exists already."""


class UserStore:
    """The user Secrets of one namespace (blocking calls: run them in a worker thread)."""

    def __init__(self, api: kube.ApiClient, namespace: str) -> None:
        self.core = kube.CoreV1Api(api)
        self.namespace = namespace

    def create(self, user: User) -> User:
        body = kube.V1Secret(
            metadata=kube.V1ObjectMeta(name=secret_name(user.id), labels=LABELS),
            type=SECRET_TYPE,
            data=encode_data(user),
        )
        try:
            created = self.core.create_namespaced_secret(self.namespace, body)
        except ApiException as error:
            if error.status == 409:
                raise EmailTakenError(user.email) from error
            raise
        return decode_secret(created)

    def get(self, uid: str) -> User | None:
        try:
            secret = self.core.read_namespaced_secret(secret_name(uid), self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        if (secret.metadata.labels or {}).get(USER_LABEL) != "true":
            return None  # a Secret of someone else that happens to have this name
        return decode_secret(secret)

    def save(self, user: User) -> bool:
        """Write `user` if its Secret is still at `resource_version`; False on a conflict."""
        body = kube.V1Secret(
            metadata=kube.V1ObjectMeta(
                name=secret_name(user.id),
                labels=LABELS,
                resource_version=user.resource_version,
            ),
            type=SECRET_TYPE,
            data=encode_data(user),
        )
        try:
            saved = self.core.replace_namespaced_secret(secret_name(user.id), self.namespace, body)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        user.resource_version = saved.metadata.resource_version
        return True


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
