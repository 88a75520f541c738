"""Warm pods: one owner's image MediaJobs, one pod, one item after another.

A pod per MediaJob costs about two seconds of scheduling, sandbox and interpreter start for a
conversion of a few hundredths of a second. A warm pod keeps the sandbox (the same Job pod,
restricted, no credentials, no token) and serves one owner, a namespace and, for the API's
MediaJobs, one user (`mediaflow.io/owner`): never two. Work reaches it through its mailbox
in object storage (mediaflow_core.session): the operator writes one slot per MediaJob, the pod
polls the next slot with a presigned URL the previous slot gave it. Outcomes come back on
the pod's log, which one thread per warm pod follows (no polling per item).

The pool decides where an item goes (`reserve`): a warm pod of its owner that still takes
work, or a new one within the bounds (per owner, in total); else None, and the MediaJob gets
a pod of its own, as without warm pods. It keeps what the reconciler asks about a warm pod:
the outcomes and starts its log said, and whether the pod has ended and its log has been read
to the end. A warm pod that ended without settling an item (it broke, hung, hit its lifetime,
or the operator restarted and lost track) lets the reconciler give that item a pod of its own.

State is in memory only. After a restart, warm pods are found again through the watch (their
Job's `mediaflow.io/session` label): their logs are followed again from the start, but they
get no new items; they end when idle.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mediaflow_core import constants as c
from mediaflow_core.mediajob import MediaJobSpec
from mediaflow_core.naming import item_result_prefix
from mediaflow_core.session import (
    EVENT_ITEM_START,
    EVENT_SESSION_END,
    ItemOutcome,
    Slot,
    SlotItem,
    parse_line,
    session_prefix,
    slot_key,
    slot_number,
)
from mediaflow_operator.builders import (
    URL_TTL_MARGIN_SECONDS,
    build_session_job,
    build_session_secret,
    session_deadline_seconds,
)
from mediaflow_operator.config import OperatorSettings
from mediaflow_operator.gateway import Gateway, GoneError
from mediaflow_operator.observed import JobView, Key, PodView

log = logging.getLogger(__name__)
# A warm pod this close to its idle end or lifetime gets no new item: it may be gone before
# it reads the slot (the item would then wait for the pod's end to be given a fresh one).
END_MARGIN_SECONDS = 5.0
# A warm pod that has not started this long after the scheduler or the kubelet said why it
# waits (no room on any node, its image) is ended: its items get pods of their own, whose
# status says why they wait. Shorter waits (a busy node freeing up) keep it: its items
# would wait as long in pods of their own.
START_GRACE_SECONDS = 20.0
SESSION_NAME_PREFIX = "mf-warm-"


@dataclass(frozen=True)
class Owner:
    """Whose files a warm pod may hold: one namespace, and one API user (or none)."""

    namespace: str
    user: str


def owner_of(body: dict[str, Any]) -> Owner:
    meta = body["metadata"]
    return Owner(meta["namespace"], (meta.get("labels") or {}).get(c.LABEL_OWNER, ""))


def warm_eligible(spec: MediaJobSpec, settings: OperatorSettings) -> bool:
    """Image operations with the class's default resources share warm pods; videos, and
    MediaJobs that ask for their own CPU or memory, get a pod each."""
    return (
        settings.warm_pods
        and settings.warm_pods_total > 0
        and not spec.operation.is_video
        and spec.resources is None
    )


def slot_url_ttl(settings: OperatorSettings) -> timedelta:
    """Slot URLs live as long as any warm pod could read them."""
    return timedelta(seconds=session_deadline_seconds(settings) + URL_TTL_MARGIN_SECONDS)


@dataclass
class Session:
    """One warm pod's Job, as the pool knows it."""

    namespace: str
    name: str
    owner: Owner
    born: float
    accepting: bool
    last_activity: float
    next_slot: int = 0
    queued: int = 0
    pod: str | None = None
    stuck: bool = False
    pod_ended: bool = False
    following: bool = False
    ended_line: bool = False
    drained: bool = False
    outcomes: dict[str, ItemOutcome] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    waiting: dict[str, Key] = field(default_factory=dict)
    unwanted: set[str] = field(default_factory=set)


def may_take(session: Session, settings: OperatorSettings, now: float) -> bool:
    """Does this warm pod take a new item now? (pure)"""
    if not session.accepting or session.drained or session.pod_ended or session.ended_line:
        return False
    if now - session.born > settings.warm_lifetime_seconds - END_MARGIN_SECONDS:
        return False
    if session.queued >= settings.warm_queue:
        return False
    idle_for = now - session.last_activity
    return session.queued > 0 or idle_for < settings.warm_idle_seconds - END_MARGIN_SECONDS


def live(session: Session) -> bool:
    return not session.drained


def _thread(target: Callable[..., None], *args: Any) -> None:
    threading.Thread(target=target, args=args, daemon=True).start()


class PoolClosedError(RuntimeError):
    """The operator is stopping: it places nothing in a warm pod, and makes none."""


class Pool:
    def __init__(
        self,
        gateway: Gateway,
        settings: OperatorSettings,
        enqueue: Callable[[Key], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gateway = gateway
        self.settings = settings
        self.enqueue = enqueue
        self.clock = clock
        # Reentrant: a warm pod's end (under the lock) may run its clean-up in line.
        self._lock = threading.RLock()
        self._sessions: dict[tuple[str, str], Session] = {}
        self._owner_locks: dict[Owner, threading.Lock] = {}
        # Warm pods being made: the watch may bring their Job before `_create` returns.
        self._creating: set[tuple[str, str]] = set()
        self.closed = False
        self.follow_retry_seconds = 0.3
        self.start_grace_seconds = START_GRACE_SECONDS
        # Runs a warm pod's log follower and its clean-up (a thread; unit tests call it in
        # line).
        self.spawn: Callable[..., None] = _thread

    # Placing items.

    def reserve(self, owner: Owner, key: Key, uid: str) -> tuple[str, int] | None:
        """A slot for MediaJob `uid` in a warm pod of `owner` (making the pod if the bounds
        allow): (Job name, slot). None: no warm pod for it now."""
        with self._lock:
            owner_lock = self._owner_locks.setdefault(owner, threading.Lock())
        # One owner's burst makes one pod, not one per reconcile thread.
        with owner_lock:
            with self._lock:
                self._check_open()
                taken = self._take(owner, key, uid)
                if taken is not None or not self._may_create(owner):
                    return taken
            self._create(owner)
            with self._lock:
                return self._take(owner, key, uid)

    def _check_open(self) -> None:
        """(Under the lock.) PoolClosedError once the operator stops: a MediaJob it placed or gave
        a pod now would be left to a successor that knows nothing of it (a one-shot Job made
        because the warm pods were closed, a warm pod nobody follows)."""
        if self.closed:
            raise PoolClosedError("the operator is stopping; the next leader places this MediaJob")

    def _take(self, owner: Owner, key: Key, uid: str) -> tuple[str, int] | None:
        session = self._pick(owner, 1)
        return None if session is None else self._take_in(session, key, uid)

    def _pick(self, owner: Owner, room: int) -> Session | None:
        now = self.clock()
        candidates = [
            s
            for s in self._sessions.values()
            if s.owner == owner
            and may_take(s, self.settings, now)
            and s.queued + room <= self.settings.warm_queue
        ]
        return min(candidates, key=lambda s: s.queued) if candidates else None

    def _take_in(self, session: Session, key: Key, uid: str) -> tuple[str, int]:
        slot = session.next_slot
        session.next_slot += 1
        session.queued += 1
        session.waiting[uid] = key
        # Placed again after a release (a write of the status that placed it lost a race and
        # its slots were emptied): its result is wanted again, not deleted when it comes.
        session.unwanted.discard(uid)
        return session.name, slot

    def reserve_many(
        self, owner: Owner, key: Key, ids: list[str], resources: Any = None
    ) -> list[tuple[str, int]]:
        """Slots for every input of a MediaJob with spec.inputs, all in one pod: a warm pod
        of the owner with room for them, or a new one. A new one is made even beyond the
        bounds (such a MediaJob needs a pod anyway, as a one-shot MediaJob does), and one
        for a MediaJob with its own resources (`resources`) serves that MediaJob alone."""
        with self._lock:
            owner_lock = self._owner_locks.setdefault(owner, threading.Lock())
        with owner_lock:
            with self._lock:
                self._check_open()
                session = None
                if resources is None and self.settings.warm_pods:
                    session = self._pick(owner, len(ids))
                if session is not None:
                    return [self._take_in(session, key, i) for i in ids]
                shared = resources is None and self.settings.warm_pods and self._may_create(owner)
            session = self._create(owner, resources=resources)
            with self._lock:
                taken = [self._take_in(session, key, i) for i in ids]
                session.accepting = shared  # a pod beyond the bounds, or of its own: no more
                return taken

    def _may_create(self, owner: Owner) -> bool:
        alive = [s for s in self._sessions.values() if live(s)]
        mine = [s for s in alive if s.owner == owner]
        return (
            len(mine) < self.settings.warm_pods_per_owner
            and len(alive) < self.settings.warm_pods_total
        )

    def _create(self, owner: Owner, resources: Any = None) -> Session:
        """Make a warm pod's Job and Secret; the session is registered before the Job's
        watch event can be taken for a pod made before a restart (which takes nothing)."""
        name = f"{SESSION_NAME_PREFIX}{os.urandom(5).hex()}"
        with self._lock:
            self._check_open()
            self._creating.add((owner.namespace, name))
        try:
            created = self.gateway.create_job(
                build_session_job(name, owner.namespace, owner.user, self.settings, resources)
            )
            url = self.gateway.pod_get_url(
                slot_key(owner.namespace, name, 0), slot_url_ttl(self.settings)
            )
            self.gateway.create_secret(build_session_secret(created, mailbox_url=url))
        except BaseException:
            with self._lock:
                self._creating.discard((owner.namespace, name))
            raise
        now = self.clock()
        session = Session(owner.namespace, name, owner, born=now, accepting=True,
                          last_activity=now)  # fmt: skip
        with self._lock:
            self._sessions[(owner.namespace, name)] = session
            self._creating.discard((owner.namespace, name))
        log.info("%s: warm pod Job %s made for %s", owner.namespace, name, owner.user or "-")
        return session

    def write_slot(self, namespace: str, job: str, slot: int, item: SlotItem | None) -> None:
        """Write slot `slot` of a warm pod's mailbox: its item (or none: revoked), and the
        URL of the next slot."""
        ttl = slot_url_ttl(self.settings)
        next_url = self.gateway.pod_get_url(slot_key(namespace, job, slot + 1), ttl)
        items = (item,) if item is not None else ()
        self.gateway.put_object(slot_key(namespace, job, slot), Slot(items, next_url).to_json())

    # What the reconciler asks.

    def state(self, namespace: str, job: str) -> str | None:
        """ "live", "ended" (its log read to the end), or None when unknown."""
        with self._lock:
            session = self._sessions.get((namespace, job))
            if session is None:
                return None
            return "ended" if session.drained else "live"

    def outcome(self, namespace: str, job: str, uid: str) -> ItemOutcome | None:
        with self._lock:
            session = self._sessions.get((namespace, job))
            return session.outcomes.get(uid) if session else None

    def has_started(self, namespace: str, job: str, uid: str) -> bool:
        with self._lock:
            session = self._sessions.get((namespace, job))
            return session is not None and uid in session.started

    def expect(self, namespace: str, job: str, uid: str, key: Key) -> None:
        """Call the reconciler for `key` when this item's news comes (after a restart the
        pool learns which MediaJob an item is from the MediaJob)."""
        with self._lock:
            session = self._sessions.get((namespace, job))
            if session is not None and uid not in session.waiting:
                session.waiting[uid] = key
                session.queued += 1

    def settled(self, namespace: str, job: str, uid: str) -> None:
        """The MediaJob's status holds the item's end: forget it."""
        with self._lock:
            session = self._sessions.get((namespace, job))
            if session is None or uid not in session.waiting:
                return
            del session.waiting[uid]
            session.queued = max(0, session.queued - 1)
            session.outcomes.pop(uid, None)
            self._maybe_forget(session)

    def release(self, namespace: str, job: str, uid: str) -> bool:
        """A cancelled or deleted MediaJob, or one input of it cancelled alone: its result,
        if the pod still makes one, is deleted when it is reported. True when the pod had
        not started it yet. Releasing an item twice (a reconcile repeated after a lost race)
        changes nothing more."""
        with self._lock:
            session = self._sessions.get((namespace, job))
            if session is None:
                return False
            if session.waiting.pop(uid, None) is not None:
                session.queued = max(0, session.queued - 1)
            session.outcomes.pop(uid, None)
            session.unwanted.add(uid)
            started = uid in session.started
            self._maybe_forget(session)
            return not started

    # What the watches say (handlers.py).

    def job_seen(self, body: dict[str, Any], deleted: bool) -> None:
        meta = body["metadata"]
        labels = meta.get("labels") or {}
        namespace, name = meta["namespace"], labels.get(c.LABEL_SESSION) or meta["name"]
        with self._lock:
            session = self._sessions.get((namespace, name))
            if session is None and (namespace, name) in self._creating:
                return  # ours, being made: registered when `_create` returns
            if session is None and not deleted:
                # Made before a restart (or by another replica): known, followed, given nothing.
                now = self.clock()
                owner = Owner(namespace, labels.get(c.LABEL_OWNER, ""))
                session = Session(namespace, name, owner, born=now, accepting=False,
                                  last_activity=now)  # fmt: skip
                self._sessions[(namespace, name)] = session
                log.info("%s: warm pod Job %s found; it takes no new items", namespace, name)
                if JobView.from_body(body).finished is None:  # its pod may still read
                    self.spawn(self._close_found, namespace, name)
            if session is None:
                return
            if deleted and not session.following:
                self._drained(session)

    def pod_seen(self, namespace: str, job: str, pod: PodView) -> None:
        start = give_up = False
        with self._lock:
            session = self._sessions.get((namespace, job))
            if session is None:
                return
            if pod.terminated is not None or pod.deleted or pod.phase in ("Succeeded", "Failed"):
                session.pod_ended = True
                session.accepting = False
            if (pod.unschedulable or pod.waiting) and not pod.started_at and not session.stuck:
                session.stuck = give_up = True
            if not session.following and (pod.started_at or session.pod_ended):
                session.following, session.pod, start = True, pod.name, True
            elif session.pod_ended and not session.following and not session.drained:
                self._drained(session)
        if start:
            self.spawn(self._follow, namespace, job, pod.name)
        if give_up:
            why = pod.unschedulable or (pod.waiting or ("", ""))[0]
            self.spawn(self._end_if_not_started, namespace, job, why)

    def _close_found(self, namespace: str, job: str) -> None:
        """A warm pod an earlier operator made: its mailbox is closed after what it holds, so
        that it converts that and ends at once, rather than idling out while it counts
        against its owner's warm pods (whose new work would go to one-shot pods meanwhile).
        A slot missing below the last one (that operator stopped between reserving a slot
        and writing it) is written empty, so the pod does not wait for it until it idles
        out; the MediaJob placed there gets a fresh pod when this one ends."""
        prefix = session_prefix(namespace, job)
        try:
            written = {slot_number(key, prefix) for key in self.gateway.object_keys(prefix)}
            written.discard(None)
            if not written:  # its mailbox is gone (it ended, and was cleaned up) or unused
                return
            last = max(written)
            with self._lock:
                session = self._sessions.get((namespace, job))
                if self.closed or session is None or session.pod_ended or session.drained:
                    return
                session.next_slot = last + 2
            for missing in sorted(set(range(last + 1)) - written):
                self.write_slot(namespace, job, missing, None)
            self.gateway.put_object(slot_key(namespace, job, last + 1), Slot((), "").to_json())
        except Exception as error:  # it idles out instead
            log.warning("%s: warm pod Job %s found, not closed: %s", namespace, job, error)
            return
        log.info("%s: warm pod Job %s found: closed after its slot %d", namespace, job, last)

    def _end_if_not_started(self, namespace: str, job: str, why: str) -> None:
        """START_GRACE_SECONDS after a warm pod was seen waiting: end it if it still has not
        started (its items then get pods of their own)."""
        time.sleep(self.start_grace_seconds)
        with self._lock:
            session = self._sessions.get((namespace, job))
            if session is None or session.following or session.drained:
                return
            session.accepting = False
        log.info("%s: warm pod Job %s has not started (%s); ending it", namespace, job, why)
        self.gateway.delete_job(namespace, job)

    # The log.

    def _follow(self, namespace: str, job: str, pod: str) -> None:
        """Read the warm pod's log from its start until it ends; every outcome and start
        calls the reconciler of its MediaJob."""
        while True:
            try:
                lines = self.gateway.follow_pod_log(namespace, pod)
                if lines is not None:
                    for line in lines:
                        self._line(namespace, job, line)
            except GoneError:
                break
            except Exception as error:  # a broken stream: read again from the start
                log.warning("%s/%s: warm pod log: %s; reading it again", namespace, pod, error)
            with self._lock:
                session = self._sessions.get((namespace, job))
                if session is None or session.ended_line or session.pod_ended:
                    break
            time.sleep(self.follow_retry_seconds)
        with self._lock:
            session = self._sessions.get((namespace, job))
            if session is not None:
                self._drained(session)

    def _line(self, namespace: str, job: str, line: str) -> None:
        parsed = parse_line(line)
        if parsed is None:
            return
        wake: Key | None = None
        delete: str | None = None
        with self._lock:
            session = self._sessions.get((namespace, job))
            if session is None:
                return
            session.last_activity = self.clock()
            if isinstance(parsed, ItemOutcome):
                if parsed.item in session.outcomes:
                    return  # read again after a broken stream
                session.outcomes[parsed.item] = parsed
                wake = session.waiting.get(parsed.item)
                if parsed.item in session.unwanted and parsed.result is not None:
                    delete = item_result_prefix(namespace, parsed.item)
            elif parsed[0] == EVENT_ITEM_START:
                if parsed[1] in session.started:
                    return
                session.started.add(parsed[1])
                wake = session.waiting.get(parsed[1])
            elif parsed[0] == EVENT_SESSION_END:
                session.ended_line = True
                session.accepting = False
        if wake is not None:
            self.enqueue(wake)
        if delete is not None:  # a cancelled item's late result
            self.gateway.delete_prefix(delete)

    def _drained(self, session: Session) -> None:
        """(Under the lock.) The pod's log holds nothing more: every item still waiting is
        settled by what it said, or goes to a fresh pod; the Job and mailbox go."""
        if session.drained:
            return
        session.drained = True
        session.accepting = False
        waiting = list(session.waiting.values())
        log.info("%s: warm pod Job %s ended; %d items waiting", session.namespace, session.name,
                 len(waiting))  # fmt: skip
        if self.closed:
            # Stopping: the outcomes its log holds are not in the MediaJobs' status yet. The
            # Job (and its log) stay for the next leader, which settles them, then deletes it.
            return
        self.spawn(self._clean_up, session, waiting)

    def _clean_up(self, session: Session, waiting: list[Key]) -> None:
        for key in waiting:
            self.enqueue(key)
        try:
            self.gateway.delete_job(session.namespace, session.name)
            self.gateway.delete_prefix(session_prefix(session.namespace, session.name))
        except Exception as error:
            log.warning("%s: warm pod Job %s: clean-up failed: %s", session.namespace,
                        session.name, error)  # fmt: skip
        with self._lock:
            self._maybe_forget(session)

    def _maybe_forget(self, session: Session) -> None:
        """(Under the lock.) An ended warm pod is forgotten once no MediaJob waits on it."""
        if session.drained and not session.waiting:
            self._sessions.pop((session.namespace, session.name), None)

    def close_all(self) -> None:
        """An operator shutting down closes its warm pods' mailboxes after what they hold (an
        empty slot with no next URL): they finish their items and end at once, instead of
        waiting out their idle time with no operator to give them work or to delete them."""
        with self._lock:
            self.closed = True
            closing = []
            for session in self._sessions.values():
                if session.accepting and not session.drained:
                    session.accepting = False
                    closing.append((session.namespace, session.name, session.next_slot))
                    session.next_slot += 1
        for namespace, job, slot in closing:
            try:
                self.gateway.put_object(slot_key(namespace, job, slot), Slot((), "").to_json())
            except Exception as error:
                log.warning("%s: warm pod Job %s not closed: %s", namespace, job, error)

    def sessions(self) -> list[Session]:
        with self._lock:
            return list(self._sessions.values())
