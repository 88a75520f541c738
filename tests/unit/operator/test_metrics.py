"""The operator's metrics: the pure record of a finished MediaJob, the store's gauges (and
what a scrape costs at 5,000 MediaJobs), and the reconciler counting each MediaJob once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest

from mediaflow_core.mediajob import MediaJobCost, MediaJobStatus
from mediaflow_operator.metrics import Metrics, finish_record, snapshot
from mediaflow_operator.observed import Store
from mediaflow_operator.reconciler import Reconciler
from mediaflow_worker.report import success_message
from tests.unit.operator.test_reconciler import RESULT, T0, World, running, terminated

pytestmark = pytest.mark.unit

CREATED = "2026-12-02T10:00:00Z"


def body(phase: str | None = None, operation: str = "ImageConvert", **status: Any) -> dict:
    return {
        "metadata": {"name": "a", "namespace": "team", "uid": "u", "creationTimestamp": CREATED},
        "spec": {"operation": operation},
        "status": {"phase": phase, **status} if phase else {},
    }


def status(phase: str, reason: str, **extra: Any) -> MediaJobStatus:
    cond = {"type": "Succeeded", "status": "True" if phase == "Succeeded" else "False",
            "lastTransitionTime": "2026-12-02T10:00:09Z", "reason": reason}  # fmt: skip
    return MediaJobStatus.model_validate({"phase": phase, "conditions": [cond], **extra})


def test_a_mediajob_that_finishes_records_its_outcome_reason_times_and_cost() -> None:
    cost = {"cpuSeconds": 0.5, "peakMemoryBytes": 2**20, "inputBytes": 10, "outputBytes": 5}
    after = status("Succeeded", "Completed", startTime="2026-12-02T10:00:02Z",
                   completionTime="2026-12-02T10:00:05Z", cost=cost)  # fmt: skip
    record = finish_record(body("Running"), {"phase": "Running"}, after)
    assert record is not None
    assert (record.namespace, record.operation, record.outcome, record.reason) == (
        "team",
        "ImageConvert",
        "succeeded",
        "Completed",
    )
    assert (record.queue_wait, record.run, record.duration) == (2.0, 3.0, 5.0)
    assert record.items == {"succeeded": 1}
    assert record.cost == MediaJobCost.model_validate(cost)


def test_only_the_write_that_finishes_it_records_anything() -> None:
    after = status("Failed", "InvalidInput", completionTime="2026-12-02T10:00:05Z")
    assert finish_record(body("Failed"), {"phase": "Failed"}, after) is None  # already ended
    assert finish_record(body(), {}, status("Running", "Running")) is None  # not ended
    refused = finish_record(body(), {}, status("Failed", "InputNotFound",
                                               completionTime="2026-12-02T10:00:01Z"))  # fmt: skip
    assert refused is not None
    # It never ran: no queue wait nor run time, only its whole life.
    assert (refused.queue_wait, refused.run, refused.duration) == (None, None, 1.0)
    assert (refused.outcome, refused.reason) == ("failed", "InputNotFound")


def test_the_items_of_a_multi_input_mediajob_count_by_their_outcome() -> None:
    items = [{"index": 0, "phase": "Succeeded"}, {"index": 1, "phase": "Failed"},
             {"index": 2, "phase": "Succeeded"}, {"index": 3, "phase": "Cancelled"}]  # fmt: skip
    after = status("Succeeded", "SomeItemsFailed", items=items)
    record = finish_record(body("Running"), {"phase": "Running"}, after)
    assert record is not None
    assert record.items == {"succeeded": 2, "failed": 1, "cancelled": 1}


def test_the_gauges_count_by_phase_and_the_oldest_pending_age_per_namespace() -> None:
    now = datetime(2026, 12, 2, 10, 1, 0, tzinfo=UTC)
    jobs = [body("Pending"), body("Running"), body(), body("Succeeded", "VideoConvert")]
    jobs[2]["metadata"]["creationTimestamp"] = "2026-12-02T09:59:00Z"
    counted = snapshot(jobs, now)
    assert counted.by_phase == {
        ("team", "ImageConvert", "Pending"): 2,  # one without a status yet is Pending
        ("team", "ImageConvert", "Running"): 1,
        ("team", "VideoConvert", "Succeeded"): 1,
    }
    assert counted.oldest_pending == {"team": 120.0}
    assert counted.webhooks_pending == {}


def test_finished_mediajobs_waiting_for_their_webhook_are_a_gauge() -> None:
    notify = {"url": "https://hooks.example/", "secretRef": {"name": "s", "key": "k"}}
    waiting, delivered, running = body("Succeeded"), body("Failed"), body("Running")
    for mj in (waiting, delivered, running):
        mj["spec"]["notify"] = notify
    delivered["status"]["conditions"] = [{"type": "Notified", "status": "True"}]
    counted = snapshot([waiting, delivered, running, body("Succeeded")], datetime.now(UTC))
    assert counted.webhooks_pending == {"team": 1}
    store = Store()
    for n, mj in enumerate((waiting, delivered, running)):
        mj["metadata"].update(name=f"mj-{n}", resourceVersion=str(n))
        store.put_mediajob(mj)
    metrics = Metrics()
    metrics.attach(store, None)
    sample = metrics.registry.get_sample_value
    assert sample("mediaflow_webhooks_pending", {"namespace": "team"}) == 1
    # The attempt counters exist at 0 before the first webhook.
    assert sample("mediaflow_webhook_attempts_total", {"outcome": "no_answer"}) == 0


def test_a_scrape_over_5000_mediajobs_stays_cheap() -> None:
    """Measured, reported, not asserted tightly (a loaded 2-core machine): the issue's goal
    is a scrape under 50 ms at 5,000 MediaJobs."""
    store = Store()
    phases = ["Pending", "Running", "Succeeded", "Failed", "Cancelled"]
    for n in range(5000):
        mj = body(phases[n % 5], ["ImageConvert", "VideoConvert"][n % 2])
        created = (T0 + timedelta(seconds=n)).strftime("%FT%TZ")
        mj["metadata"].update(name=f"mj-{n}", namespace=f"ns-{n % 20}", resourceVersion=str(n),
                              creationTimestamp=created)  # fmt: skip
        store.put_mediajob(mj)
    metrics = Metrics()
    metrics.attach(store, None)
    generate_latest(metrics.registry)  # warm
    rounds = 5
    started = time.perf_counter()
    for _ in range(rounds):
        text = generate_latest(metrics.registry)
    per_scrape = (time.perf_counter() - started) / rounds
    print(f"\nscrape of the operator's /metrics over 5,000 MediaJobs: {per_scrape * 1000:.1f} ms")
    assert (
        b'mediaflow_mediajobs{namespace="ns-0",operation="ImageConvert",phase="Pending"} 250.0'
        in text
    )
    assert per_scrape < 0.5  # 10x the goal: only a gross regression fails here


def test_a_standby_serves_the_leader_gauge_and_no_mediajob_series() -> None:
    metrics = Metrics()
    text = generate_latest(metrics.registry).decode()
    assert "mediaflow_operator_leader 0.0" in text
    assert "mediaflow_mediajobs{" not in text
    assert 'mediaflow_storage_errors_total{component="operator"} 0.0' in text


def test_handler_timing_counts_errors() -> None:
    metrics = Metrics()
    with metrics.handling("reconcile"):
        pass
    with pytest.raises(RuntimeError), metrics.handling("reconcile"):
        raise RuntimeError
    get = metrics.registry.get_sample_value
    assert get("mediaflow_reconcile_duration_seconds_count", {"handler": "reconcile"}) == 2
    assert get("mediaflow_reconcile_errors_total", {"handler": "reconcile"}) == 1


def test_the_reconciler_counts_a_finished_mediajob_once_with_its_cost() -> None:
    world = World()
    metrics = Metrics()
    world.reconciler = Reconciler(
        world.gateway, world.store, world.settings, lambda: world.now, metrics=metrics
    )
    key = world.create("photo")
    world.reconcile(key)
    world.pod(key, **running())
    world.reconcile(key)
    world.now = T0 + timedelta(seconds=4)
    cost = {"cpuSeconds": 0.25, "peakMemoryBytes": 3 * 2**20, "inputBytes": 100,
            "outputBytes": 1234}  # fmt: skip
    world.pod(key, **terminated(0, success_message({**RESULT, "cost": cost})))
    world.reconcile(key)
    world.reconcile(key)  # again (an echo, a restart): nothing more is counted
    mj = world.mj(key)
    assert mj["status"]["cost"] == cost
    get = metrics.registry.get_sample_value
    labels = {"namespace": "team", "operation": "ImageConvert"}
    assert get("mediaflow_mediajob_outcomes_total",
               {**labels, "outcome": "succeeded", "reason": "Completed"}) == 1  # fmt: skip
    assert get("mediaflow_mediajob_items_total", {**labels, "outcome": "succeeded"}) == 1
    assert get("mediaflow_worker_cpu_seconds_total", labels) == 0.25
    assert get("mediaflow_worker_input_bytes_total", labels) == 100
    assert get("mediaflow_worker_output_bytes_total", labels) == 1234
    op = {"operation": "ImageConvert"}
    assert get("mediaflow_worker_peak_memory_bytes_count", op) == 1
    assert get("mediaflow_mediajob_duration_seconds_count", op) == 1
    assert get("mediaflow_mediajob_run_seconds_count", op) == 1
