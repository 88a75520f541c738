"""Rate limits: a per-key token bucket in process, and the client address it is keyed on.

Why not Litestar's `RateLimitMiddleware` (2.x, with a `Store`): it runs before the body is
read, so it cannot key on the account (the email is in the login form); it answers with
`RateLimit-*` draft headers but no `Retry-After`; one middleware holds one limit, and its
fixed-window history is JSON-encoded into the store on every request. The per-user upload
groups, per-address and per-account sign-in limits need keys known only inside the
handler, so they use this small bucket (each API replica limits on its own; docs/api.md).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

# Beyond this many tracked keys, full buckets are dropped (they carry no state), then the
# least recently used ones (a spray of distinct keys must not grow memory without bound).
MAX_TRACKED_CLIENTS = 10_000

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """`burst` requests at once per key, refilled at `per_minute`; the clock is injectable."""

    def __init__(
        self, burst: int, per_minute: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = burst
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()  # handlers run in worker threads

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.pop(key, None)  # re-inserted below: the dict is in LRU order
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_CLIENTS:
                self._forget(now)
            bucket = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[key] = bucket
        return bucket

    def acquire(self, key: str) -> float:
        """Take a token for `key`: 0.0 if allowed, else the seconds until one is available."""
        with self._lock:
            bucket = self._refilled(key, self.clock())
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate

    def wait(self, key: str) -> float:
        """Seconds until `key` has a token (0.0: it has one now), taking none."""
        with self._lock:
            bucket = self._refilled(key, self.clock())
            return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate

    def _forget(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.burst:
                del self._buckets[key]
        for key in list(self._buckets)[: max(0, len(self._buckets) - MAX_TRACKED_CLIENTS + 1)]:
            del self._buckets[key]


def retry_after_header(wait_seconds: float) -> str:
    return str(max(1, math.ceil(wait_seconds)))


def parse_networks(entries: Iterable[str]) -> list[IPNetwork]:
    """Addresses or CIDRs (`10.0.0.0/8`, `fd00::1`) as networks; ValueError names a bad one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as error:
            raise ValueError(f"{entry!r} is not an IP address or CIDR") from error
    return networks


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from an X-Forwarded-For entry (`1.2.3.4`, `1.2.3.4:5`, `[::1]:5`, `::1`)."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 client seen by a dual-stack proxy: key it like the IPv4 address.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]
) -> str:
    """The address a request came from, for keying limits.

    `peer` is the TCP peer. Only when it is a trusted proxy is `X-Forwarded-For` (every
    header line, in order) read: each proxy appends the address it received the request
    from, so the right-most entry that is not itself a trusted proxy is the client; what
    lies left of it was written by the client and is ignored. When every entry is trusted,
    the left-most is the client; an entry that is not an address stops the walk at the
    trusted hop that reported it (the nearest address known to be real).
    """
    peer_address = _address(peer) if peer else None
    if peer_address is None:
        return peer or "unknown"
    if not _trusted(peer_address, trusted):
        return str(peer_address)
    hops = [hop for line in forwarded_for for hop in line.split(",") if hop.strip()]
    client = peer_address
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        client = address
        if not _trusted(address, trusted):
            break
    return str(client)
