"""Each user's webhook signing secret, in ONE Secret of the API's MediaJob namespace.

Why there: the operator signs a MediaJob's webhook with a key of a Secret in the MediaJob's
own namespace (`spec.notify.secretRef`), and the API's MediaJobs live in the API's namespace.
Why one Secret: RBAC can name it (`resourceNames`), so the API may get and update that one
Secret and no other there (not the JWT key, nor the storage credentials, nor Helm's data). The
operator makes it at start (MEDIAFLOW_WEBHOOK_KEYS_SECRET): the API may create no Secret, or
it could make a service-account token Secret of that name and read it. (An API outside the
chart, with wider rights, makes it on first use.) A key per user: `<user id, 32 hex>` holds
`whsec_<new>` or, for a grace period after a rotation, `whsec_<new> whsec_<old>` (the
operator signs with both, as Standard Webhooks allows several signatures);
`<user id>.rotated` holds when it was rotated. About 150 bytes per user: the Secret's 1 MiB
holds about 6,000 users with a rotation pending.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from mediaflow_api.problems import Problem
from mediaflow_core.webhooks import new_signing_secret

MAX_WRITE_ATTEMPTS = 5


@dataclass(frozen=True)
class SigningSecret:
    secret: str
    previous: str | None
    previous_expires_at: datetime | None


def data_key(owner: str) -> str:
    """The Secret's data key of a user: the id's 32 hex digits."""
    return uuid.UUID(owner).hex


def _decode(data: dict[str, str] | None, key: str) -> str | None:
    value = (data or {}).get(key)
    return base64.b64decode(value).decode() if value is not None else None


def _encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def current(
    data: dict[str, str] | None, owner: str, now: datetime, grace: float
) -> SigningSecret | None:
    """The user's secret in the Secret's data (and the previous one while its grace lasts)."""
    words = (_decode(data, data_key(owner)) or "").split()
    if not words:
        return None
    rotated = _decode(data, f"{data_key(owner)}.rotated")
    expires = datetime.fromisoformat(rotated) + timedelta(seconds=grace) if rotated else None
    if len(words) > 1 and expires is not None and expires > now:
        return SigningSecret(words[0], words[1], expires)
    return SigningSecret(words[0], None, None)


class WebhookKeys:
    def __init__(
        self, api: kube.ApiClient, namespace: str, name: str, grace_seconds: float
    ) -> None:
        self.core = kube.CoreV1Api(api)
        self.namespace = namespace
        self.name = name
        self.grace = grace_seconds

    def secret_ref(self, owner: str) -> dict[str, str]:
        """`spec.notify.secretRef` of the user's MediaJobs."""
        return {"name": self.name, "key": data_key(owner)}

    def get(self, owner: str) -> SigningSecret:
        """The user's signing secret, made on first use; an expired previous one is dropped."""
        return self._update(owner, rotate=False)

    def rotate(self, owner: str) -> SigningSecret:
        """A new signing secret; the old one still signs for the grace period."""
        return self._update(owner, rotate=True)

    def _read(self) -> Any:
        try:
            return self.core.read_namespaced_secret(self.name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                raise
        body = kube.V1Secret(
            metadata=kube.V1ObjectMeta(
                name=self.name,
                labels={"app.kubernetes.io/part-of": "mediaflow",
                        "app.kubernetes.io/managed-by": "mediaflow-api"},
            ),
            data={},
        )  # fmt: skip
        try:
            return self.core.create_namespaced_secret(self.namespace, body)
        except ApiException as error:
            if error.status == 403:  # the chart's API may not: the operator makes it at start
                raise Problem(
                    503,
                    "webhooks-unavailable",
                    "Service Unavailable",
                    "The webhook signing secrets are not set up yet (the operator makes them "
                    "when it starts): try again later.",
                ) from None
            if error.status != 409:
                raise
        return self.core.read_namespaced_secret(self.name, self.namespace)

    def _update(self, owner: str, *, rotate: bool) -> SigningSecret:
        key = data_key(owner)
        for _ in range(MAX_WRITE_ATTEMPTS):
            secret = self._read()
            now = datetime.now(UTC)
            data = dict(secret.data or {})
            found = current(data, owner, now, self.grace)
            if found is not None and not rotate:
                stored = (_decode(data, key) or "").split()
                if len(stored) == 1 or found.previous is not None:
                    return found
                wanted = found  # the grace passed: the old key stops signing
                data[key] = _encode(found.secret)
                data.pop(f"{key}.rotated", None)
            elif found is None:
                wanted = SigningSecret(new_signing_secret(), None, None)
                data[key] = _encode(wanted.secret)
                data.pop(f"{key}.rotated", None)
            else:
                wanted = SigningSecret(
                    new_signing_secret(), found.secret, now + timedelta(seconds=self.grace)
                )
                data[key] = _encode(f"{wanted.secret} {found.secret}")
                data[f"{key}.rotated"] = _encode(now.isoformat())
            secret.data = data
            try:
                self.core.replace_namespaced_secret(self.name, self.namespace, secret)
            except ApiException as error:
                if error.status == 409:
                    continue
                raise
            return wanted
        raise Problem(
            409,
            "conflict",
            "Conflict",
            "The signing secrets changed too often meanwhile: try again.",
        )
