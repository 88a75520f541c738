"""The operator's Prometheus metrics (issue 13; names in docs/operator.md, "Metrics").

One registry of the operator's own (no process or platform collectors from other code), served
on `OperatorSettings.metrics_port` at /metrics by `serve`, which `__main__` starts before
leader election, so a standby answers too (with `mediaflow_operator_leader` 0 and no
MediaJob series: it holds no store).

Three kinds of series:
- read from the store at scrape time (`StoreCollector`): MediaJobs by phase, the oldest
  pending one's age, webhooks not delivered yet, the progress reader's reads, budget and
  due MediaJobs. Nothing is kept
  up to date per event, so a scrape costs one pass over the store;
- observed once per MediaJob when the reconciler's status write that finishes it succeeds
  (`finish_record`, pure; `Metrics.finished`): outcomes, items, times, cost. The write is
  conditioned on the MediaJob's resourceVersion, so exactly one write makes a MediaJob
  terminal; an operator that restarts and finds it finished writes nothing and counts
  nothing (a crash between the write and the count loses that one observation, it never
  counts twice);
- counted where things happen: reconcile latency and errors, retries, storage errors,
  webhook attempts (at each POST) and ended webhooks (by the status write that makes the
  Notified condition final, conditioned like the finishing write).

Labels are bounded: namespace, operation, phase, outcome, reason, handler. Never a name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from mediaflow_core.mediajob import MediaJobCost, MediaJobStatus, Phase
from mediaflow_operator.notifier import wants_notice

if TYPE_CHECKING:
    from collections.abc import Callable

    from mediaflow_operator.observed import Store
    from mediaflow_operator.progress import ProgressReader

TERMINAL = {Phase.SUCCEEDED.value, Phase.FAILED.value, Phase.CANCELLED.value}
OUTCOMES = {
    Phase.SUCCEEDED: "succeeded",
    Phase.FAILED: "failed",
    Phase.CANCELLED: "cancelled",
}
# Seconds: a photo's queue wait is ~1-3 s, a video's run minutes, the deadline an hour.
QUEUE_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
RUN_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
DURATION_BUCKETS = (0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200)
RECONCILE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# A webhook attempt connects within 5 s and ends within 10 s (notifier.py).
WEBHOOK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# What one webhook attempt came to (`webhook_attempt_outcome`).
WEBHOOK_ATTEMPT_OUTCOMES = ("delivered", "http_error", "no_answer")
# The final reasons of the Notified condition (notifier.py); their counters exist at 0.
WEBHOOK_FINAL_REASONS = (
    "Delivered", "Gone", "DeliveryFailed", "AddressNotAllowed", "SigningSecretInvalid",
)  # fmt: skip
MEMORY_BUCKETS = tuple(float(2**n * 1024**2) for n in range(3, 14))  # 8 MiB .. 8 GiB
# The handlers `handling` times (runtime.py, handlers.py): their error counters exist at 0
# from the start, so that `rate()` and alerts see a series before the first error.
HANDLERS = ("reconcile", "mediajob_event", "job_event", "pod_event")


@dataclass(frozen=True)
class FinishRecord:
    """What one finished MediaJob adds to the metrics."""

    namespace: str
    operation: str
    outcome: str
    reason: str
    queue_wait: float | None  # created -> pod running (None: it never ran)
    run: float | None  # pod running -> finished
    duration: float | None  # created -> finished
    items: dict[str, int]  # outcome -> items (one for a single-input MediaJob)
    cost: MediaJobCost | None


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def webhook_attempt_outcome(code: int | None) -> str:
    """An attempt's outcome label from the receiver's HTTP status (None: no answer)."""
    if code is None:
        return "no_answer"
    return "delivered" if 200 <= code < 300 else "http_error"


def succeeded_reason(status: MediaJobStatus) -> str:
    for cond in status.conditions:
        if cond.type == "Succeeded":
            return cond.reason
    return "Unknown"


def finish_record(
    body: dict[str, Any], before: dict[str, Any] | None, after: MediaJobStatus
) -> FinishRecord | None:
    """What a status write records: a FinishRecord when it takes the MediaJob `body` from a
    status `before` (its raw status) that had not finished to `after`, which has; else None
    (not finished yet, or finished already: counted once)."""
    if (before or {}).get("phase") in TERMINAL or after.phase is None:
        return None
    if after.phase.value not in TERMINAL:
        return None
    meta = body.get("metadata") or {}
    created = _time(meta.get("creationTimestamp"))
    started, completed = _time(after.start_time), _time(after.completion_time)
    items: dict[str, int] = {}
    if after.items is not None:
        for item in after.items:
            if item.phase.value in TERMINAL:
                outcome = OUTCOMES[item.phase]
                items[outcome] = items.get(outcome, 0) + 1
    else:
        items[OUTCOMES[after.phase]] = 1
    return FinishRecord(
        namespace=meta.get("namespace", ""),
        operation=str((body.get("spec") or {}).get("operation") or "Unknown"),
        outcome=OUTCOMES[after.phase],
        reason=succeeded_reason(after),
        queue_wait=_seconds(created, started),
        run=_seconds(started, completed),
        duration=_seconds(created, completed),
        items=items,
        cost=after.cost,
    )


@dataclass(frozen=True)
class StoreSnapshot:
    """The store's MediaJobs, counted for the gauges."""

    by_phase: dict[tuple[str, str, str], int]  # (namespace, operation, phase) -> MediaJobs
    oldest_pending: dict[str, float]  # namespace -> seconds
    webhooks_pending: dict[str, int]  # namespace -> finished MediaJobs not announced yet


def snapshot(mediajobs: list[dict[str, Any]], now: datetime) -> StoreSnapshot:
    """Count MediaJobs by namespace, operation and phase (one without a phase yet, not seen
    by the reconciler, is Pending) and the age of each namespace's oldest Pending one. One
    pass, no parsing but the creation times of Pending ones."""
    by_phase: dict[tuple[str, str, str], int] = {}
    oldest: dict[str, str] = {}
    unannounced: dict[str, int] = {}
    for body in mediajobs:
        meta = body.get("metadata") or {}
        namespace = meta.get("namespace", "")
        phase = (body.get("status") or {}).get("phase") or Phase.PENDING.value
        key = (namespace, str((body.get("spec") or {}).get("operation") or "Unknown"), phase)
        by_phase[key] = by_phase.get(key, 0) + 1
        if phase == Phase.PENDING.value and not meta.get("deletionTimestamp"):
            created = meta.get("creationTimestamp")
            # RFC 3339 in UTC with the same layout: the smallest string is the oldest.
            if created and (namespace not in oldest or created < oldest[namespace]):
                oldest[namespace] = created
        if wants_notice(body):
            unannounced[namespace] = unannounced.get(namespace, 0) + 1
    ages = {}
    for namespace, created in oldest.items():
        seconds = _seconds(_time(created), now)
        if seconds is not None:
            ages[namespace] = seconds
    return StoreSnapshot(by_phase, ages, unannounced)


class StoreCollector(Collector):
    """The gauges read from the store and the progress reader at scrape time."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store: Store | None = None
        self.progress: ProgressReader | None = None
        self.budget: float | None = None
        self.clock = clock

    def describe(self) -> list[Any]:
        return []  # its series depend on the store: not checked at registration

    def collect(self) -> Iterator[Any]:
        store, progress = self.store, self.progress
        if store is None:  # a standby, or before Kopf started: no store, no series
            return
        jobs = GaugeMetricFamily(
            "mediaflow_mediajobs",
            "MediaJobs in the operator's store, by namespace, operation and phase.",
            labels=["namespace", "operation", "phase"],
        )
        pending = GaugeMetricFamily(
            "mediaflow_mediajob_oldest_pending_seconds",
            "Age of the oldest Pending MediaJob of each namespace (from its creation).",
            labels=["namespace"],
        )
        counted = snapshot(store.mediajobs(), self.clock())
        for (namespace, operation, phase), count in sorted(counted.by_phase.items()):
            jobs.add_metric([namespace, operation, phase], count)
        for namespace, seconds in sorted(counted.oldest_pending.items()):
            pending.add_metric([namespace], seconds)
        webhooks = GaugeMetricFamily(
            "mediaflow_webhooks_pending",
            "Finished MediaJobs whose completion webhook is not delivered or given up yet "
            "(queued, or waiting for a retry).",
            labels=["namespace"],
        )
        for namespace, count in sorted(counted.webhooks_pending.items()):
            webhooks.add_metric([namespace], count)
        yield jobs
        yield pending
        yield webhooks
        if progress is not None:
            yield CounterMetricFamily(
                "mediaflow_progress_reads",
                "Pod-log reads of running videos' progress.",
                value=progress.reads,
            )
            yield GaugeMetricFamily(
                "mediaflow_progress_budget_reads_per_second",
                "The progress reader's budget of pod-log reads per second.",
                value=progress.budget.rate,
            )
            yield GaugeMetricFamily(
                "mediaflow_progress_due",
                "Running videos due for a progress read at the reader's last tick.",
                value=progress.due,
            )


class Metrics:
    """Every operator series, on a registry of its own."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.store_collector = StoreCollector()
        registry.register(self.store_collector)
        op, ns_op = ["operation"], ["namespace", "operation"]
        self.queue_wait = Histogram(
            "mediaflow_mediajob_queue_wait_seconds",
            "From a MediaJob's creation to its pod running (its conversion starting).",
            op, buckets=QUEUE_BUCKETS, registry=registry,
        )  # fmt: skip
        self.run = Histogram(
            "mediaflow_mediajob_run_seconds",
            "From a MediaJob's pod running to its end.",
            op, buckets=RUN_BUCKETS, registry=registry,
        )  # fmt: skip
        self.duration = Histogram(
            "mediaflow_mediajob_duration_seconds",
            "From a MediaJob's creation to its end.",
            op, buckets=DURATION_BUCKETS, registry=registry,
        )  # fmt: skip
        self.outcomes = Counter(
            "mediaflow_mediajob_outcomes",
            "Finished MediaJobs by outcome and reason (the Succeeded condition's reason).",
            ["namespace", "operation", "outcome", "reason"], registry=registry,
        )  # fmt: skip
        self.items = Counter(
            "mediaflow_mediajob_items",
            "Finished inputs (items of spec.inputs; one per single-input MediaJob) by outcome.",
            ["namespace", "operation", "outcome"], registry=registry,
        )  # fmt: skip
        self.retries = Counter(
            "mediaflow_mediajob_retries",
            "Conversions run again: a Job's pod after a transient failure, a MediaJob or "
            "an input given to a fresh pod after its warm pod failed or ended without it.",
            ns_op, registry=registry,
        )  # fmt: skip
        self.reconcile_duration = Histogram(
            "mediaflow_reconcile_duration_seconds",
            "Time in the operator's handlers: `reconcile` (one reconcile of a MediaJob) and "
            "the watch event handlers.",
            ["handler"], buckets=RECONCILE_BUCKETS, registry=registry,
        )  # fmt: skip
        self.reconcile_errors = Counter(
            "mediaflow_reconcile_errors",
            "Handler runs that raised (a reconcile is retried with backoff).",
            ["handler"], registry=registry,
        )  # fmt: skip
        for handler in HANDLERS:
            self.reconcile_errors.labels(handler)
        self.last_reconcile = Gauge(
            "mediaflow_operator_last_reconcile_timestamp_seconds",
            "Unix time the reconciler last finished a reconcile or found its queue empty.",
            registry=registry,
        )
        self.leader = Gauge(
            "mediaflow_operator_leader",
            "1 on the replica that runs the reconciler, 0 on a standby.",
            registry=registry,
        )
        self.cpu = Counter(
            "mediaflow_worker_cpu_seconds",
            "CPU seconds (user + system) of the conversion tools of finished MediaJobs.",
            ns_op, registry=registry,
        )  # fmt: skip
        self.input_bytes = Counter(
            "mediaflow_worker_input_bytes",
            "Input bytes the workers of finished MediaJobs downloaded.",
            ns_op, registry=registry,
        )  # fmt: skip
        self.output_bytes = Counter(
            "mediaflow_worker_output_bytes",
            "Output bytes the workers of finished MediaJobs uploaded.",
            ns_op, registry=registry,
        )  # fmt: skip
        self.peak_memory = Histogram(
            "mediaflow_worker_peak_memory_bytes",
            "Peak memory of the largest tool process of each finished MediaJob.",
            op, buckets=MEMORY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.storage_errors = Counter(
            "mediaflow_storage_errors",
            "Object storage calls that failed.",
            ["component"], registry=registry,
        )  # fmt: skip
        self.storage_errors.labels("operator")  # present at 0 from the start
        self.webhook_attempts = Counter(
            "mediaflow_webhook_attempts",
            "Completion webhook POSTs by outcome: delivered (2xx), http_error (any other "
            "status), no_answer (no connection, timeout, TLS failure).",
            ["outcome"], registry=registry,
        )  # fmt: skip
        for outcome in WEBHOOK_ATTEMPT_OUTCOMES:
            self.webhook_attempts.labels(outcome)
        self.webhook_attempt_duration = Histogram(
            "mediaflow_webhook_attempt_duration_seconds",
            "Time of one completion webhook POST, from connecting to the answer.",
            buckets=WEBHOOK_BUCKETS, registry=registry,
        )  # fmt: skip
        self.webhook_notifications = Counter(
            "mediaflow_webhook_notifications",
            "MediaJobs whose completion webhook ended, by namespace and the final reason of "
            "their Notified condition (Delivered, or why not).",
            ["namespace", "reason"], registry=registry,
        )  # fmt: skip
        self.leader.set(0)
        self._lock = threading.Lock()

    def attach(self, store: Store, progress: ProgressReader | None) -> None:
        """The running reconciler's store and progress reader (the leader's)."""
        self.store_collector.store = store
        self.store_collector.progress = progress
        self.leader.set(1)
        self.last_reconcile.set(time.time())

    def detach(self) -> None:
        self.store_collector.store = None
        self.store_collector.progress = None
        self.leader.set(0)

    def finished(self, record: FinishRecord) -> None:
        """A MediaJob finished: its outcome, items, times and cost."""
        ns, op = record.namespace, record.operation
        self.outcomes.labels(ns, op, record.outcome, record.reason).inc()
        for outcome, count in record.items.items():
            self.items.labels(ns, op, outcome).inc(count)
        if record.queue_wait is not None:
            self.queue_wait.labels(op).observe(record.queue_wait)
        if record.run is not None:
            self.run.labels(op).observe(record.run)
        if record.duration is not None:
            self.duration.labels(op).observe(record.duration)
        if record.cost is not None:
            self.cpu.labels(ns, op).inc(record.cost.cpu_seconds)
            self.input_bytes.labels(ns, op).inc(record.cost.input_bytes)
            self.output_bytes.labels(ns, op).inc(record.cost.output_bytes)
            self.peak_memory.labels(op).observe(record.cost.peak_memory_bytes)

    def webhook_attempted(self, code: int | None, seconds: float) -> None:
        self.webhook_attempts.labels(webhook_attempt_outcome(code)).inc()
        self.webhook_attempt_duration.observe(seconds)

    def webhook_ended(self, namespace: str, reason: str) -> None:
        self.webhook_notifications.labels(namespace, reason).inc()

    def retried(self, namespace: str, operation: str, count: int = 1) -> None:
        if count > 0:
            self.retries.labels(namespace, operation).inc(count)

    @contextmanager
    def handling(self, handler: str) -> Iterator[None]:
        """Time a handler run; count it as an error when it raises."""
        started = time.perf_counter()
        try:
            yield
        except Exception:
            self.reconcile_errors.labels(handler).inc()
            raise
        finally:
            self.reconcile_duration.labels(handler).observe(time.perf_counter() - started)

    def reconciled(self) -> None:
        self.last_reconcile.set(time.time())

    def storage_error(self) -> None:
        self.storage_errors.labels("operator").inc()


# The process's metrics: what __main__ serves and the runtime records into.
METRICS = Metrics()


def serve(port: int, metrics: Metrics = METRICS) -> Any:
    """Serve /metrics on `port` (all addresses) in a daemon thread; None when port is 0."""
    if not port:
        return None
    server, _thread = start_http_server(port, registry=metrics.registry)
    return server
