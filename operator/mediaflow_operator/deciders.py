"""Pure deciders: what a MediaJob's status should say, given what the cluster shows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mediaflow_core import constants as c
from mediaflow_core.mediajob import Phase
from mediaflow_core.termination import WorkerFailure, WorkerResult, read_termination

TERMINAL = {Phase.SUCCEEDED.value, Phase.FAILED.value, Phase.CANCELLED.value}


def now_iso(now: datetime | None = None) -> str:
    """RFC 3339 time in UTC with second precision, as Kubernetes writes it."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    """A Kubernetes timestamp (`...Z` or `...+00:00`) as an aware datetime."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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


def set_condition(
    conditions: list[dict[str, Any]],
    *,
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Conditions with one set; lastTransitionTime moves only when its status changes."""
    previous = next((x for x in conditions if x.get("type") == type_), None)
    changed = previous is None or previous.get("status") != status
    condition = {
        "type": type_,
        "status": status,
        "observedGeneration": generation,
        "lastTransitionTime": now_iso(now) if changed else previous["lastTransitionTime"],
        "reason": reason,
        "message": message,
    }
    return [x for x in conditions if x.get("type") != type_] + [condition]


def set_conditions(
    conditions: list[dict[str, Any]],
    changes: dict[str, tuple[str, str, str]],
    *,
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """`set_condition` for each `type: (status, reason, message)` of `changes`, in order."""
    for type_, (status, reason, message) in changes.items():
        conditions = set_condition(
            conditions,
            type_=type_,
            status=status,
            reason=reason,
            message=message,
            generation=generation,
            now=now,
        )
    return conditions


@dataclass(frozen=True)
class Outcome:
    """How a Job ended, in a user's words."""

    phase: Phase
    reason: str
    message: str
    result: WorkerResult | None = None


def termination_message(
    pod: dict[str, Any],
) -> tuple[WorkerResult | WorkerFailure | None, dict[str, Any]]:
    """The worker's termination message and its container's terminated state."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated") or (
            status.get("lastState") or {}
        ).get("terminated")
        if terminated:
            return read_termination(terminated.get("message")), terminated
    return None, {}


def newest_pod(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", default=None)


def job_finished(job: dict[str, Any]) -> bool:
    """Is the Job Complete or Failed (no pod of it runs again)?"""
    return any(
        x.get("type") in ("Complete", "Failed") and x.get("status") == "True"
        for x in (job.get("status") or {}).get("conditions") or []
    )


def job_outcome(job: dict[str, Any], pods: list[dict[str, Any]]) -> Outcome | None:
    """The outcome of a finished Job, or None while it runs."""
    conditions = {x["type"]: x for x in (job.get("status") or {}).get("conditions") or []}
    finished = [t for t in ("Complete", "Failed") if conditions.get(t, {}).get("status") == "True"]
    if not finished:
        return None
    pod = newest_pod(pods)
    message, terminated = termination_message(pod) if pod else (None, {})
    if finished[0] == "Complete":
        if not isinstance(message, WorkerResult):
            return Outcome(Phase.FAILED, "ResultMissing", "the worker finished without a result")
        return Outcome(Phase.SUCCEEDED, "Completed", "conversion succeeded", message)
    reason = conditions["Failed"].get("reason", "")
    worker_says = message.message if isinstance(message, WorkerFailure) else None
    exit_code = terminated.get("exitCode")
    if exit_code == c.EXIT_INVALID_INPUT:
        return Outcome(
            Phase.FAILED, c.REASON_INVALID_INPUT, worker_says or "the input is not valid media"
        )
    if exit_code == c.EXIT_INPUT_NOT_FOUND:
        return Outcome(
            Phase.FAILED, c.REASON_INPUT_NOT_FOUND, worker_says or "the input was not found"
        )
    if reason == "DeadlineExceeded":
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        return Outcome(
            Phase.FAILED,
            "DeadlineExceeded",
            f"the conversion took longer than its {deadline}s limit",
        )
    if (
        any((termination_message(p)[1] or {}).get("reason") == "OOMKilled" for p in pods)
        or terminated.get("reason") == "OOMKilled"
    ):
        return Outcome(
            Phase.FAILED,
            "OutOfMemory",
            "the conversion ran out of memory; ask for more with spec.resources.memory",
        )
    return Outcome(
        Phase.FAILED,
        "RetriesExhausted",
        f"the conversion failed {len(pods) or 'several'} times"
        + (f"; last error: {worker_says}" if worker_says else ""),
    )


def pod_started(pods: list[dict[str, Any]]) -> str | None:
    """When the first container of the Job started running, if one has."""
    times = []
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            state = status.get("state") or {}
            started = (state.get("running") or state.get("terminated") or {}).get("startedAt")
            if started:
                times.append(parse_time(started))
    return now_iso(min(times)) if times else None


def decide_status(
    current: dict[str, Any],
    *,
    generation: int | None,
    job: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    now: datetime,
) -> dict[str, Any]:
    """The status a MediaJob should have. Terminal phases never change again."""
    status = dict(current)
    if status.get("phase") in TERMINAL:
        return status
    if job is None:
        return status
    started = pod_started(pods) or status.get("startTime")
    outcome = job_outcome(job, pods)
    conditions = list(status.get("conditions") or [])
    if outcome is None:
        if started:
            status.update(phase=Phase.RUNNING.value, startTime=started, message="converting")
            conditions = set_condition(
                conditions,
                type_=c.CONDITION_SUCCEEDED,
                status="Unknown",
                reason="Running",
                message="the conversion is running",
                generation=generation,
                now=now,
            )
        status["conditions"] = conditions
        return status
    finished = now_iso(now)
    status.update(
        phase=outcome.phase.value,
        completionTime=finished,
        message=outcome.message,
        progress=100 if outcome.phase is Phase.SUCCEEDED else status.get("progress"),
    )
    if started:
        status["startTime"] = started
        status["duration"] = human_duration((now - parse_time(started)).total_seconds())
    status["conditions"] = set_condition(
        conditions,
        type_=c.CONDITION_SUCCEEDED,
        status="True" if outcome.phase is Phase.SUCCEEDED else "False",
        reason=outcome.reason,
        message=outcome.message,
        generation=generation,
        now=now,
    )
    if outcome.result is not None:
        # What the status schema's result holds of the worker's (not its short format name).
        status["result"] = outcome.result.model_dump(
            by_alias=True, exclude_none=True, exclude={"format"}
        )
    return {k: v for k, v in status.items() if v is not None}


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


def phase_label_patch(mediajob: dict[str, Any]) -> dict[str, Any] | None:
    """The metadata merge patch that makes the MediaJob's `mediaflow.io/phase` label say its
    `status.phase`, or None when it already does or no phase is set yet.

    Conditioned on the MediaJob's resourceVersion: a writer that lost a race (its phase
    already replaced by a newer one) gets 409 and decides again from a fresh read, so the
    label can never be left on an older phase than the status.
    """
    phase = (mediajob.get("status") or {}).get("phase")
    metadata = mediajob["metadata"]
    if not phase or (metadata.get("labels") or {}).get(c.LABEL_PHASE) == phase:
        return None
    return {
        "metadata": {
            "resourceVersion": metadata["resourceVersion"],
            "labels": {c.LABEL_PHASE: phase},
        }
    }
