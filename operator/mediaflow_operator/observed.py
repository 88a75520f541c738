"""What the operator knows of the cluster: compact views of Jobs and pods, and the store the
watch events keep current (the informer cache of controller-runtime, in small).

Every MediaJob, Job and pod event that Kopf's watches deliver lands here (handlers.py); the
reconciler reads from here instead of asking the API server. Views keep only what decisions
need, so 5,000 MediaJobs cost little memory. A Job or pod that was deleted leaves a tombstone
(its last state, marked deleted) until its MediaJob is forgotten: a pod garbage-collected
right after it ended still says how it ended.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from mediaflow_core import constants as c

WORKER_CONTAINER = "worker"


@dataclass(frozen=True)
class Key:
    """A MediaJob's namespace and name: the unit of work of the reconciler."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Terminated:
    """The worker container's terminated state."""

    exit_code: int | None
    reason: str
    message: str | None
    started_at: str | None
    finished_at: str | None


@dataclass(frozen=True)
class PodView:
    """What the reconciler needs of one worker pod."""

    name: str
    created: str
    phase: str
    # The scheduler's verdict while the pod waits for a node (PodScheduled=False).
    unschedulable: str | None = None
    # Why the container is not running yet (ErrImagePull, CreateContainerConfigError, ...).
    waiting: tuple[str, str] | None = None
    started_at: str | None = None
    terminated: Terminated | None = None
    deleted: bool = False

    @classmethod
    def from_body(cls, pod: dict[str, Any]) -> PodView:
        meta, status = pod["metadata"], pod.get("status") or {}
        unschedulable = next(
            (
                x.get("message") or x.get("reason") or "Unschedulable"
                for x in status.get("conditions") or []
                if x.get("type") == "PodScheduled"
                and x.get("status") == "False"
                and x.get("reason") == "Unschedulable"
            ),
            None,
        )
        waiting = started = terminated = None
        for container in status.get("containerStatuses") or []:
            if container.get("name") != WORKER_CONTAINER:
                continue
            state = container.get("state") or {}
            if state.get("waiting"):
                reason = state["waiting"].get("reason") or ""
                if reason not in ("ContainerCreating", "PodInitializing"):
                    waiting = (reason, state["waiting"].get("message") or "")
            running = state.get("running")
            ended = state.get("terminated") or (container.get("lastState") or {}).get("terminated")
            started = (running or ended or {}).get("startedAt")
            if ended:
                terminated = Terminated(
                    exit_code=ended.get("exitCode"),
                    reason=ended.get("reason") or "",
                    message=ended.get("message"),
                    started_at=ended.get("startedAt"),
                    finished_at=ended.get("finishedAt"),
                )
        return cls(
            name=meta["name"],
            created=meta.get("creationTimestamp") or "",
            phase=status.get("phase") or "Pending",
            unschedulable=unschedulable,
            waiting=waiting,
            started_at=started,
            terminated=terminated,
        )


@dataclass(frozen=True)
class JobView:
    """What the reconciler needs of a MediaJob's Job."""

    name: str
    uid: str
    owner_uids: tuple[str, ...]
    # "Complete" or "Failed" once the Job controller says so, with its reason.
    finished: str | None = None
    finished_reason: str = ""
    deadline_seconds: int | None = None
    deleted: bool = False
    finished_at: str | None = None

    @classmethod
    def from_body(cls, job: dict[str, Any]) -> JobView:
        meta, status = job["metadata"], job.get("status") or {}
        finished = next(
            (
                x
                for x in status.get("conditions") or []
                if x.get("type") in ("Complete", "Failed") and x.get("status") == "True"
            ),
            None,
        )
        return cls(
            name=meta["name"],
            uid=meta.get("uid") or "",
            owner_uids=tuple(o.get("uid", "") for o in meta.get("ownerReferences") or []),
            finished=finished["type"] if finished else None,
            finished_reason=(finished or {}).get("reason") or "",
            deadline_seconds=(job.get("spec") or {}).get("activeDeadlineSeconds"),
            finished_at=(finished or {}).get("lastTransitionTime"),
        )


def mediajob_of(body: dict[str, Any]) -> Key | None:
    """The MediaJob a Job or pod was made for (its label), if it is ours."""
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(c.LABEL_MANAGED_BY) != c.MANAGED_BY or not labels.get(c.LABEL_MEDIAJOB):
        return None
    return Key(meta.get("namespace") or "", labels[c.LABEL_MEDIAJOB])


def session_of(body: dict[str, Any]) -> str | None:
    """The warm pod's Job a Job or pod is (its `mediaflow.io/session` label), if it is ours."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    if labels.get(c.LABEL_MANAGED_BY) != c.MANAGED_BY:
        return None
    return labels.get(c.LABEL_SESSION) or None


KEPT_ANNOTATIONS = (c.ANNOTATION_CANCEL, c.ANNOTATION_DELETE_INPUT, c.ANNOTATION_REQUEST_ID)


def kept_annotation(name: str) -> bool:
    """An annotation the reconciler reads: cancel, delete-input, and the cancel of one input
    (`mediaflow.io/cancel-item-<index>`, naming.cancelled_items)."""
    return name in KEPT_ANNOTATIONS or name.startswith(c.ANNOTATION_CANCEL_ITEM_PREFIX)


def slim(body: dict[str, Any]) -> dict[str, Any]:
    """A MediaJob as the store keeps it: without managedFields and the annotations nobody
    here reads (Kopf's old bookkeeping held a whole copy of the spec), a quarter of the
    memory of the object as the watch delivers it."""
    meta = {k: v for k, v in body.get("metadata", {}).items() if k != "managedFields"}
    if "annotations" in meta:
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if kept_annotation(k)}
    return {
        "apiVersion": body.get("apiVersion", c.API_VERSION),
        "kind": body.get("kind", c.KIND),
        "metadata": meta,
        "spec": body.get("spec") or {},
        "status": body.get("status") or {},
    }


def running_video(body: dict[str, Any]) -> bool:
    """A Running video MediaJob: one whose pod's log says its progress."""
    return (body.get("status") or {}).get("phase") == "Running" and str(
        (body.get("spec") or {}).get("operation", "")
    ).startswith("Video")


def newer_or_same(stored: dict[str, Any] | None, incoming: dict[str, Any]) -> bool:
    """Should `incoming` replace `stored`? Not when it is older: the operator stores its own
    writes' responses at once, and the watch may deliver an older version after them.
    resourceVersions are opaque; when both are the integers etcd gives, they are compared."""
    if stored is None:
        return True
    old = stored.get("metadata", {}).get("resourceVersion", "")
    new = incoming.get("metadata", {}).get("resourceVersion", "")
    if old.isdigit() and new.isdigit():
        return int(new) >= int(old)
    return True


@dataclass
class _Entry:
    mediajob: dict[str, Any] | None = None
    job: JobView | None = None
    pods: dict[str, PodView] = field(default_factory=dict)
    # Jobs the reconciler deleted: late events of theirs must not bring them back.
    released: frozenset[str] = frozenset()


def _finished(entry: _Entry) -> bool:
    phase = ((entry.mediajob or {}).get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Cancelled")


class Store:
    """The watched state by MediaJob, shared by Kopf's event handlers (the event loop) and the
    reconciler's threads; every method holds one lock briefly."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Key, _Entry] = {}
        self._videos: set[Key] = set()  # running video MediaJobs, for the progress reader

    def _entry(self, key: Key) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        return entry

    def put_mediajob(self, body: dict[str, Any]) -> Key:
        key = Key(body["metadata"]["namespace"], body["metadata"]["name"])
        body = slim(body)
        with self._lock:
            entry = self._entry(key)
            if newer_or_same(entry.mediajob, body):
                entry.mediajob = body
                if running_video(body):
                    self._videos.add(key)
                else:
                    self._videos.discard(key)
        return key

    def forget_mediajob(self, key: Key, uid: str | None = None) -> None:
        """The MediaJob is gone: drop it and its tombstones (not a newer one of that name)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            current = (entry.mediajob or {}).get("metadata", {}).get("uid")
            if uid is None or current in (None, uid):
                del self._entries[key]
                self._videos.discard(key)

    def put_job(self, key: Key, job: JobView) -> None:
        with self._lock:
            entry = self._entry(key)
            if job.uid not in entry.released:
                entry.job = job

    def job_deleted(self, key: Key, uid: str) -> None:
        """A tombstone while its MediaJob is active; nothing once the MediaJob finished."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.job is not None and entry.job.uid == uid:
                entry.job = None if _finished(entry) else replace(entry.job, deleted=True)

    def put_pod(self, key: Key, pod: PodView) -> None:
        with self._lock:
            entry = self._entry(key)
            if not _finished(entry):  # a finished MediaJob's pods decide nothing more
                entry.pods = {**entry.pods, pod.name: pod}

    def pod_deleted(self, key: Key, name: str) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and name in entry.pods:
                if _finished(entry):
                    entry.pods = {k: v for k, v in entry.pods.items() if k != name}
                else:
                    entry.pods = {**entry.pods, name: replace(entry.pods[name], deleted=True)}

    def mediajob(self, key: Key) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            return entry.mediajob if entry else None

    def job(self, key: Key) -> JobView | None:
        with self._lock:
            entry = self._entries.get(key)
            return entry.job if entry else None

    def pods(self, key: Key) -> tuple[PodView, ...]:
        with self._lock:
            entry = self._entries.get(key)
            return tuple(entry.pods.values()) if entry else ()

    def clear_owned(self, key: Key) -> None:
        """Forget the Job and pods of a finished MediaJob (they are being deleted)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                if entry.job is not None:
                    entry.released = entry.released | {entry.job.uid}
                entry.job, entry.pods = None, {}

    def running_videos(self) -> dict[Key, dict[str, Any]]:
        with self._lock:
            return {
                k: e.mediajob
                for k in self._videos
                if (e := self._entries.get(k)) is not None and e.mediajob is not None
            }

    def mediajobs(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e.mediajob for e in self._entries.values() if e.mediajob is not None]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
