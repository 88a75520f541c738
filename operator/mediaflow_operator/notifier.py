"""Completion webhooks (issue 15): a finished MediaJob with spec.notify is announced by a
signed POST (mediaflow_core.webhooks builds and signs it).

A component of its own: the reconciler hands it the key of every finished MediaJob
(`submit`), and a bounded pool of threads (`webhook_workers`) delivers, so a slow receiver
never holds a reconcile. The attempts are at least once: the POST first, then the status
(`status.notification`, the `Notified` condition), so a crash between the two repeats an
attempt with the same webhook-id, which receivers deduplicate. Everything a retry needs is
in the status (attempts, last attempt time), so an operator restart resumes the schedule.

Outcomes: a 2xx is delivered (Notified=True); 410 Gone stops (Notified=False, Gone); any other
answer or no answer is retried after `webhook_backoff_seconds` * 2^(attempts - 1), while the
waits add up to at most `webhook_retry_seconds` (then Notified=False, DeliveryFailed). A host
that resolves to an address outside the public internet and the allowed networks is refused
without a connection (Notified=False, AddressNotAllowed), as is a missing or bad signing
secret (SigningSecretInvalid).

Safety: the request carries no credential of ours (no cookies, no auth, nothing but the event
and its signature); the host is resolved once, every address checked, and the connection goes
to the checked addresses (the Host header and TLS SNI stay on the name); redirects are not
followed (a 3xx is a failed attempt); connect within 5 s, the whole attempt within 10 s, at
most 4 KiB of the answer read.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from mediaflow_core import constants as c
from mediaflow_core import webhooks
from mediaflow_core.addresses import public_address
from mediaflow_core.mediajob import (
    MediaJobSpec,
    MediaJobStatus,
    NotificationStatus,
    Notify,
    SecretKeyRef,
)
from mediaflow_operator import deciders
from mediaflow_operator.config import OperatorSettings
from mediaflow_operator.gateway import ConflictError, Gateway, GoneError
from mediaflow_operator.observed import Key, Store
from mediaflow_operator.workqueue import WorkQueue

if TYPE_CHECKING:
    from mediaflow_operator.metrics import Metrics

log = logging.getLogger(__name__)
CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 4096
WRITE_ATTEMPTS = 5  # status writes that lost a race, retried from the store's newer body
NetworkList = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

# Reasons of the Notified condition.
DELIVERED = "Delivered"
RETRYING = "Retrying"
GONE = "Gone"
DELIVERY_FAILED = "DeliveryFailed"
ADDRESS_NOT_ALLOWED = "AddressNotAllowed"
SECRET_INVALID = "SigningSecretInvalid"  # noqa: S105 (a reason)


@dataclass(frozen=True)
class Attempt:
    """What one attempt came to: the HTTP status (None: no answer), or a refusal before any
    connection (`refused`: the reason of a final Notified=False)."""

    code: int | None = None
    error: str = ""
    refused: str | None = None


# Pure decisions.


def retry_delay(attempts: int, backoff: float) -> float:
    """The wait after the `attempts`-th failed attempt."""
    return backoff * 2 ** max(0, attempts - 1)


def may_retry(attempts: int, backoff: float, window: float) -> bool:
    """Whether another attempt follows `attempts` failed ones: the waits so far plus the next
    stay within the window."""
    waited = sum(retry_delay(n, backoff) for n in range(1, attempts + 1))
    return waited <= window


def wants_notice(body: dict[str, Any]) -> bool:
    """A finished MediaJob with spec.notify whose Notified condition is not final yet."""
    status = body.get("status") or {}
    if not (body.get("spec") or {}).get("notify") or body["metadata"].get("deletionTimestamp"):
        return False
    if status.get("phase") not in {p.value for p in deciders.TERMINAL}:
        return False
    notified = next((x for x in status.get("conditions") or [] if x.get("type") == "Notified"), {})
    return notified.get("status") not in ("True", "False")


def due_in(status: MediaJobStatus, now: datetime, backoff: float) -> float:
    """Seconds until the next attempt is due (<= 0: now)."""
    note = status.notification
    if note is None or note.attempts == 0 or note.last_attempt_time is None:
        return 0.0
    waited = (now - note.last_attempt_time).total_seconds()
    return retry_delay(note.attempts, backoff) - waited


def recorded(
    status: MediaJobStatus,
    event_id: str,
    attempt: Attempt,
    *,
    generation: int | None,
    now: datetime,
    backoff: float,
    window: float,
) -> tuple[NotificationStatus, list, str | None]:
    """The notification status and conditions after an attempt, and the reason of the
    Warning Event it deserves (None: it was delivered)."""
    before = status.notification
    attempts = (before.attempts if before else 0) + (0 if attempt.refused else 1)
    note = NotificationStatus(
        webhook_id=event_id,
        attempts=attempts,
        last_response_code=attempt.code,
        last_attempt_time=deciders.second(now) if not attempt.refused else None,
        delivered_time=None,
        message=None,
    )
    code = attempt.code
    if attempt.refused:
        value, reason, message = "False", attempt.refused, attempt.error
    elif code is not None and 200 <= code < 300:
        note.delivered_time = deciders.second(now)
        value, reason, message = "True", DELIVERED, f"delivered: HTTP {code}"
    elif code == 410:
        value, reason, message = "False", GONE, "the receiver answered 410 Gone: no retries"
    else:
        what = f"HTTP {code}" if code is not None else attempt.error or "no answer"
        if may_retry(attempts, backoff, window):
            wait = retry_delay(attempts, backoff)
            value, reason = "Unknown", RETRYING
            message = f"attempt {attempts} failed ({what}); next in {wait:g}s"
        else:
            value, reason = "False", DELIVERY_FAILED
            message = f"attempt {attempts} failed ({what}); no more retries"
    note.message = message[:1024]
    conditions = deciders.with_conditions(
        status, {c.CONDITION_NOTIFIED: (value, reason, message[:1024])},
        generation=generation, now=now,
    )  # fmt: skip
    return note, conditions, (None if value == "True" else reason)


def parse_networks(networks: tuple[str, ...]) -> NetworkList:
    """The allowed networks (ValueError on a bad CIDR: the operator does not start)."""
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def address_allowed(ip: str, allowed: NetworkList) -> bool:
    if public_address(ip):
        return True
    try:
        address = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return False
    return any(address.version == net.version and address in net for net in allowed)


# I/O: one attempt.


def resolve_checked(host: str, port: int, allowed: NetworkList) -> list[str] | None:
    """The host's addresses, resolved once; None when any of them is not allowed."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses or not all(address_allowed(ip, allowed) for ip in addresses):
        return None
    return addresses


def _pinned(conn: http.client.HTTPConnection, addresses: list[str]) -> None:
    """Connect to these addresses instead of looking the host up again (http.client keeps
    the name for the Host header and, over https, for SNI and the certificate)."""

    def create_connection(address: tuple[str, int], timeout: Any = None, source: Any = None):
        error: OSError = OSError(f"no address for {address[0]}")
        for ip in addresses:
            try:
                return socket.create_connection((ip, address[1]), timeout, source)
            except OSError as exc:
                error = exc
        raise error

    conn._create_connection = create_connection  # type: ignore[attr-defined]


def post(url: str, headers: dict[str, str], body: bytes, allowed: NetworkList) -> Attempt:
    """One POST of the event to the URL, safely (module docstring)."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host or parts.username or parts.password:
        return Attempt(refused=ADDRESS_NOT_ALLOWED, error="the URL must be http(s) with a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve_checked(host, port, allowed)
    except OSError as error:
        return Attempt(error=f"cannot resolve {host}: {error.strerror or error}")
    if addresses is None:
        return Attempt(
            refused=ADDRESS_NOT_ALLOWED,
            error=f"{host} is not on a public address nor in the allowed networks "
            "(MEDIAFLOW_WEBHOOK_ALLOWED_NETWORKS); not sent",
        )
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=CONNECT_TIMEOUT, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT)
    _pinned(conn, addresses)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # The whole attempt within TOTAL_TIMEOUT: a receiver that answers a byte at a time is cut
    # off by shutting the socket down, which wakes a blocked read.
    watchdog = threading.Timer(TOTAL_TIMEOUT, _shutdown, args=(conn,))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        return Attempt(code=response.status)
    except (OSError, http.client.HTTPException) as error:
        return Attempt(error=f"{type(error).__name__}: {error}"[:300])
    finally:
        watchdog.cancel()
        conn.close()


def _shutdown(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


# The component.


class Notifier:
    def __init__(
        self,
        gateway: Gateway,
        store: Store,
        settings: OperatorSettings,
        clock: Callable[[], datetime] | None = None,
        send: Callable[[str, dict[str, str], bytes, NetworkList], Attempt] = post,
        metrics: Metrics | None = None,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self.send = send
        self.metrics = metrics
        self.allowed = parse_networks(settings.webhook_networks)
        self.queue: WorkQueue[Key] = WorkQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"webhook-{i}", daemon=True)
            for i in range(settings.webhook_workers)
        ]

    def start(self) -> Notifier:
        self.make_keys_secret()
        for thread in self._threads:
            thread.start()
        return self

    def make_keys_secret(self) -> None:
        """The API users' Secret of signing secrets, empty, unless it exists: the API may only
        get and update it (an API that could create Secrets could make a service-account
        token Secret of that name, and read it)."""
        name, namespace = self.settings.webhook_keys_secret, self.settings.webhook_keys_namespace
        if not name or not namespace:
            return
        manifest = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {c.LABEL_MANAGED_BY: c.MANAGED_BY},
            },
            "data": {},
        }
        try:
            self.gateway.create_secret(manifest)
            log.info("made the Secret %s/%s of webhook signing secrets", namespace, name)
        except ConflictError:
            pass
        except Exception as error:  # the API answers 503 for it until it exists
            log.warning("the Secret %s/%s of webhook signing secrets: %s", namespace, name,
                        getattr(error, "reason", error))  # fmt: skip

    def stop(self) -> None:
        self.queue.close()
        for thread in self._threads:
            thread.join(timeout=TOTAL_TIMEOUT + 5)

    def submit(self, key: Key, body: dict[str, Any]) -> None:
        """A finished MediaJob: announce it, if it asks and has not been yet."""
        if wants_notice(body):
            self.queue.add(key)

    def _work(self) -> None:
        while True:
            key = self.queue.get(timeout=5.0)
            if key is None:
                if self.queue.closed:
                    return
                continue
            delay = None
            try:
                delay = self.handle(key)
            except Exception:  # never lose the key: try again in a while
                log.exception("%s: webhook delivery failed", key)
                delay = 10.0
            finally:
                self.queue.done(key)
            if delay is not None:
                self.queue.add_after(key, delay)

    def handle(self, key: Key) -> float | None:
        """Make the attempt that is due (or say when it will be); the seconds until this key
        is wanted again, or None when it is done."""
        body = self.store.mediajob(key)
        if body is None or not wants_notice(body):
            return None
        try:
            spec = MediaJobSpec.model_validate(body.get("spec") or {})
            status = MediaJobStatus.model_validate(body.get("status") or {})
        except ValidationError:
            return None
        if spec.notify is None or status.phase not in deciders.TERMINAL:
            return None
        wait = due_in(status, self.clock(), self.settings.webhook_backoff_seconds)
        if wait > 0:
            return wait
        event_id = webhooks.webhook_id(body["metadata"]["uid"])
        attempt = self.attempt(body, spec.notify, event_id)
        return self.record(key, body, event_id, attempt)

    def signing_keys(self, namespace: str, ref: SecretKeyRef) -> list[bytes]:
        """The keys in the Secret the MediaJob names (SigningSecretError: none usable)."""
        secret = self.gateway.read_secret(namespace, ref.name)
        raw = ((secret or {}).get("data") or {}).get(ref.key)
        if raw is None:
            raise webhooks.SigningSecretError(
                f"no key {ref.key!r} in Secret {ref.name!r} of the MediaJob's namespace"
            )
        try:
            return webhooks.signing_keys(base64.b64decode(raw).decode())
        except (UnicodeDecodeError, ValueError) as error:
            raise webhooks.SigningSecretError(str(error)) from None

    def attempt(self, body: dict[str, Any], notify: Notify, event_id: str) -> Attempt:
        try:
            keys = self.signing_keys(body["metadata"]["namespace"], notify.secret_ref)
        except webhooks.SigningSecretError as error:
            return Attempt(refused=SECRET_INVALID, error=f"signing secret: {error}")
        now = self.clock()
        payload = webhooks.encode(webhooks.build_event(body, event_id, now))
        headers = webhooks.signed_headers(keys, event_id, int(now.timestamp()), payload)
        started = time.perf_counter()
        attempt = self.send(notify.url, headers, payload, self.allowed)
        if self.metrics is not None and not attempt.refused:
            self.metrics.webhook_attempted(attempt.code, time.perf_counter() - started)
        return attempt

    def record(
        self, key: Key, body: dict[str, Any], event_id: str, attempt: Attempt
    ) -> float | None:
        """Write the attempt into the status (retrying a lost race from the store's newer
        body) and post its Event; the seconds until the next attempt, or None."""
        settings = self.settings
        for _ in range(WRITE_ATTEMPTS):
            status = MediaJobStatus.model_validate(body.get("status") or {})
            note, conditions, failure = recorded(
                status, event_id, attempt, generation=body["metadata"].get("generation"),
                now=self.clock(), backoff=settings.webhook_backoff_seconds,
                window=settings.webhook_retry_seconds,
            )  # fmt: skip
            patch = {
                "notification": note.model_dump(mode="json", by_alias=True, exclude_none=True),
                "conditions": [
                    x.model_dump(mode="json", by_alias=True, exclude_none=True) for x in conditions
                ],
            }
            try:
                written = self.gateway.patch_mediajob_status(body, patch)
            except ConflictError:
                time.sleep(0.2)
                body = self.store.mediajob(key) or body
                continue
            except GoneError:
                return None
            self.store.put_mediajob(written)
            break
        else:
            log.warning("%s: webhook attempt not recorded (conflicts); again", key)
            return 1.0
        notified = conditions[-1]
        if notified.status != "Unknown" and self.metrics is not None:
            self.metrics.webhook_ended(body["metadata"]["namespace"], notified.reason)
        if failure is None:
            log.info("%s: webhook %s delivered (HTTP %s)", key, event_id, attempt.code)
            self.gateway.post_event(body, type_="Normal", reason="WebhookDelivered",
                                    message=note.message or "")  # fmt: skip
            return None
        log.warning("%s: webhook %s: %s", key, event_id, note.message)
        self.gateway.post_event(
            body, type_="Warning",
            reason="WebhookRefused" if attempt.refused else "WebhookFailed",
            message=note.message or failure,
        )  # fmt: skip
        if notified.status != "Unknown":
            return None
        return retry_delay(note.attempts, settings.webhook_backoff_seconds)
