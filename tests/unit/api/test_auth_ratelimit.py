"""The per-key token bucket, on a clock the test moves, and the client address it keys on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mediaflow_api.auth import ratelimit
from mediaflow_api.auth.ratelimit import (
    TokenBucketLimiter,
    client_address,
    parse_networks,
    retry_after_header,
)
from tests.unit.api.conftest import make_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_wait_then_refill() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(burst=3, per_minute=6, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == 10.0  # 6 per minute: one every 10 s
    assert limiter.acquire("b") == 0.0  # per client
    clock.now += 10
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_wait_takes_no_token() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(burst=1, per_minute=6, clock=clock)
    assert [limiter.wait("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == 0.0
    assert limiter.wait("a") == 10.0


def test_refill_never_exceeds_the_burst() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(burst=2, per_minute=60, clock=clock)
    clock.now += 3600
    assert [limiter.acquire("a") == 0.0 for _ in range(3)] == [True, True, False]


def test_full_buckets_are_forgotten_when_too_many_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_TRACKED_CLIENTS", 3)
    clock = Clock()
    limiter = TokenBucketLimiter(burst=1, per_minute=60, clock=clock)
    for key in "abc":
        limiter.acquire(key)
    clock.now += 60  # every bucket is full again
    limiter.acquire("d")
    assert set(limiter._buckets) == {"d"}


def test_a_spray_of_keys_is_bounded_dropping_the_least_recently_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ratelimit, "MAX_TRACKED_CLIENTS", 3)
    limiter = TokenBucketLimiter(burst=1, per_minute=1, clock=Clock())
    for key in "abc":
        limiter.acquire(key)
    limiter.acquire("a")  # used again: the newest
    limiter.acquire("d")
    assert set(limiter._buckets) == {"c", "a", "d"}


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after_header(0.2) == "1"
    assert retry_after_header(10.01) == "11"


def test_settings_defaults_and_bounds() -> None:
    settings = make_settings()
    assert (settings.auth_rate_limit_burst, settings.auth_rate_limit_per_minute) == (10, 5.0)
    assert (
        settings.auth_account_rate_limit_burst,
        settings.auth_account_rate_limit_per_minute,
    ) == (
        5,
        1.0,
    )
    assert settings.trusted_proxies == []
    with pytest.raises(ValidationError):
        make_settings(auth_rate_limit_per_minute=0)


# ---------------------------------------------------------------- client address

PROXIES = parse_networks(["10.0.0.0/8", "fd00::/8", "127.0.0.1"])


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert client_address("203.0.113.7", ["1.2.3.4"], PROXIES) == "203.0.113.7"
    assert client_address("203.0.113.7", ["1.2.3.4"], []) == "203.0.113.7"
    # Loopback is trusted only when configured (uvicorn's default trusted it).
    assert client_address("127.0.0.1", ["1.2.3.4"], []) == "127.0.0.1"


def test_a_trusted_proxy_names_the_right_most_untrusted_hop() -> None:
    # The client wrote "6.6.6.6" itself; the ingress (10.1.1.1) appended the real peer.
    assert client_address("10.1.1.1", ["6.6.6.6, 198.51.100.9"], PROXIES) == "198.51.100.9"
    # Two trusted proxies in a row, the header split over two lines.
    assert client_address("10.1.1.1", ["6.6.6.6, 198.51.100.9", "10.2.2.2"], PROXIES) == (
        "198.51.100.9"
    )
    assert client_address("127.0.0.1", ["2001:db8::1"], PROXIES) == "2001:db8::1"


def test_ports_brackets_and_mapped_addresses() -> None:
    assert client_address("10.1.1.1", ["198.51.100.9:4711"], PROXIES) == "198.51.100.9"
    assert client_address("10.1.1.1", ["[2001:db8::1]:443"], PROXIES) == "2001:db8::1"
    assert client_address("::ffff:10.1.1.1", ["::ffff:198.51.100.9"], PROXIES) == "198.51.100.9"


def test_without_a_header_or_with_only_proxies() -> None:
    assert client_address("10.1.1.1", [], PROXIES) == "10.1.1.1"
    assert client_address("10.1.1.1", ["10.3.3.3, 10.2.2.2"], PROXIES) == "10.3.3.3"


def test_garbage_stops_at_the_hop_that_reported_it() -> None:
    assert client_address("10.1.1.1", ["198.51.100.9, bogus"], PROXIES) == "10.1.1.1"
    assert client_address("10.1.1.1", ["bogus, 10.2.2.2"], PROXIES) == "10.2.2.2"


def test_no_peer() -> None:
    assert client_address(None, ["1.2.3.4"], PROXIES) == "unknown"


def test_trusted_proxies_setting_is_validated() -> None:
    settings = make_settings(trusted_proxies="10.0.0.0/8, 127.0.0.1,fd00::/8")
    assert settings.trusted_proxies == ["10.0.0.0/8", "127.0.0.1/32", "fd00::/8"]
    with pytest.raises(ValidationError, match="not an IP address or CIDR"):
        make_settings(trusted_proxies="ingress.example.com")
