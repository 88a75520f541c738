"""Pure deciders: what a MediaJob's status should say, given what the watches show.

Every transition of a MediaJob is one function here that takes the current typed status
(`MediaJobStatus`) and the observed Job and pods (observed.py views) and returns the next
typed status, with the Event to post about it; the reconciler (reconciler.py) only reads,
calls one of these, and writes what it returns. None of them touches the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from mediaflow_core import constants as c
from mediaflow_core.mediajob import (
    Condition,
    ItemStatus,
    MediaJobCost,
    MediaJobResult,
    MediaJobStatus,
    Phase,
    RenditionResult,
    total_cost,
)
from mediaflow_core.session import ItemOutcome
from mediaflow_core.termination import (
    RenditionOutput,
    WorkerCost,
    WorkerFailure,
    WorkerResult,
    read_termination,
)
from mediaflow_operator.observed import JobView, PodView

TERMINAL = {Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED}
ConditionStatus = Literal["True", "False", "Unknown"]
WAITING_MESSAGE = "waiting for the conversion pod to start"


def now_iso(now: datetime | None = None) -> str:
    """RFC 3339 time in UTC with second precision, as Kubernetes writes it."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | datetime | None) -> datetime | None:
    """A Kubernetes timestamp (`...Z` or `...+00:00`) as an aware datetime."""
    if not value:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def second(now: datetime) -> datetime:
    """`now` at the precision Kubernetes keeps (so that a status read back compares equal)."""
    return now.astimezone(UTC).replace(microsecond=0)


def human_duration(seconds: float) -> str:
    """12s, 3m4s, 1h2m: the way kubectl shows durations."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


@dataclass(frozen=True)
class Event:
    """An Event to post on the MediaJob."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Transition:
    """The next status and what to tell about it."""

    status: MediaJobStatus
    event: Event | None = None
    # A success's result as the worker reported it; the reconciler adds where it is (bucket,
    # key) and a signed URL, which takes the storage settings.
    result: WorkerResult | None = None

    @property
    def finished(self) -> bool:
        return self.status.phase in TERMINAL


def condition(status: MediaJobStatus, type_: str) -> Condition | None:
    return next((x for x in status.conditions if x.type == type_), None)


def with_conditions(
    status: MediaJobStatus,
    changes: dict[str, tuple[ConditionStatus, str, str]],
    *,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """The conditions with each `type: (status, reason, message)` of `changes` set;
    lastTransitionTime moves only when a condition's status changes."""
    conditions = list(status.conditions)
    for type_, (value, reason, message) in changes.items():
        previous = next((x for x in conditions if x.type == type_), None)
        changed = previous is None or previous.status != value
        conditions = [x for x in conditions if x.type != type_] + [
            Condition(
                type=type_,
                status=value,
                observed_generation=generation,
                last_transition_time=second(now) if changed else previous.last_transition_time,
                reason=reason,
                message=message,
            )
        ]
    return conditions


def is_accepted(status: MediaJobStatus) -> bool:
    accepted = condition(status, c.CONDITION_ACCEPTED)
    return accepted is not None and accepted.status == "True" and status.job_name is not None


# Acceptance.


def accepted(
    status: MediaJobStatus, *, job_name: str, generation: int | None, now: datetime
) -> Transition:
    """The Job is made: Pending until its pod starts."""
    return Transition(
        status.model_copy(
            update={
                "phase": Phase.PENDING,
                "job_name": job_name,
                "observed_generation": generation,
                "message": WAITING_MESSAGE,
                "conditions": with_conditions(
                    status,
                    {
                        c.CONDITION_ACCEPTED: ("True", "JobCreated", f"Job {job_name} runs it"),
                        c.CONDITION_SUCCEEDED: ("Unknown", "Pending", WAITING_MESSAGE),
                    },
                    generation=generation,
                    now=now,
                ),
            }
        )
    )


def accepted_warm(
    status: MediaJobStatus, *, job_name: str, slot: int, generation: int | None, now: datetime
) -> Transition:
    """Queued in its owner's warm pod: Pending until the pod starts it."""
    message = f"queued in warm pod of Job {job_name}"
    return Transition(
        status.model_copy(
            update={
                "phase": Phase.PENDING,
                "job_name": job_name,
                "session_slot": slot,
                "observed_generation": generation,
                "message": message,
                "conditions": with_conditions(
                    status,
                    {
                        c.CONDITION_ACCEPTED: ("True", "WarmPod", f"Job {job_name} runs it"),
                        c.CONDITION_SUCCEEDED: ("Unknown", "Pending", message),
                    },
                    generation=generation,
                    now=now,
                ),
            }
        )
    )


def warm_started(
    status: MediaJobStatus, *, generation: int | None, now: datetime
) -> Transition | None:
    """Its warm pod has started it: Running (once)."""
    if status.phase is not Phase.PENDING:
        return None
    message = "the conversion is running"
    return Transition(
        status.model_copy(
            update={
                "phase": Phase.RUNNING,
                "start_time": second(now),
                "message": "converting",
                "conditions": with_conditions(
                    status,
                    {c.CONDITION_SUCCEEDED: ("Unknown", "Running", message)},
                    generation=generation,
                    now=now,
                ),
            }
        )
    )


def cost_of(reported: WorkerCost | dict | None) -> MediaJobCost | None:
    """A worker's cost report as the status says it; None when missing or not one."""
    if reported is None:
        return None
    try:
        if isinstance(reported, dict):
            reported = WorkerCost.model_validate(reported)
        return MediaJobCost(
            cpu_seconds=round(reported.cpu_seconds, 3),
            peak_memory_bytes=reported.peak_memory_bytes,
            input_bytes=reported.input_bytes,
            output_bytes=reported.output_bytes,
        )
    except ValueError:
        return None


def pods_cost(pods: tuple[PodView, ...]) -> MediaJobCost | None:
    """What every pod of a Job cost, from their termination messages (a retried conversion
    costs each attempt)."""
    costs = []
    for pod in pods:
        message = worker_message(pod)
        if message is not None:
            costs.append(cost_of(message.cost))
    return total_cost(costs)


def warm_outcome(outcome: ItemOutcome) -> Outcome | None:
    """What a warm pod's outcome line settles: a result, or a final failure. A transient
    failure settles nothing: the item goes to a fresh pod of its own (redispatched)."""
    if outcome.result is not None:
        try:
            result = WorkerResult.model_validate(outcome.result)
        except ValueError:
            return None  # not what a worker writes: a fresh pod does it again
        return Outcome(
            Phase.SUCCEEDED, "Completed", "conversion succeeded", result, cost_of(result.cost)
        )
    failure = outcome.failure or {}
    reason, message = failure.get("reason"), str(failure.get("message") or "")[:4000]
    spent = cost_of(failure.get("cost"))
    if reason == c.REASON_INVALID_INPUT:
        return Outcome(Phase.FAILED, reason, message or "the input is not valid media", None, spent)
    if reason == c.REASON_INPUT_NOT_FOUND:
        return Outcome(Phase.FAILED, reason, message or "the input was not found", None, spent)
    return None


# Many inputs (spec.inputs).

ITEM_ATTEMPTS = 3  # pods one input is given to before it fails with TransientError


def item_settled(
    item: ItemStatus,
    outcome: Outcome,
    result: MediaJobResult | None,
    renditions: list[RenditionResult] | None = None,
) -> ItemStatus:
    """An input's outcome, as its warm pod reported it (with renditions: `result` is the
    first rendition's)."""
    return item.model_copy(
        update={
            "phase": outcome.phase,
            "reason": None if outcome.phase is Phase.SUCCEEDED else outcome.reason,
            "message": outcome.message[:1024],
            "result": result,
            "renditions": renditions,
            "cost": outcome.cost,
        }
    )


def item_cancelled(item: ItemStatus) -> ItemStatus:
    """An input cancelled alone (`mediaflow.io/cancel-item-<index>`): Cancelled whatever it
    was, with no result (its files are deleted)."""
    return item.model_copy(
        update={
            "phase": Phase.CANCELLED,
            "reason": "Cancelled",
            "message": f"cancelled on request ({c.ANNOTATION_CANCEL_ITEM_PREFIX}{item.index})",
            "result": None,
        }
    )


def item_retried(item: ItemStatus, why: str, placed: tuple[str, int] | None) -> ItemStatus:
    """An input its pod did not settle: placed in a pod again (`placed`), or, after
    ITEM_ATTEMPTS pods or when it cannot be placed, failed."""
    if placed is None or item.attempts >= ITEM_ATTEMPTS:
        return item.model_copy(
            update={
                "phase": Phase.FAILED,
                "reason": c.REASON_TRANSIENT_ERROR,
                "message": f"{why}; given up after {item.attempts} pods"[:1024],
            }
        )
    return item.model_copy(
        update={
            "phase": Phase.PENDING,
            "job_name": placed[0],
            "session_slot": placed[1],
            "attempts": item.attempts + 1,
            "message": why[:1024],
        }
    )


def items_message(items: list[ItemStatus]) -> str:
    """What a MediaJob's items came to, once every one has ended: "k of n items succeeded",
    then how many failed (and why the first did) and how many were cancelled."""
    total = len(items)
    succeeded = [i for i in items if i.phase is Phase.SUCCEEDED]
    failed = [i for i in items if i.phase is Phase.FAILED]
    cancelled = [i for i in items if i.phase is Phase.CANCELLED]
    if len(cancelled) == total:
        return f"all {total} items were cancelled"
    message = f"{len(succeeded)} of {total} items succeeded"
    if failed:
        first = failed[0]
        message += f"; {len(failed)} failed (item {first.index}: {first.message or first.reason})"
    if cancelled:
        message += f"; {len(cancelled)} cancelled"
    return message


def items_write_wait(
    last_write: datetime | None, now: datetime, interval: float, *, urgent: bool
) -> float:
    """Seconds to hold back the next status write of a running MediaJob of many inputs
    (0: write now): none for an `urgent` one (it finishes the MediaJob or cancels an input)
    or the first; else what is left of `interval` since the last."""
    if urgent or last_write is None or interval <= 0:
        return 0.0
    return max(0.0, interval - (now - last_write).total_seconds())


def items_progress(
    status: MediaJobStatus,
    items: list[ItemStatus],
    *,
    generation: int | None,
    now: datetime,
) -> Transition | None:
    """The MediaJob's status from its items': Pending until one runs, Running, and once
    every item has ended (a cancelled one counts as ended) Succeeded (all, or some with
    reason SomeItemsFailed), Cancelled (every item cancelled) or Failed (none succeeded).
    A MediaJob that has ended already keeps its phase, conditions and times: an input
    cancelled afterwards changes only its items, itemsDone and message. None when nothing
    changed."""
    total = len(items)
    done = [i for i in items if i.phase in TERMINAL]
    succeeded = [i for i in done if i.phase is Phase.SUCCEEDED]
    failed = [i for i in done if i.phase is Phase.FAILED]
    cancelled = [i for i in done if i.phase is Phase.CANCELLED]
    jobs = sorted({i.job_name for i in items if i.job_name and i.phase not in TERMINAL})
    update: dict[str, object] = {
        "items": items,
        "items_done": f"{len(done)}/{total}",
        "progress": len(done) * 100 // total,
    }
    if status.phase in TERMINAL:
        update = {"items": items, "items_done": update["items_done"]}
        if len(done) == total:
            update["message"] = items_message(items)
        nxt = status.model_copy(update=update)
        return None if nxt == status else Transition(nxt)
    if jobs:
        update["job_name"] = jobs[0]
    if len(done) == total:
        if succeeded:
            reason = "Completed" if not failed else "SomeItemsFailed"
            phase = Phase.SUCCEEDED
        elif len(cancelled) == total:
            reason, phase = "Cancelled", Phase.CANCELLED
        else:
            reason, phase = (failed[0].reason or "Failed"), Phase.FAILED
        outcome = Outcome(
            phase, reason, items_message(items), cost=total_cost([i.cost for i in items])
        )
        started = parse_time(status.start_time) or now
        transition = finished(
            status.model_copy(update=update), outcome, started=started, generation=generation,
            now=now,
        )  # fmt: skip
        progress = 100 if phase is Phase.SUCCEEDED else transition.status.progress
        return Transition(
            transition.status.model_copy(update={"progress": progress}), transition.event
        )
    running = any(i.phase is Phase.RUNNING for i in items) or status.phase is Phase.RUNNING
    message = f"{len(done)} of {total} items done"
    if cancelled:
        message += f" ({len(cancelled)} cancelled)"
        update["message"] = message  # (still Pending: was "n items queued in ...")
    if running:
        update.update(
            phase=Phase.RUNNING,
            message=message,
            start_time=status.start_time or second(now),
            conditions=with_conditions(
                status,
                {c.CONDITION_SUCCEEDED: ("Unknown", "Running", message)},
                generation=generation,
                now=now,
            ),
        )
    nxt = status.model_copy(update=update)
    return None if nxt == status else Transition(nxt)


def accepted_items(
    status: MediaJobStatus,
    items: list[ItemStatus],
    *,
    generation: int | None,
    now: datetime,
) -> Transition:
    """Every input placed in a pod (or failed at once): Pending."""
    jobs = sorted({i.job_name for i in items if i.job_name})
    message = f"{len(items)} items queued in warm pod of Job {', '.join(jobs) or '-'}"
    accepted_status = status.model_copy(
        update={
            "phase": Phase.PENDING,
            "job_name": jobs[0] if jobs else None,
            "observed_generation": generation,
            "message": message,
            "conditions": with_conditions(
                status,
                {
                    c.CONDITION_ACCEPTED: ("True", "WarmPod", message),
                    c.CONDITION_SUCCEEDED: ("Unknown", "Pending", message),
                },
                generation=generation,
                now=now,
            ),
        }
    )
    progressed = items_progress(accepted_status, items, generation=generation, now=now)
    return progressed or Transition(accepted_status)


def redispatched(
    status: MediaJobStatus, *, job_name: str, why: str, generation: int | None, now: datetime
) -> Transition:
    """Its warm pod ended without settling it: a Job of its own runs it."""
    message = f"{why}; Job {job_name} runs it in a pod of its own"
    return Transition(
        status.model_copy(
            update={
                "phase": Phase.PENDING,
                "job_name": job_name,
                "session_slot": None,
                "start_time": None,
                "message": WAITING_MESSAGE,
                "conditions": with_conditions(
                    status,
                    {
                        c.CONDITION_ACCEPTED: ("True", "JobCreated", message),
                        c.CONDITION_SUCCEEDED: ("Unknown", "Pending", WAITING_MESSAGE),
                    },
                    generation=generation,
                    now=now,
                ),
            }
        ),
        Event("Normal", "Redispatched", message),
    )


def refused(
    status: MediaJobStatus,
    *,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
    accepted: bool = False,
) -> Transition:
    """A MediaJob that can never run (or stopped for good): Failed, with a Warning Event."""
    changes: dict[str, tuple[ConditionStatus, str, str]] = {
        c.CONDITION_SUCCEEDED: ("False", reason, message)
    }
    if not accepted:
        changes = {c.CONDITION_ACCEPTED: ("False", reason, message), **changes}
    return Transition(
        status.model_copy(
            update={
                "phase": Phase.FAILED,
                "observed_generation": generation,
                "completion_time": second(now),
                "message": message,
                "conditions": with_conditions(status, changes, generation=generation, now=now),
            }
        ),
        Event("Warning", reason, message),
    )


def cancelled(status: MediaJobStatus, *, generation: int | None, now: datetime) -> Transition:
    message = "cancelled on request"
    return Transition(
        status.model_copy(
            update={
                "phase": Phase.CANCELLED,
                "completion_time": second(now),
                "message": message,
                "conditions": with_conditions(
                    status,
                    {c.CONDITION_SUCCEEDED: ("False", "Cancelled", message)},
                    generation=generation,
                    now=now,
                ),
            }
        ),
        Event("Normal", "Cancelled", "cancelled on request; the pod is stopped"),
    )


# From the pods and the Job.


@dataclass(frozen=True)
class Outcome:
    """How the conversion ended, in a user's words."""

    phase: Phase
    reason: str
    message: str
    result: WorkerResult | None = None
    cost: MediaJobCost | None = None  # what the worker measured (its tools, bytes moved)


def worker_message(pod: PodView) -> WorkerResult | WorkerFailure | None:
    return read_termination(pod.terminated.message) if pod.terminated else None


def newest(pods: tuple[PodView, ...] | list[PodView]) -> PodView | None:
    return max(pods, key=lambda p: p.created, default=None)


def pod_outcome(pods: tuple[PodView, ...]) -> Outcome | None:
    """An outcome the pods alone settle, without waiting for the Job controller: a worker
    that exited 0 with its result message, or one that exited with a final code (the Job's
    podFailurePolicy fails the Job on those anyway)."""
    for pod in sorted(pods, key=lambda p: p.created):
        ended = pod.terminated
        if ended is None:
            continue
        message = worker_message(pod)
        if ended.exit_code == c.EXIT_OK and isinstance(message, WorkerResult):
            return Outcome(Phase.SUCCEEDED, "Completed", "conversion succeeded", message)
        says = message.message if isinstance(message, WorkerFailure) else None
        if ended.exit_code == c.EXIT_INVALID_INPUT:
            return Outcome(
                Phase.FAILED, c.REASON_INVALID_INPUT, says or "the input is not valid media"
            )
        if ended.exit_code == c.EXIT_INPUT_NOT_FOUND:
            return Outcome(
                Phase.FAILED, c.REASON_INPUT_NOT_FOUND, says or "the input was not found"
            )
    return None


def job_outcome(job: JobView, pods: tuple[PodView, ...], status: MediaJobStatus) -> Outcome:
    """The outcome of a Job that finished (or vanished) without one the pods settle."""
    if job.deleted and job.finished is None:
        return Outcome(
            Phase.FAILED, "JobDeleted", f"its Job {job.name} was deleted before it finished"
        )
    if job.finished == "Complete":
        return Outcome(Phase.FAILED, "ResultMissing", "the worker finished without a result")
    started = any(p.started_at for p in pods) or status.start_time is not None
    if job.finished_reason == "DeadlineExceeded":
        limit = f"{job.deadline_seconds}s" if job.deadline_seconds else "time"
        if not started:
            return not_started(status, pods, limit)
        return Outcome(
            Phase.FAILED, "DeadlineExceeded", f"the conversion took longer than its {limit} limit"
        )
    if any(p.terminated and p.terminated.reason == "OOMKilled" for p in pods):
        return Outcome(
            Phase.FAILED,
            "OutOfMemory",
            "the conversion ran out of memory; ask for more with spec.resources.memory",
        )
    last = newest([p for p in pods if p.terminated])
    says = worker_message(last) if last else None
    detail = f"; last error: {says.message}" if isinstance(says, WorkerFailure) else ""
    tries = len([p for p in pods if p.terminated]) or "several"
    return Outcome(Phase.FAILED, "RetriesExhausted", f"the conversion failed {tries} times{detail}")


def not_started(status: MediaJobStatus, pods: tuple[PodView, ...], limit: str) -> Outcome:
    """The deadline passed before any container ran: say what held the pod (the scheduler's
    verdict, or why its container could not start), as the status said while it waited."""
    waiting = waiting_reason(pods)
    if waiting is None:
        held = condition(status, c.CONDITION_SUCCEEDED)
        if held is not None and held.reason not in ("Pending", "Running"):
            waiting = (held.reason, held.message.removeprefix(f"{WAITING_MESSAGE}: "))
    if waiting is None:
        return Outcome(
            Phase.FAILED,
            "NotStarted",
            f"the conversion pod did not start within its {limit} limit; nothing ran",
        )
    reason, why = waiting
    if reason == "Unschedulable":
        return Outcome(
            Phase.FAILED,
            "Unschedulable",
            f"the conversion pod could not be scheduled within its {limit} limit; nothing "
            f"ran: {why}",
        )
    return Outcome(
        Phase.FAILED,
        reason,
        f"the conversion pod did not start within its {limit} limit; nothing ran: {why}",
    )


def waiting_reason(pods: tuple[PodView, ...]) -> tuple[str, str] | None:
    """Why the newest live pod does not run yet, when something holds it: the scheduler
    (Unschedulable: "0/1 nodes are available: 1 Insufficient cpu."), or its container
    (ErrImagePull, CreateContainerConfigError, ...)."""
    pod = newest([p for p in pods if not p.deleted and p.terminated is None])
    if pod is None:
        return None
    if pod.unschedulable:
        return ("Unschedulable", pod.unschedulable)
    if pod.waiting:
        reason, message = pod.waiting
        return (reason, f"{reason}: {message}" if message else reason)
    return None


def first_start(pods: tuple[PodView, ...]) -> datetime | None:
    times = [parse_time(p.started_at) for p in pods if p.started_at]
    return min((t for t in times if t), default=None)


def followed(
    status: MediaJobStatus,
    *,
    job: JobView | None,
    pods: tuple[PodView, ...],
    generation: int | None,
    now: datetime,
) -> Transition | None:
    """The next status of an accepted, unfinished MediaJob from its Job and pods, or None
    when nothing changed. `job` None means the Job was never seen (nothing to decide yet)."""
    outcome = pod_outcome(pods)
    if outcome is None and job is not None and (job.finished or job.deleted):
        outcome = job_outcome(job, pods, status)
    started = first_start(pods) or (parse_time(status.start_time) if status.start_time else None)
    if outcome is not None:
        outcome = replace(outcome, cost=pods_cost(pods))
        return finished(status, outcome, started=started, generation=generation, now=now)
    if started is not None:
        message = "the conversion is running"
        nxt = status.model_copy(
            update={
                "phase": Phase.RUNNING,
                "start_time": second(started),
                "message": "converting",
                "conditions": with_conditions(
                    status,
                    {c.CONDITION_SUCCEEDED: ("Unknown", "Running", message)},
                    generation=generation,
                    now=now,
                ),
            }
        )
        return None if nxt == status else Transition(nxt)
    waiting = waiting_reason(pods)
    if waiting is None and not any(not p.deleted and p.terminated is None for p in pods):
        # No pod to speak of (not made yet, or deleted at the deadline): what the status says
        # of the last one stands.
        return None
    reason, why = waiting or ("Pending", "")
    message = f"{WAITING_MESSAGE}: {why}" if why else WAITING_MESSAGE
    nxt = status.model_copy(
        update={
            "phase": Phase.PENDING,
            "message": message,
            "conditions": with_conditions(
                status,
                {c.CONDITION_SUCCEEDED: ("Unknown", reason, message)},
                generation=generation,
                now=now,
            ),
        }
    )
    if nxt == status:
        return None
    before = condition(status, c.CONDITION_SUCCEEDED)
    event = None
    if waiting is not None and (before is None or before.reason != reason):
        event = Event("Warning", reason, message)
    return Transition(nxt, event)


def finished(
    status: MediaJobStatus,
    outcome: Outcome,
    *,
    started: datetime | None,
    generation: int | None,
    now: datetime,
) -> Transition:
    succeeded = outcome.phase is Phase.SUCCEEDED
    update: dict[str, object] = {
        "phase": outcome.phase,
        "completion_time": second(now),
        "message": outcome.message,
        "progress": 100 if succeeded else status.progress,
        "conditions": with_conditions(
            status,
            {
                c.CONDITION_SUCCEEDED: (
                    "True" if succeeded else "False",
                    outcome.reason,
                    outcome.message,
                )
            },
            generation=generation,
            now=now,
        ),
    }
    if started is not None:
        update["start_time"] = second(started)
        update["duration"] = human_duration((now - started).total_seconds())
    if outcome.cost is not None:
        update["cost"] = outcome.cost
    if succeeded:
        event = Event("Normal", "Succeeded", outcome.message)
    elif outcome.phase is Phase.CANCELLED:  # asked for: nothing needs attention
        event = Event("Normal", "Cancelled", outcome.message)
    else:
        event = Event("Warning", outcome.reason, outcome.message)
    return Transition(status.model_copy(update=update), event, outcome.result)


def with_result(
    status: MediaJobStatus,
    result: WorkerResult,
    *,
    bucket: str,
    key: str,
    url: str,
    url_expires_at: datetime,
) -> MediaJobStatus:
    """A success's status with its result: what the worker reported, where it is, a URL."""
    return status.model_copy(
        update={
            "result": MediaJobResult(
                bucket=bucket,
                key=key,
                size=result.size,
                content_type=result.content_type,
                width=result.width,
                height=result.height,
                duration=result.duration,
                url=url,
                url_expires_at=second(url_expires_at),
            )
        }
    )


def rendition_result(
    output: RenditionOutput, *, bucket: str, key: str, url: str, url_expires_at: datetime
) -> RenditionResult:
    """One rendition's result: what the worker reported of it, where it is, a URL."""
    return RenditionResult(
        name=output.name,
        bucket=bucket,
        key=key,
        size=output.size,
        content_type=output.content_type,
        width=output.width,
        height=output.height,
        url=url,
        url_expires_at=second(url_expires_at),
    )


def first_result(renditions: list[RenditionResult]) -> MediaJobResult:
    """`result` of a MediaJob (or item) with renditions: the first rendition's, so that
    printer columns and clients that read only `result` keep working."""
    return MediaJobResult.model_validate(renditions[0].model_dump(exclude={"name"}))


def with_renditions(status: MediaJobStatus, renditions: list[RenditionResult]) -> MediaJobStatus:
    """A success's status with every rendition, and the first as its result."""
    return status.model_copy(update={"result": first_result(renditions), "renditions": renditions})


# Video progress.


def progress_from_log(log: str) -> int | None:
    """The last progress percentage the worker printed, as a whole number."""
    for line in reversed(log.splitlines()):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "progress":
            try:
                return max(0, min(100, int(float(event["percent"]))))
            except (KeyError, TypeError, ValueError):
                return None
    return None


# Expiry.


def expires_in(status: MediaJobStatus, ttl_seconds: int | None, now: datetime) -> float | None:
    """Seconds until a finished MediaJob's ttlSecondsAfterFinished passes (<= 0: now), or
    None when it never expires."""
    if ttl_seconds is None or status.completion_time is None:
        return None
    finished_at = parse_time(status.completion_time) or now
    return (finished_at - now).total_seconds() + ttl_seconds
