"""Video progress, read from running worker pods' logs on a budget.

The worker prints `{"event": "progress", "percent": ...}` lines; the only way to see them is
the pod's log, one API-server request per read. One reader serves every running video
MediaJob: each is read at most every `progress_interval_seconds`, and all together at most
`progress_reads_per_second` (a token bucket), oldest-read first. With few jobs each is read
on its interval; with many, each less often: the API server never sees more than the budget.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mediaflow_operator import deciders
from mediaflow_operator.config import OperatorSettings
from mediaflow_operator.gateway import ConflictError, Gateway, GoneError
from mediaflow_operator.observed import Key, PodView, Store, running_video

log = logging.getLogger(__name__)
TICK_SECONDS = 0.25
LOG_LINES = 20


@dataclass
class Budget:
    """A token bucket: `rate` reads per second, at most one second's worth saved up."""

    rate: float
    tokens: float = 0.0
    last: float | None = None

    def refill(self, now: float) -> None:
        if self.last is not None:
            self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        else:
            self.tokens = min(self.rate, 1.0)
        self.last = now

    def take(self, wanted: int) -> int:
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted


def pick(
    candidates: list[Key], last_read: dict[Key, float], now: float, interval: float, allowed: int
) -> list[Key]:
    """The MediaJobs to read now: due (not read within `interval`), oldest read first, at
    most `allowed`."""
    due = [k for k in candidates if now - last_read.get(k, float("-inf")) >= interval]
    due.sort(key=lambda k: last_read.get(k, float("-inf")))
    return due[: max(0, allowed)]


def running_pod(pods: tuple[PodView, ...]) -> PodView | None:
    live = [p for p in pods if p.phase == "Running" and not p.deleted and p.terminated is None]
    return deciders.newest(live)


class ProgressReader:
    def __init__(
        self,
        gateway: Gateway,
        store: Store,
        settings: OperatorSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.interval = settings.progress_interval_seconds
        self.budget = Budget(settings.progress_reads_per_second)
        self.clock = clock
        self.last_read: dict[Key, float] = {}
        self.reads = 0
        self.due = 0  # running videos due for a read at the last tick (a metric)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopped.wait(TICK_SECONDS):
            try:
                self.tick()
            except Exception:  # the next tick tries again
                log.exception("reading progress failed")

    def tick(self) -> int:
        """One round: read the due MediaJobs the budget allows; the number read."""
        now = self.clock()
        running = self.store.running_videos()
        # Forget what stopped running.
        self.last_read = {k: v for k, v in self.last_read.items() if k in running}
        self.budget.refill(now)
        due = pick(list(running), self.last_read, now, self.interval, len(running))
        self.due = len(due)
        chosen = due[: self.budget.take(len(due))]
        for key in chosen:
            self.last_read[key] = now
            self.read(key)
        return len(chosen)

    def read(self, key: Key) -> None:
        pod = running_pod(self.store.pods(key))
        if pod is None:
            return
        self.reads += 1
        progress = deciders.progress_from_log(
            self.gateway.pod_log_tail(key.namespace, pod.name, LOG_LINES)
        )
        body = self.store.mediajob(key)
        if progress is None or body is None or not running_video(body):
            return
        if (body.get("status") or {}).get("progress") == progress:
            return
        try:
            updated = self.gateway.patch_mediajob_status(body, {"progress": progress})
        except (ConflictError, GoneError):  # changed meanwhile: the next read tries again
            return
        self.store.put_mediajob(updated)
