"""Status follows the Job: pending, running, succeeded with a result, or failed with a reason."""

import json
from datetime import UTC, datetime

from mediaflow_operator.deciders import (
    decide_status,
    human_duration,
    phase_label_patch,
    progress_from_log,
    set_conditions,
)

NOW = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)


def pod(exit_code: int | None = None, message: dict | None = None, reason: str = "Error") -> dict:
    state: dict = {"running": {"startedAt": "2026-01-01T12:00:00Z"}}
    if exit_code is not None:
        state = {
            "terminated": {
                "exitCode": exit_code,
                "reason": reason,
                "startedAt": "2026-01-01T12:00:00Z",
                "message": json.dumps(message) if message else "",
            }
        }
    return {
        "metadata": {"name": "p", "creationTimestamp": "2026-01-01T12:00:00Z"},
        "status": {"containerStatuses": [{"state": state}]},
    }


def job(condition: str | None = None, reason: str = "") -> dict:
    conditions = [{"type": condition, "status": "True", "reason": reason}] if condition else []
    return {"spec": {"activeDeadlineSeconds": 300}, "status": {"conditions": conditions}}


def decide(j: dict, pods: list[dict], current: dict | None = None) -> dict:
    return decide_status(current or {"phase": "Pending"}, generation=1, job=j, pods=pods, now=NOW)


def reason(status: dict) -> str:
    return next(c["reason"] for c in status["conditions"] if c["type"] == "Succeeded")


def test_a_started_pod_makes_it_running() -> None:
    status = decide(job(), [pod()])
    assert status["phase"] == "Running"
    assert status["startTime"] == "2026-01-01T12:00:00Z"


def test_complete_job_carries_the_workers_result() -> None:
    result = {"size": 10, "contentType": "image/webp", "format": "webp", "width": 4, "height": 3}
    status = decide(job("Complete"), [pod(0, result)])
    assert status["phase"] == "Succeeded"
    assert status["result"] == {"size": 10, "contentType": "image/webp", "width": 4, "height": 3}
    assert status["duration"] == "30s"
    assert status["progress"] == 100
    assert reason(status) == "Completed"


def test_failures_say_why() -> None:
    invalid = {"reason": "InvalidInput", "message": "the input is text, not an image"}
    status = decide(job("Failed", "PodFailurePolicy"), [pod(65, invalid)])
    assert (status["phase"], reason(status)) == ("Failed", "InvalidInput")
    assert status["message"] == invalid["message"]
    assert reason(decide(job("Failed", "PodFailurePolicy"), [pod(66)])) == "InputNotFound"
    assert reason(decide(job("Failed", "DeadlineExceeded"), [pod()])) == "DeadlineExceeded"
    oom = decide(job("Failed", "BackoffLimitExceeded"), [pod(137, reason="OOMKilled")])
    assert reason(oom) == "OutOfMemory"
    assert "spec.resources.memory" in oom["message"]
    assert (
        reason(decide(job("Failed", "BackoffLimitExceeded"), [pod(70)] * 3)) == "RetriesExhausted"
    )


def test_terminal_phases_never_change() -> None:
    for phase in ("Succeeded", "Failed", "Cancelled"):
        current = {"phase": phase, "message": "done"}
        assert decide(job(), [pod()], current) == current


def test_conditions_keep_their_transition_time_until_status_changes() -> None:
    first = decide(job(), [pod()])
    later = decide_status(first, generation=1, job=job(), pods=[pod()], now=NOW.replace(minute=5))
    assert first["conditions"] == later["conditions"]


def test_progress_is_the_last_one_the_worker_printed() -> None:
    log = '{"event":"progress","percent":12.5}\nnoise\n{"event":"progress","percent":57.9}\n'
    assert progress_from_log(log) == 57
    assert progress_from_log('{"event":"converted"}') is None


def test_durations_read_like_kubectl() -> None:
    assert [human_duration(s) for s in (4, 184, 3720)] == ["4s", "3m4s", "1h2m"]


def test_conditions_keep_their_transition_time_until_their_status_changes() -> None:
    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    first = set_conditions(
        [],
        {"Accepted": ("True", "JobCreated", "a"), "Succeeded": ("Unknown", "Pending", "b")},
        generation=1,
        now=t0,
    )
    assert [x["type"] for x in first] == ["Accepted", "Succeeded"]
    later = set_conditions(first, {"Succeeded": ("Unknown", "Running", "c")}, generation=2, now=t1)
    running = next(x for x in later if x["type"] == "Succeeded")
    assert (running["reason"], running["observedGeneration"]) == ("Running", 2)
    assert running["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # status unchanged
    done = set_conditions(later, {"Succeeded": ("True", "Completed", "d")}, generation=2, now=t1)
    assert next(x for x in done if x["type"] == "Succeeded")["lastTransitionTime"] == (
        "2026-01-02T00:00:00Z"
    )
    assert next(x for x in done if x["type"] == "Accepted") == first[0]


def mediajob_with(phase: str | None, labels: dict | None) -> dict:
    metadata: dict = {"name": "mj", "resourceVersion": "41"}
    if labels is not None:
        metadata["labels"] = labels
    return {"metadata": metadata, "status": {"phase": phase} if phase else {}}


def test_the_phase_label_follows_the_phase_on_the_version_read() -> None:
    # A kubectl-made MediaJob has no labels at all; an API-made one keeps its own.
    assert phase_label_patch(mediajob_with("Pending", None)) == {
        "metadata": {"resourceVersion": "41", "labels": {"mediaflow.io/phase": "Pending"}}
    }
    running = {"mediaflow.io/owner": "u", "mediaflow.io/phase": "Pending"}
    assert phase_label_patch(mediajob_with("Running", running)) == {
        "metadata": {"resourceVersion": "41", "labels": {"mediaflow.io/phase": "Running"}}
    }


def test_no_phase_label_patch_when_it_already_says_the_phase_or_there_is_none() -> None:
    assert phase_label_patch(mediajob_with("Failed", {"mediaflow.io/phase": "Failed"})) is None
    # Not yet handled: nothing to say (the API labels its new MediaJobs Pending itself).
    assert phase_label_patch(mediajob_with(None, None)) is None
    assert phase_label_patch(mediajob_with(None, {"mediaflow.io/phase": "Pending"})) is None
