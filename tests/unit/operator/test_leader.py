"""The leader election's decisions (mediaflow_operator.leader): pure, no cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mediaflow_operator.config import LeaderElectionSettings
from mediaflow_operator.leader import (
    Action,
    LeaseRecord,
    Observation,
    Timing,
    decide,
    observe,
    released,
)

TIMING = Timing(lease_duration=15, renew_deadline=10, retry_period=2)
T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def held_by(holder: str, transitions: int = 0) -> LeaseRecord:
    return LeaseRecord(holder, 15, T0, T0, transitions)


def run(observation: Observation, me: str, now: float, wall: datetime = T0):
    return decide(observation, me, now=now, wall_now=wall, timing=TIMING)


def test_no_lease_is_created_with_me_as_holder() -> None:
    decision = run(observe(None, None, 100.0), "b", 100.0)
    assert decision.action is Action.ACQUIRE
    assert decision.record == LeaseRecord("b", 15, T0, T0, 0)


def test_a_held_lease_is_waited_on_until_it_stayed_unchanged_for_lease_duration() -> None:
    observation = observe(None, held_by("a"), 100.0)
    assert run(observation, "b", 100.0).action is Action.WAIT
    assert run(observation, "b", 114.9).action is Action.WAIT
    # Expiry is measured on this process's clock from when it first saw the record, whatever
    # renewTime says: a renewTime far in the past (another node's clock) changes nothing.
    stale = observe(None, held_by("a"), 100.0)
    assert run(stale, "b", 101.0, wall=T0 + timedelta(hours=1)).action is Action.WAIT


def test_an_expired_lease_is_acquired_and_counts_a_transition() -> None:
    observation = observe(None, held_by("a", transitions=4), 100.0)
    later = T0 + timedelta(seconds=15)
    decision = run(observation, "b", 115.0, wall=later)
    assert decision.action is Action.ACQUIRE
    assert decision.record == LeaseRecord("b", 15, later, later, 5)


def test_a_renewal_restarts_the_standbys_clock() -> None:
    first = observe(None, held_by("a"), 100.0)
    renewed = LeaseRecord("a", 15, T0, T0 + timedelta(seconds=2), 0)
    # The same record read again keeps its observation time; a renewed one restarts it.
    assert observe(first, held_by("a"), 110.0) is first
    second = observe(first, renewed, 110.0)
    assert second.observed_at == 110.0
    assert run(second, "b", 116.0).action is Action.WAIT
    assert run(second, "b", 125.0).action is Action.ACQUIRE


def test_my_own_lease_is_renewed_keeping_its_acquire_time() -> None:
    mine = LeaseRecord("b", 15, T0, T0, 3)
    later = T0 + timedelta(seconds=2)
    decision = run(observe(None, mine, 100.0), "b", 102.0, wall=later)
    assert decision.action is Action.RENEW
    assert decision.record == LeaseRecord("b", 15, T0, later, 3)


def test_a_released_lease_is_acquired_at_once() -> None:
    free = released(held_by("a", transitions=2), T0 + timedelta(seconds=1))
    assert free.holder == ""
    assert free.lease_duration_seconds == 1
    decision = run(observe(None, free, 100.0), "b", 100.0)
    assert decision.action is Action.ACQUIRE
    assert decision.record == LeaseRecord("b", 15, T0, T0, 3)


def test_lost_race_the_loser_reads_the_winners_record_and_waits() -> None:
    # Both candidates saw the same expired Lease and both decided to take it; the API server
    # accepted b's write (resourceVersion precondition) and answered c with 409. c reads again:
    # b's record is new to c, so c waits a whole lease duration from now.
    expired = observe(None, held_by("a"), 100.0)
    b = run(expired, "b", 115.0)
    c = run(expired, "c", 115.0)
    assert b.action is c.action is Action.ACQUIRE
    assert b.record is not None
    after_conflict = observe(expired, b.record, 115.5)
    assert after_conflict.observed_at == 115.5
    assert run(after_conflict, "c", 115.5).action is Action.WAIT
    assert run(after_conflict, "c", 130.4).action is Action.WAIT


def test_a_leader_that_finds_another_holder_is_told_to_wait() -> None:
    # The renewal loop treats WAIT as "lost": the process exits at once.
    taken = observe(None, held_by("c"), 100.0)
    assert run(taken, "b", 100.0).action is Action.WAIT


@pytest.mark.parametrize(("durations"), [(10, 10, 2), (15, 10, 10), (15, 10, 0), (5, 10, 2)])
def test_timings_where_a_leader_could_outlive_its_lease_are_refused(durations) -> None:
    with pytest.raises(ValueError, match="lease duration > renew deadline > retry period"):
        Timing(*durations)


def test_settings_default_to_client_go_and_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("", "_LEASE_NAME", "_RETRY_PERIOD_SECONDS"):
        monkeypatch.delenv(f"MEDIAFLOW_LEADER_ELECTION{name}", raising=False)
    settings = LeaderElectionSettings()
    assert settings.enabled is False
    assert (
        settings.lease_duration_seconds,
        settings.renew_deadline_seconds,
        settings.retry_period_seconds,
    ) == (15, 10, 2)
    monkeypatch.setenv("MEDIAFLOW_LEADER_ELECTION", "true")
    monkeypatch.setenv("MEDIAFLOW_LEADER_ELECTION_LEASE_NAME", "x-operator")
    monkeypatch.setenv("MEDIAFLOW_LEADER_ELECTION_RETRY_PERIOD_SECONDS", "1")
    settings = LeaderElectionSettings()
    assert (settings.enabled, settings.lease_name, settings.retry_period_seconds) == (
        True,
        "x-operator",
        1,
    )


class HeldStore:
    """A Lease someone else keeps renewing."""

    namespace, name = "ns", "lease"

    def __init__(self) -> None:
        self.reads = 0

    def read(self) -> LeaseRecord:
        self.reads += 1
        return LeaseRecord("other", 15, T0, T0 + timedelta(seconds=self.reads), 0)

    def write(self, record: LeaseRecord) -> bool:
        raise AssertionError("a standby of a held Lease writes nothing")


def test_a_standby_told_to_stop_withdraws_without_ever_leading() -> None:
    """SIGTERM on a standby (lead() sets `withdrawn`): its wait between reads ends at once
    and it gives up, instead of waiting out the pod's grace period as a candidate that could
    take the Lease meanwhile."""
    import threading
    import time

    from mediaflow_operator.leader import Elector

    elector = Elector(HeldStore(), "me", Timing(lease_duration=60, renew_deadline=40,
                                               retry_period=30))  # fmt: skip
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(elector.acquire()))
    thread.start()
    time.sleep(0.2)  # in its 30 s wait between reads
    started = time.monotonic()
    elector.withdrawn.set()
    thread.join(timeout=5)
    assert result == [False]
    assert time.monotonic() - started < 2
