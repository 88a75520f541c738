"""Leader election on a coordination.k8s.io/v1 Lease, taken before Kopf starts.

Two or more operator replicas run; only the holder of the Lease runs Kopf, so only it handles
MediaJobs. A standby never starts Kopf at all (it only answers the liveness probe), which is
simpler to reason about than Kopf's peering, where every replica runs and pauses itself.

The rules are client-go's (k8s.io/client-go/tools/leaderelection):
- A candidate reads the Lease every `retry_period`. It may take it when there is none, when
  its holder is empty (released), or when the record has not changed for `lease_duration` as
  measured on the candidate's own monotonic clock from when it first saw that record. The
  `renewTime` written by another node is never compared with this node's clock, so clock
  skew between nodes cannot make a live Lease look expired.
- Every write (create, or replace with the resourceVersion just read) is a compare-and-swap:
  of two candidates that both saw an expired Lease, the API server accepts one and answers
  409 Conflict to the other, which reads again and waits.
- The leader renews every `retry_period`. If no renewal succeeded within `renew_deadline` of
  the start of the last successful one, it exits at once (os._exit). Since renew_deadline <
  lease_duration, it stops before any standby may take over, so two replicas never both
  handle MediaJobs (it relies on clocks running at the same rate, not on them agreeing).
- On a graceful stop the leader releases the Lease (empty holder, leaseDurationSeconds 1), so
  a standby takes it at its next read instead of waiting for the Lease to expire.

`kubernetes.leaderelection` in the pinned client (37.0.2) was considered and not used: its
calls have no request timeout (a hung renewal blocks the loop past the renew deadline, with the
leader still working), it cannot release the Lease on shutdown, it keeps no leaseTransitions,
it reads wall-clock time, and it logs every retry at info level.

`decide` and `observe` are the decisions (pure, unit-tested); `LeaseStore` and `Elector` are
the thin I/O around them.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from mediaflow_operator import stopping

if TYPE_CHECKING:
    from mediaflow_operator.config import LeaderElectionSettings

log = logging.getLogger(__name__)

# Exit code of a leader that could not renew its Lease in time (the Deployment restarts it,
# and it comes back as a standby).
LOST_EXIT_CODE = 3


@dataclass(frozen=True)
class Timing:
    """client-go's three durations, in seconds."""

    lease_duration: float
    renew_deadline: float
    retry_period: float

    def __post_init__(self) -> None:
        # The leader must give up (renew_deadline) before a standby may take over
        # (lease_duration), and must get more than one renewal attempt within the deadline.
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError(
                "leader election needs lease duration > renew deadline > retry period > 0, got "
                f"{self.lease_duration}/{self.renew_deadline}/{self.retry_period}"
            )


@dataclass(frozen=True)
class LeaseRecord:
    """The spec of the Lease; holder "" means nobody holds it (released)."""

    holder: str
    lease_duration_seconds: int
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0


@dataclass(frozen=True)
class Observation:
    """A record as last read, and when (this process's monotonic clock) it was first seen."""

    record: LeaseRecord | None
    observed_at: float


class Action(StrEnum):
    ACQUIRE = "acquire"  # write `record` (create if there is no Lease, else replace)
    RENEW = "renew"  # write `record`: still ours, with a new renewTime
    WAIT = "wait"  # held by someone else and not expired: read again after retry_period


@dataclass(frozen=True)
class Decision:
    action: Action
    record: LeaseRecord | None = None


def observe(previous: Observation | None, record: LeaseRecord | None, now: float) -> Observation:
    """The observation after reading `record` at `now`: its clock restarts whenever the record
    changed (a renewal by the holder, a new holder), and only then."""
    if previous is not None and previous.record == record:
        return previous
    return Observation(record, now)


def decide(
    observation: Observation, identity: str, *, now: float, wall_now: datetime, timing: Timing
) -> Decision:
    """What a candidate or leader `identity` does with the Lease it just read.

    `now` is the monotonic clock (compared with `observation.observed_at` only), `wall_now` the
    time written into the record for people and other tools.
    """
    current = observation.record
    duration = math.ceil(timing.lease_duration)
    if current is None:
        return Decision(Action.ACQUIRE, LeaseRecord(identity, duration, wall_now, wall_now, 0))
    if current.holder == identity:
        return Decision(Action.RENEW, replace(current, renew_time=wall_now))
    if current.holder and now < observation.observed_at + timing.lease_duration:
        return Decision(Action.WAIT)
    return Decision(
        Action.ACQUIRE,
        LeaseRecord(identity, duration, wall_now, wall_now, current.transitions + 1),
    )


def released(record: LeaseRecord, wall_now: datetime) -> LeaseRecord:
    """The record a leader writes on a graceful stop: nobody holds it, so a standby takes it
    at its next read (leaseDurationSeconds 1 for other tools that look at the record)."""
    return replace(record, holder="", lease_duration_seconds=1, renew_time=wall_now)


# The I/O around the decisions.


def _record(lease: client.V1Lease) -> LeaseRecord:
    spec = lease.spec or client.V1LeaseSpec()
    return LeaseRecord(
        holder=spec.holder_identity or "",
        lease_duration_seconds=spec.lease_duration_seconds or 0,
        acquire_time=spec.acquire_time,
        renew_time=spec.renew_time,
        transitions=spec.lease_transitions or 0,
    )


def _spec(record: LeaseRecord) -> client.V1LeaseSpec:
    return client.V1LeaseSpec(
        holder_identity=record.holder or None,
        lease_duration_seconds=record.lease_duration_seconds,
        acquire_time=record.acquire_time,
        renew_time=record.renew_time,
        lease_transitions=record.transitions,
    )


class LeaseStore:
    """Reads and compare-and-swap writes of one Lease. Every call has a timeout, so that a
    hung connection cannot keep the leader from noticing its deadline."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str, timeout: float):
        self.leases = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = name
        self.timeout = timeout
        self.lease: client.V1Lease | None = None  # as last read or written

    def read(self) -> LeaseRecord | None:
        try:
            self.lease = self.leases.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.timeout
            )
        except ApiException as error:
            if error.status != 404:
                raise
            self.lease = None
            return None
        return _record(self.lease)

    def write(self, record: LeaseRecord) -> bool:
        """Create the Lease, or replace the one last read (its resourceVersion is the
        precondition); False when another writer got there first (409)."""
        try:
            if self.lease is None:
                body = client.V1Lease(
                    metadata=client.V1ObjectMeta(name=self.name), spec=_spec(record)
                )
                self.lease = self.leases.create_namespaced_lease(
                    self.namespace, body, _request_timeout=self.timeout
                )
            else:
                body = client.V1Lease(
                    metadata=client.V1ObjectMeta(
                        name=self.name, resource_version=self.lease.metadata.resource_version
                    ),
                    spec=_spec(record),
                )
                self.lease = self.leases.replace_namespaced_lease(
                    self.name, self.namespace, body, _request_timeout=self.timeout
                )
        except ApiException as error:
            if error.status == 409:  # a lost race (replace), or created meanwhile (create)
                return False
            raise
        return True


class StandbyHealth:
    """`GET /healthz` on the liveness port while Kopf (which serves it later) is not running:
    a standby is alive, and the probe must not restart it."""

    def __init__(self, port: int) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = 200 if self.path.split("?")[0] == "/healthz" else 404
                body = b'{"standby": true}\n' if status == 200 else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:  # the probe every few seconds is noise
                pass

        self.server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="standby-healthz", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and free the port for Kopf's own endpoint."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def _exit_lost(reason: str) -> None:
    log.critical("leader election: lost the Lease (%s); exiting", reason)
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    os._exit(LOST_EXIT_CODE)


class Elector:
    """One candidate: `acquire` blocks until it leads, then `start_renewing` keeps the Lease
    (or ends the process), and `release` hands it over on a graceful stop."""

    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        timing: Timing,
        withdrawn: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.identity = identity
        self.timing = timing
        self.observation: Observation | None = None
        self.valid_until = 0.0  # monotonic; past it without a renewal, the process exits
        self.stopping = threading.Event()
        # Set by SIGTERM before Kopf runs (stopping.py): a candidate told to stop never leads.
        self.withdrawn = withdrawn or threading.Event()
        self.threads: list[threading.Thread] = []

    def attempt(self) -> Action:
        """Read, decide, write once: the action taken if it succeeded, else WAIT."""
        started = time.monotonic()
        record = self.store.read()
        self.observation = observe(self.observation, record, time.monotonic())
        decision = decide(
            self.observation,
            self.identity,
            now=time.monotonic(),
            wall_now=datetime.now(UTC),
            timing=self.timing,
        )
        if decision.action is Action.WAIT or decision.record is None:
            return Action.WAIT
        if not self.store.write(decision.record):
            log.info("leader election: lost a race for the Lease; reading it again")
            return Action.WAIT
        self.observation = Observation(decision.record, time.monotonic())
        # Measured from before the read: the Lease the others see is at least this fresh.
        self.valid_until = started + self.timing.renew_deadline
        return decision.action

    def acquire(self) -> bool:
        """Block until this candidate leads (True), or until it is withdrawn (False)."""
        log.info(
            "leader election: %s is a candidate for Lease %s/%s",
            self.identity,
            self.store.namespace,
            self.store.name,
        )
        holder = None
        while True:
            if self.withdrawn.is_set():
                log.info("leader election: %s withdrawn (stopping) as a standby", self.identity)
                return False
            try:
                action = self.attempt()
            except Exception as error:  # the API server unreachable: a standby just retries
                log.warning("leader election: reading the Lease failed: %s", error)
                action = Action.WAIT
            if action is Action.ACQUIRE:
                log.info("leader election: %s acquired the Lease", self.identity)
                return True
            current = self.observation.record if self.observation else None
            if current is not None and current.holder != holder:
                holder = current.holder
                log.info("leader election: standby; the Lease is held by %r", holder)
            self.withdrawn.wait(self.timing.retry_period)

    def start_renewing(self) -> None:
        for target, name in ((self._renew, "lease-renew"), (self._watchdog, "lease-watchdog")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def _renew(self) -> None:
        while not self.stopping.wait(self.timing.retry_period):
            try:
                action = self.attempt()
            except Exception as error:  # retried until the deadline; the watchdog ends it
                log.warning("leader election: renewing the Lease failed: %s", error)
                continue
            if action is Action.WAIT and self.observation is not None:
                current = self.observation.record
                if current is not None and current.holder != self.identity:
                    _exit_lost(f"now held by {current.holder!r}")

    def _watchdog(self) -> None:
        # Separate from the renewal thread, so that a renewal stuck in a call still ends the
        # process on time.
        tick = min(0.25, self.timing.retry_period / 4)
        while not self.stopping.is_set():
            if time.monotonic() > self.valid_until:
                _exit_lost(f"not renewed within {self.timing.renew_deadline} s")
            time.sleep(tick)

    def release(self) -> None:
        """Stop renewing and give the Lease up, if it is still ours (best effort: a Lease not
        released expires after lease_duration anyway)."""
        self.stopping.set()
        for thread in self.threads:
            thread.join()
        try:
            record = self.store.read()
            mine = record is not None and record.holder == self.identity
            if mine and self.store.write(released(record, datetime.now(UTC))):
                log.info("leader election: released the Lease")
        except Exception as error:
            log.warning("leader election: releasing the Lease failed: %s", error)


def _api_client() -> client.ApiClient:
    configuration = client.Configuration()
    try:
        kube_config.load_incluster_config(client_configuration=configuration)
    except kube_config.ConfigException:
        kube_config.load_kube_config(client_configuration=configuration)
    return client.ApiClient(configuration)


SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def identity() -> str:
    """The pod's name (POD_NAME from the downward API; the host name outside a pod) and a
    random suffix: a restarted container is a new candidate, never taken for the old one."""
    base = os.environ.get("POD_NAME") or os.uname().nodename
    return f"{base}-{os.urandom(3).hex()}"


def lease_namespace(configured: str) -> str:
    if configured:
        return configured
    try:
        return Path(SERVICE_ACCOUNT_NAMESPACE).read_text().strip()
    except OSError:
        raise RuntimeError(
            "MEDIAFLOW_LEADER_ELECTION_NAMESPACE is not set and this is not a pod"
        ) from None


def lead(settings: LeaderElectionSettings, liveness_port: int) -> Elector | None:
    """Block as a standby until this process holds the Lease (answering the liveness probe
    meanwhile), then keep renewing it in the background. None: SIGTERM came first (the
    process ends without having led)."""
    timing = Timing(
        settings.lease_duration_seconds,
        settings.renew_deadline_seconds,
        settings.retry_period_seconds,
    )
    store = LeaseStore(
        _api_client(),
        lease_namespace(settings.namespace),
        settings.lease_name,
        # A call may take at most one retry period: the deadline stays checkable.
        timeout=timing.retry_period,
    )
    # A SIGTERM (stopping.py) withdraws the candidate: it never leads.
    elector = Elector(store, identity(), timing, withdrawn=stopping.requested)
    health = StandbyHealth(liveness_port)
    try:
        leads = elector.acquire()
    finally:
        health.stop()  # before Kopf binds the same port
    if not leads:
        return None
    elector.start_renewing()
    return elector
