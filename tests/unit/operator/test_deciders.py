"""Status follows the pods and the Job: pending (and why), running, succeeded with a result,
or failed with a reason; the metadata the MediaJob lacks; durations and progress."""

import json
from datetime import UTC, datetime, timedelta

from mediaflow_core.mediajob import ItemStatus, MediaJobStatus, Phase
from mediaflow_operator.deciders import (
    expires_in,
    followed,
    human_duration,
    item_cancelled,
    items_progress,
    progress_from_log,
    with_conditions,
)
from mediaflow_operator.observed import JobView, PodView
from mediaflow_operator.reconciler import metadata_patch

NOW = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
PENDING = MediaJobStatus.model_validate({"phase": "Pending", "jobName": "j"})


def pod(exit_code: int | None = None, message: dict | None = None, reason: str = "Error",
        name: str = "p") -> PodView:  # fmt: skip
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
    return PodView.from_body(
        {
            "metadata": {"name": name, "creationTimestamp": "2026-01-01T12:00:00Z"},
            "status": {"containerStatuses": [{"name": "worker", "state": state}]},
        }
    )


def job(finished: str | None = None, reason: str = "") -> JobView:
    return JobView("j", "job-uid", ("mj-uid",), finished, reason, 300)


def decide(j: JobView, pods: list[PodView], current: MediaJobStatus = PENDING) -> dict:
    transition = followed(current, job=j, pods=tuple(pods), generation=1, now=NOW)
    assert transition is not None
    return transition.status.model_dump(mode="json", by_alias=True, exclude_none=True)


def reason(status: dict) -> str:
    return next(c["reason"] for c in status["conditions"] if c["type"] == "Succeeded")


def test_a_started_pod_makes_it_running() -> None:
    status = decide(job(), [pod()])
    assert status["phase"] == "Running"
    assert status["startTime"] == "2026-01-01T12:00:00Z"


def test_a_pods_result_is_the_outcome_without_the_job_controller() -> None:
    result = {"size": 10, "contentType": "image/webp", "format": "webp", "width": 4, "height": 3}
    transition = followed(PENDING, job=job(), pods=(pod(0, result),), generation=1, now=NOW)
    assert transition is not None
    assert transition.result is not None
    assert transition.result.size == 10
    status = transition.status
    assert status.phase == "Succeeded"
    assert (status.duration, status.progress) == ("30s", 100)
    assert transition.event is not None
    assert transition.event.reason == "Succeeded"


def test_failures_say_why() -> None:
    invalid = {"reason": "InvalidInput", "message": "the input is text, not an image"}
    status = decide(job(), [pod(65, invalid)])
    assert (status["phase"], reason(status)) == ("Failed", "InvalidInput")
    assert status["message"] == invalid["message"]
    assert reason(decide(job(), [pod(66)])) == "InputNotFound"
    assert reason(decide(job("Failed", "DeadlineExceeded"), [pod()])) == "DeadlineExceeded"
    oom = decide(job("Failed", "BackoffLimitExceeded"), [pod(137, reason="OOMKilled")])
    assert reason(oom) == "OutOfMemory"
    assert "spec.resources.memory" in oom["message"]
    pods = [pod(70, name=f"p{i}") for i in range(3)]
    assert reason(decide(job("Failed", "BackoffLimitExceeded"), pods)) == "RetriesExhausted"
    # A Complete Job whose pod left no result message.
    assert reason(decide(job("Complete"), [pod(0)])) == "ResultMissing"


def test_a_deadline_before_any_container_ran_says_what_held_the_pod() -> None:
    held = PodView("p", "2026-01-01T12:00:00Z", "Pending", waiting=("ErrImagePull", "no such"))
    status = decide(job("Failed", "DeadlineExceeded"), [held])
    assert reason(status) == "ErrImagePull"
    assert status["message"] == (
        "the conversion pod did not start within its 300s limit; nothing ran: ErrImagePull: no such"
    )
    assert reason(decide(job("Failed", "DeadlineExceeded"), [])) == "NotStarted"


def test_nothing_new_is_no_transition() -> None:
    running = followed(PENDING, job=job(), pods=(pod(),), generation=1, now=NOW)
    assert running is not None
    later = NOW + timedelta(minutes=5)
    assert followed(running.status, job=job(), pods=(pod(),), generation=1, now=later) is None
    # No pod yet (or none left): what the status says stands.
    assert followed(PENDING, job=job(), pods=(), generation=1, now=NOW) is None
    creating = PodView("p", "2026-01-01T12:00:00Z", "Pending")
    waiting = followed(PENDING, job=job(), pods=(creating,), generation=1, now=NOW)
    assert waiting is not None
    assert followed(waiting.status, job=job(), pods=(creating,), generation=1, now=later) is None


def test_progress_is_the_last_one_the_worker_printed() -> None:
    log = '{"event":"progress","percent":12.5}\nnoise\n{"event":"progress","percent":57.9}\n'
    assert progress_from_log(log) == 57
    assert progress_from_log('{"event":"converted"}') is None


def test_durations_read_like_kubectl() -> None:
    assert [human_duration(s) for s in (4, 184, 3720)] == ["4s", "3m4s", "1h2m"]


def test_conditions_keep_their_transition_time_until_their_status_changes() -> None:
    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    empty = MediaJobStatus()
    first = with_conditions(
        empty,
        {"Accepted": ("True", "JobCreated", "a"), "Succeeded": ("Unknown", "Pending", "b")},
        generation=1,
        now=t0,
    )
    assert [x.type for x in first] == ["Accepted", "Succeeded"]
    later = with_conditions(
        MediaJobStatus(conditions=first),
        {"Succeeded": ("Unknown", "Running", "c")},
        generation=2,
        now=t1,
    )
    running = next(x for x in later if x.type == "Succeeded")
    assert (running.reason, running.observed_generation) == ("Running", 2)
    assert running.last_transition_time == t0  # status unchanged
    done = with_conditions(
        MediaJobStatus(conditions=later),
        {"Succeeded": ("True", "Completed", "d")},
        generation=2,
        now=t1,
    )
    assert next(x for x in done if x.type == "Succeeded").last_transition_time == t1
    assert next(x for x in done if x.type == "Accepted") == first[0]


def test_expiry_counts_from_completion() -> None:
    done = MediaJobStatus.model_validate({"phase": "Succeeded", "completionTime": NOW})
    assert expires_in(done, 60, NOW + timedelta(seconds=20)) == 40
    assert expires_in(done, None, NOW) is None
    assert expires_in(PENDING, 60, NOW) is None


def mediajob_with(phase: str | None, labels: dict | None, finalizers: list | None = None) -> dict:
    metadata: dict = {"name": "mj", "resourceVersion": "41", "finalizers": finalizers or []}
    if labels is not None:
        metadata["labels"] = labels
    return {"metadata": metadata, "status": {"phase": phase} if phase else {}}


def test_the_metadata_patch_adds_the_finalizer_and_the_phase_label() -> None:
    # A kubectl-made MediaJob has no labels at all; an API-made one keeps its own.
    assert metadata_patch(mediajob_with("Pending", None)) == {
        "finalizers": ["mediaflow.io/cleanup"],
        "labels": {"mediaflow.io/phase": "Pending"},
    }
    running = {"mediaflow.io/owner": "u", "mediaflow.io/phase": "Pending"}
    assert metadata_patch(mediajob_with("Running", running, ["other", "mediaflow.io/cleanup"])) == {
        "labels": {"mediaflow.io/phase": "Running"}
    }
    done = mediajob_with("Failed", {"mediaflow.io/phase": "Failed"}, ["mediaflow.io/cleanup"])
    assert metadata_patch(done) is None
    # Being deleted: no finalizer is added.
    deleting = mediajob_with(None, None)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert metadata_patch(deleting) is None


# Many inputs: an input cancelled alone (mediaflow.io/cancel-item-<index>).


def items_of(*phases: str) -> list[ItemStatus]:
    return [
        ItemStatus(index=n, phase=Phase(p), job_name="mf-warm-1", session_slot=n,
                   reason="InvalidInput" if p == "Failed" else None,
                   message="not an image" if p == "Failed" else None)
        for n, p in enumerate(phases)
    ]  # fmt: skip


def progressed(items: list[ItemStatus], current: MediaJobStatus = PENDING) -> dict:
    transition = items_progress(current, items, generation=1, now=NOW)
    assert transition is not None
    return transition.status.model_dump(mode="json", by_alias=True, exclude_none=True)


def test_a_cancelled_item_says_so_and_keeps_no_result() -> None:
    done = ItemStatus.model_validate(
        {
            "index": 4,
            "phase": "Succeeded",
            "result": {"bucket": "b", "key": "k", "size": 1, "contentType": "image/webp"},
        }
    )
    item = item_cancelled(done)
    assert (item.phase, item.reason, item.result) == (Phase.CANCELLED, "Cancelled", None)
    assert item.message == "cancelled on request (mediaflow.io/cancel-item-4)"


def test_cancelled_items_count_as_done_and_the_rest_decides_the_phase() -> None:
    status = progressed(items_of("Succeeded", "Cancelled", "Succeeded"))
    assert (status["phase"], reason(status)) == ("Succeeded", "Completed")
    assert status["itemsDone"] == "3/3"
    assert status["message"] == "2 of 3 items succeeded; 1 cancelled"

    status = progressed(items_of("Succeeded", "Failed", "Cancelled"))
    assert (status["phase"], reason(status)) == ("Succeeded", "SomeItemsFailed")
    assert status["message"] == (
        "1 of 3 items succeeded; 1 failed (item 1: not an image); 1 cancelled"
    )

    status = progressed(items_of("Failed", "Cancelled"))
    assert (status["phase"], reason(status)) == ("Failed", "InvalidInput")


def test_every_item_cancelled_cancels_the_mediajob_without_a_warning() -> None:
    transition = items_progress(PENDING, items_of("Cancelled", "Cancelled"), generation=1, now=NOW)
    assert transition is not None
    assert transition.status.phase is Phase.CANCELLED
    assert transition.status.message == "all 2 items were cancelled"
    assert transition.event is not None
    assert (transition.event.type, transition.event.reason) == ("Normal", "Cancelled")
    status = transition.status.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert reason(status) == "Cancelled"


def test_while_items_run_the_message_counts_the_cancelled_ones() -> None:
    status = progressed(items_of("Running", "Cancelled", "Pending"))
    assert status["phase"] == "Running"
    assert (status["itemsDone"], status["progress"]) == ("1/3", 33)
    assert status["message"] == "1 of 3 items done (1 cancelled)"
    # Before any runs it stays Pending, and says so too.
    status = progressed(items_of("Pending", "Cancelled"))
    assert (status["phase"], status["message"]) == ("Pending", "1 of 2 items done (1 cancelled)")


def test_a_finished_mediajob_keeps_its_phase_when_an_item_is_cancelled_afterwards() -> None:
    finished_status = items_progress(
        PENDING, items_of("Succeeded", "Succeeded"), generation=1, now=NOW - timedelta(minutes=5)
    )
    assert finished_status is not None
    before = finished_status.status
    items = items_of("Succeeded", "Cancelled")
    for now in (NOW, NOW + timedelta(hours=1)):  # whenever it comes
        transition = items_progress(before, items, generation=1, now=now)
        assert transition is not None
        assert transition.event is None  # no second Succeeded
        after = transition.status
        assert (after.phase, after.completion_time, after.conditions) == (
            before.phase, before.completion_time, before.conditions
        )  # fmt: skip
        assert (after.items_done, after.progress) == ("2/2", 100)
        assert after.message == "1 of 2 items succeeded; 1 cancelled"
        assert after.items == items
    # Every item cancelled afterwards: still the phase it ended with.
    every = items_progress(before, items_of("Cancelled", "Cancelled"), generation=1, now=NOW)
    assert every is not None
    assert (every.status.phase, every.status.message) == (
        Phase.SUCCEEDED, "all 2 items were cancelled"
    )  # fmt: skip
    # Nothing new: no transition.
    assert items_progress(every.status, every.status.items or [], generation=1, now=NOW) is None
