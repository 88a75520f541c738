"""Kopf handlers: thin. Kopf watches MediaJobs, their Jobs and their pods; every event puts
the object into the store (observed.py) and the MediaJob's key on the work queue; the
reconciler's threads (runtime.py, reconciler.py) do the rest.

No Kopf handler state is kept on the objects: no Kopf finalizer, no progress or
last-handled-configuration annotations. The operator's own finalizer (`mediaflow.io/cleanup`)
is added and removed by the reconciler. Status is written through the status subresource.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import kopf

from mediaflow_core import constants as c
from mediaflow_operator import stopping
from mediaflow_operator.config import OperatorSettings
from mediaflow_operator.metrics import METRICS
from mediaflow_operator.observed import JobView, Key, PodView, mediajob_of, session_of
from mediaflow_operator.runtime import Runtime

RESOURCE = (c.GROUP, c.VERSION, c.PLURAL)
OURS = f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"
log = logging.getLogger(__name__)


@kopf.on.startup()
def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    if stopping.requested.is_set():
        # SIGTERM came after the last look before kopf.run and before Kopf's own handler:
        # start nothing (the operator exits, its Lease released).
        raise kopf.PermanentError("SIGTERM before the operator started")
    # Jobs and pods: only ours, selected by the API server, not after the fact.
    settings.watching.label_selectors["batch", "jobs"] = OURS
    settings.watching.label_selectors["", "pods"] = OURS
    # Users see the Events the reconciler posts on purpose, not Kopf's handler log lines.
    settings.posting.enabled = False
    # Nor does the log get a line per watch event ("Handler 'pod_event' succeeded."): three
    # to six per MediaJob, a measurable share of the operator's CPU at thousands of them.
    # The reconciler logs what it does; Kopf's warnings and errors still show.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    memo.runtime = Runtime(OperatorSettings(), memo.get("namespaces") or ()).start()


@kopf.on.cleanup()
def stop(memo: kopf.Memo, **_: Any) -> None:
    if memo.get("runtime") is not None:
        memo.runtime.stop()


@kopf.on.probe(id="reconciler")
def reconciler_health(memo: kopf.Memo, **_: Any) -> dict[str, int]:
    return memo.runtime.health()


@kopf.on.event(*RESOURCE)
async def mediajob_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    with METRICS.handling("mediajob_event"):
        _mediajob_event(event, memo.runtime)


def _mediajob_event(event: kopf.RawEvent, runtime: Runtime) -> None:
    body = event["object"]
    meta = body["metadata"]
    if event["type"] == "DELETED":
        runtime.store.forget_mediajob(Key(meta["namespace"], meta["name"]), meta.get("uid"))
        return
    runtime.queue.add(runtime.store.put_mediajob(body))


@kopf.on.event("batch", "v1", "jobs")
async def job_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    with METRICS.handling("job_event"):
        _job_event(event, memo.runtime)


def _job_event(event: kopf.RawEvent, runtime: Runtime) -> None:
    body = event["object"]
    if session_of(body) is not None:  # a warm pod's Job
        deleted = event["type"] == "DELETED" or bool(body["metadata"].get("deletionTimestamp"))
        runtime.pool.job_seen(body, deleted=deleted)
        return
    key = mediajob_of(body)
    if key is None:
        return
    if event["type"] == "DELETED" or body["metadata"].get("deletionTimestamp"):
        runtime.store.job_deleted(key, body["metadata"].get("uid", ""))
    else:
        runtime.store.put_job(key, JobView.from_body(body))
    runtime.queue.add(key)


@kopf.on.event("", "v1", "pods")
async def pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    with METRICS.handling("pod_event"):
        _pod_event(event, memo.runtime)


def _pod_event(event: kopf.RawEvent, runtime: Runtime) -> None:
    body = event["object"]
    session = session_of(body)
    if session is not None:  # a warm pod
        pod = PodView.from_body(body)
        if event["type"] == "DELETED":
            pod = replace(pod, deleted=True)
        runtime.pool.pod_seen(body["metadata"]["namespace"], session, pod)
        return
    key = mediajob_of(body)
    if key is None:
        return
    if event["type"] == "DELETED":
        runtime.store.pod_deleted(key, body["metadata"]["name"])
        return  # its last state was stored with the event before; nothing new to decide
    runtime.store.put_pod(key, PodView.from_body(body))
    runtime.queue.add(key)
