"""The operator's moving parts, wired together: the store the watches fill, the work queue,
the reconciler's worker threads, the progress reader and the orphan sweep.

Kopf (handlers.py) owns the watches and the process; everything here is plain threads, so
that a reconcile blocked on the API server or object storage never stalls an event loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from kubernetes.client.exceptions import ApiException

from mediaflow_core import constants as c
from mediaflow_core.session import SESSIONS_PREFIX
from mediaflow_operator import logcontext
from mediaflow_operator.builders import namespace_excluded
from mediaflow_operator.config import OperatorSettings
from mediaflow_operator.gateway import KubeGateway
from mediaflow_operator.metrics import METRICS, Metrics
from mediaflow_operator.notifier import Notifier
from mediaflow_operator.observed import Key, Store
from mediaflow_operator.progress import ProgressReader
from mediaflow_operator.reconciler import Reconciler
from mediaflow_operator.sweeper import (
    OWNED_PREFIXES,
    LiveMediaJobs,
    StoredObject,
    Sweeper,
    orphans,
    served,
    stale_mailboxes,
)
from mediaflow_operator.warm import Pool, PoolClosedError
from mediaflow_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 60.0
# A worker with nothing to do says so this often (the last-reconcile timestamp moves on), so
# the timestamp stops only when the reconciler is stuck or gone, not when it is idle.
IDLE_TICK_SECONDS = 15.0


def backoff(failures: int) -> float:
    """Seconds before retrying a MediaJob whose reconcile failed `failures` times in a row."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, failures - 1))


class Runtime:
    def __init__(
        self,
        settings: OperatorSettings,
        namespaces: Sequence[str] = (),
        metrics: Metrics = METRICS,
    ) -> None:
        self.settings = settings
        self.namespaces = tuple(namespaces)
        self.metrics = metrics
        self.gateway = KubeGateway(settings, on_storage_error=metrics.storage_error)
        self.store = Store()
        self.queue: WorkQueue[Key] = WorkQueue()
        self.pool = Pool(self.gateway, settings, self.queue.add)
        self.reconciler = Reconciler(
            self.gateway, self.store, settings, pool=self.pool, metrics=metrics
        )
        self.progress = ProgressReader(self.gateway, self.store, settings)
        self.notifier = Notifier(self.gateway, self.store, settings, metrics=metrics)
        self.reconciler.on_finished = self.notifier.submit
        self.failures: dict[Key, int] = {}
        self.reconciles = 0
        self._lock = threading.Lock()
        self._workers = [
            threading.Thread(target=self._work, name=f"reconcile-{i}", daemon=True)
            for i in range(settings.reconcile_workers)
        ]
        interval = settings.orphan_sweep_interval_seconds
        self.sweeper = Sweeper(self.sweep_orphans, interval) if interval else None

    def start(self) -> Runtime:
        logcontext.install()
        self.metrics.attach(self.store, self.progress)
        for worker in self._workers:
            worker.start()
        self.progress.start()
        self.notifier.start()
        if self.sweeper is not None:
            self.sweeper.start()
        return self

    def stop(self) -> None:
        """Stop starting work, let the reconciles under way finish, then close the warm pods'
        mailboxes. In that order: a reconcile that ran after the mailboxes closed made a
        one-shot Job (or a warm pod) on its way out, which the next leader, already
        placing the same MediaJob, raced with (seen in a rolling upgrade: the MediaJob
        never finished)."""
        self.metrics.detach()
        self.queue.close()
        if self.sweeper is not None:
            self.sweeper.stop()
        self.progress.stop()
        self.notifier.stop()
        for worker in self._workers:
            worker.join(timeout=30)
        self.pool.close_all()

    def _work(self) -> None:
        while True:
            key = self.queue.get(timeout=IDLE_TICK_SECONDS)
            if key is None:
                if self.queue.closed:
                    return
                self.metrics.reconciled()  # idle, and alive
                continue
            self._reconcile(key)
            self.metrics.reconciled()

    def _reconcile(self, key: Key) -> None:
        delay = None
        with logcontext.about(self.store.mediajob(key)):
            try:
                with self.metrics.handling("reconcile"):
                    requeue = self.reconciler.reconcile(key)
            except PoolClosedError:
                log.info("%s: not reconciled: the operator is stopping", key)
            except Exception as error:
                with self._lock:
                    failures = self.failures[key] = self.failures.get(key, 0) + 1
                delay = backoff(failures)
                detail = error.reason if isinstance(error, ApiException) else error
                log.warning("%s: reconcile failed (%s); again in %.1fs", key, detail, delay,
                            exc_info=not isinstance(error, ApiException))  # fmt: skip
            else:
                with self._lock:
                    self.failures.pop(key, None)
                    self.reconciles += 1
                delay = requeue.seconds if requeue else None
            finally:
                self.queue.done(key)
        if delay is not None:
            self.queue.add_after(key, delay)

    def health(self) -> dict[str, int]:
        """For the liveness probe's report: how much is known and waiting."""
        return {
            "mediajobs": len(self.store),
            "queued": len(self.queue),
            "scheduled": self.queue.delayed(),
            "workers": sum(w.is_alive() for w in self._workers),
            "progressReads": self.progress.reads,
            "warmPods": len(self.pool.sessions()),
            "webhooksQueued": len(self.notifier.queue) + self.notifier.queue.delayed(),
        }

    def sweep_orphans(self) -> int:
        """Delete the objects of served namespaces no MediaJob accounts for (see sweeper)."""
        gateway, settings = self.gateway, self.settings
        now, grace = datetime.now(UTC), timedelta(seconds=settings.orphan_grace_seconds)
        deleted = 0
        # Only prefixes named after namespaces that exist: a bucket shared with other data
        # (or a namespace's leftovers after it is gone) is never guessed at.
        existing = {ns.metadata.name for ns in gateway.core.list_namespace().items}
        with gateway.storage_call():
            names = gateway.storage.top_level_names()
        for namespace in names:
            if (
                namespace not in existing
                or not served(namespace, self.namespaces)
                or namespace_excluded(namespace, settings.excluded_namespace_patterns)
            ):
                continue
            # Objects first, MediaJobs second: a MediaJob created in between is seen.
            with gateway.storage_call():
                objects = [
                    StoredObject(key, modified)
                    for prefix in OWNED_PREFIXES
                    for key, modified in gateway.storage.objects_under(f"{namespace}/{prefix}")
                ]
            if not objects:
                continue
            try:
                items = gateway.custom.list_namespaced_custom_object(
                    c.GROUP, c.VERSION, namespace, c.PLURAL
                )["items"]
            except ApiException as error:  # e.g. no Role in a namespace matching a glob
                log.warning("orphan sweep: no MediaJobs of %s: %s", namespace, error.reason)
                continue
            keys = orphans(namespace, objects, LiveMediaJobs.from_items(items), now, grace)
            if keys:
                gateway.delete_objects(keys)
                log.info("orphan sweep: deleted %d objects of %s: %s", len(keys), namespace, keys)
                deleted += len(keys)
        return deleted + self.sweep_mailboxes(existing, now, grace)

    def sweep_mailboxes(self, namespaces: set[str], now: datetime, grace: timedelta) -> int:
        """Delete warm pods' mailboxes whose Job is gone (a crash left them)."""
        gateway = self.gateway
        with gateway.storage_call():
            objects = [
                StoredObject(key, modified)
                for key, modified in gateway.storage.objects_under(f"{SESSIONS_PREFIX}/")
                if key.split("/")[1] in namespaces and served(key.split("/")[1], self.namespaces)
            ]
        live = {(s.namespace, s.name) for s in self.pool.sessions()}
        for namespace, job in {tuple(o.key.split("/")[1:3]) for o in objects} - live:
            if gateway.read_job(namespace, job) is not None:
                live.add((namespace, job))
        keys = stale_mailboxes(objects, live, now, grace)
        if keys:
            gateway.delete_objects(keys)
            log.info("orphan sweep: deleted %d mailbox objects of ended warm pods", len(keys))
        return len(keys)
