"""The per-client token bucket, on a clock the test moves."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mediaflow_api.auth import ratelimit
from mediaflow_api.auth.ratelimit import TokenBucketLimiter, retry_after_header
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


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after_header(0.2) == "1"
    assert retry_after_header(10.01) == "11"


def test_settings_defaults_and_bounds() -> None:
    settings = make_settings()
    assert (settings.auth_rate_limit_burst, settings.auth_rate_limit_per_minute) == (10, 5.0)
    with pytest.raises(ValidationError):
        make_settings(auth_rate_limit_per_minute=0)
