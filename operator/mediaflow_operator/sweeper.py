"""The orphan sweep: objects of served namespaces that no MediaJob accounts for are deleted.

MediaJobs own two kinds of objects: their results (`<ns>/results/<uid>/`, deleted by the
finalizer) and, for API uploads, their inputs (`<ns>/uploads/<job id>/input`, or each file of a
batch request `<ns>/uploads/<MediaJob name>/<job id>/input` in spec.inputs, deleted with the
MediaJob). Both can outlive their MediaJob: the API can die between storing an upload and
creating its MediaJob, a worker's PUT can land after the finalizer emptied the prefix, and a
finalizer can be removed by hand. The sweep deletes such objects once they are older than a
grace period (long beside the milliseconds between an upload's last byte and its MediaJob).
Only the `uploads/` and `results/` prefixes of namespaces this operator serves are touched:
whatever else is in the bucket (kubectl users' inputs, other operators' namespaces) is not ours.
The warm pods' mailboxes (`_sessions/<ns>/<job>/`) of served namespaces whose Job is gone go
too (`stale_mailboxes`).

Uploads in progress. A batch upload stores each file as it arrives and creates the MediaJobs
only once the whole body is in, so a slow batch's first files have no MediaJob for as long as
the rest takes, which no grace period bounds. The API therefore writes a marker object
`<ns>/uploads/<job id>/in-progress` (the names are in mediaflow_core.naming) before it stores
anything under `<ns>/uploads/<job id>/`, rewrites it every `UPLOAD_MARKER_REFRESH` while its
request is in progress, and deletes it once the MediaJobs exist (or the request failed and its
objects are deleted). Everything under a prefix whose marker is younger than
`UPLOAD_MARKER_TTL` is spared, the marker included. A marker left by an API that died stops
being refreshed, ages out, and then it and what it covered are orphans like any other object.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatch
from typing import Any

from mediaflow_core.naming import (
    RESULTS,
    UPLOAD_MARKER,
    UPLOAD_MARKER_TTL,
    UPLOADS,
    upload_prefix_of_key,
)
from mediaflow_core.session import SESSIONS_PREFIX

log = logging.getLogger(__name__)

OWNED_PREFIXES = (f"{UPLOADS}/", f"{RESULTS}/")


@dataclass(frozen=True)
class StoredObject:
    key: str
    last_modified: datetime


@dataclass(frozen=True)
class LiveMediaJobs:
    """What a namespace's MediaJobs account for."""

    uids: frozenset[str]
    input_keys: frozenset[str]

    @classmethod
    def from_items(cls, items: Iterable[dict[str, Any]]) -> LiveMediaJobs:
        uids, keys = set(), set()
        for item in items:
            uids.add(item["metadata"]["uid"])
            spec = item.get("spec") or {}
            # spec.input, or each of spec.inputs (a batch request's uploads, one per file).
            for source in [spec.get("input"), *(spec.get("inputs") or [])]:
                key = ((source or {}).get("object") or {}).get("key")
                if key:
                    keys.add(key)
        return cls(frozenset(uids), frozenset(keys))


def served(namespace: str, patterns: Sequence[str]) -> bool:
    """Does an operator watching `patterns` (Kopf globs; none: every namespace) serve it?"""
    return not patterns or any(fnmatch(namespace, pattern) for pattern in patterns)


def uploads_in_progress(objects: Iterable[StoredObject], now: datetime) -> set[str]:
    """The `<ns>/uploads/<id>/` prefixes whose marker is fresh: an upload still stores there."""
    return {
        obj.key.removesuffix(UPLOAD_MARKER)
        for obj in objects
        if obj.key.endswith(f"/{UPLOAD_MARKER}")
        and upload_prefix_of_key(obj.key) == obj.key.removesuffix(UPLOAD_MARKER)
        and now - obj.last_modified < UPLOAD_MARKER_TTL
    }


def orphans(
    namespace: str,
    objects: Iterable[StoredObject],
    live: LiveMediaJobs,
    now: datetime,
    grace: timedelta,
) -> list[str]:
    """Keys under `<namespace>/uploads/` and `<namespace>/results/` that no MediaJob accounts
    for, that are older than `grace` and that no upload in progress covers."""
    objects = list(objects)
    in_progress = uploads_in_progress(objects, now)
    found = []
    for obj in objects:
        rest = obj.key.removeprefix(f"{namespace}/")
        if rest == obj.key or now - obj.last_modified < grace:
            continue
        if rest.startswith("results/"):
            uid = rest.removeprefix("results/").split("/", 1)[0]
            if uid not in live.uids:
                found.append(obj.key)
        elif (
            rest.startswith("uploads/")
            and obj.key not in live.input_keys
            and upload_prefix_of_key(obj.key) not in in_progress
        ):
            found.append(obj.key)
    return found


def stale_mailboxes(
    objects: Iterable[StoredObject], live_jobs: set[tuple[str, str]], now: datetime,
    grace: timedelta,
) -> list[str]:  # fmt: skip
    """Keys of warm pods' mailboxes (`_sessions/<namespace>/<job>/...`) whose Job is not
    live and whose newest slot is older than the grace period: the operator deletes a
    mailbox when its pod ends; these are what a crash or a restart left."""
    groups: dict[tuple[str, str], list[StoredObject]] = {}
    for obj in objects:
        parts = obj.key.split("/")
        if len(parts) == 4 and parts[0] == SESSIONS_PREFIX:
            groups.setdefault((parts[1], parts[2]), []).append(obj)
    return [
        obj.key
        for job, members in groups.items()
        if job not in live_jobs and now - max(o.last_modified for o in members) > grace
        for obj in members
    ]


class Sweeper:
    """Runs `sweep_once` at start and then every `interval`, in a thread, until `stop`."""

    def __init__(self, sweep_once: Any, interval: float) -> None:
        self._sweep_once = sweep_once
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="orphan-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self._sweep_once()
            except Exception:  # the next round tries again; the operator keeps running
                log.exception("the orphan sweep failed")
            self._stopped.wait(self._interval)
