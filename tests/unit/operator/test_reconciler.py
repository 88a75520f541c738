"""The reconciler's transitions, through the in-memory gateway: what it writes, in which
order, how many API-server requests each MediaJob costs, and how it recovers from a crash,
a lost race or a Job deleted by hand. (The same behaviours against the real cluster:
tests/integration/test_mediajob*.py.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mediaflow_core import constants as c
from mediaflow_core.naming import MediaJobRef, job_name
from mediaflow_operator.builders import url_secret_name
from mediaflow_operator.config import OperatorSettings
from mediaflow_operator.gateway import ConflictError
from mediaflow_operator.observed import JobView, Key, PodView, Store
from mediaflow_operator.reconciler import Reconciler, Requeue
from mediaflow_worker.report import failure_message, success_message
from tests.unit.operator.fake_gateway import FakeGateway

NS = "team"
T0 = datetime(2026, 12, 2, 10, 0, 0, tzinfo=UTC)
RESULT = {"size": 1234, "contentType": "image/webp", "format": "webp", "width": 640,
          "height": 480, "duration": None}  # fmt: skip


def spec(key: str = f"{NS}/uploads/a/input", **extra: Any) -> dict[str, Any]:
    return {
        "operation": "ImageConvert",
        "input": {"object": {"key": key}},
        "imageConvert": {"format": "webp"},
        **extra,
    }


class World:
    """A fake cluster, the store its watches would fill, and a reconciler with a clock."""

    def __init__(self) -> None:
        self.gateway = FakeGateway()
        self.store = Store()
        self.now = T0
        self.settings = OperatorSettings(
            s3_endpoint="http://minio:9000",
            s3_access_key="a",
            s3_secret_key="b",  # noqa: S106
        )
        self.reconciler = Reconciler(self.gateway, self.store, self.settings, lambda: self.now)

    def create(self, name: str, body_spec: dict[str, Any] | None = None, **meta: Any) -> Key:
        self.gateway.objects[f"{NS}/uploads/a/input"] = b"x" * 100
        self.gateway.add_mediajob(NS, name, body_spec or spec(), **meta)
        return self.sync(Key(NS, name))

    def sync(self, key: Key) -> Key:
        """What the watches deliver: the stored MediaJob and Job as the fake has them."""
        body = self.gateway.mediajobs.get((key.namespace, key.name))
        if body is None:
            self.store.forget_mediajob(key)
        else:
            self.store.put_mediajob(json.loads(json.dumps(body)))
        return key

    def reconcile(self, key: Key) -> Requeue | None:
        self.sync(key)
        return self.reconciler.reconcile(key)

    def mj(self, key: Key) -> dict[str, Any]:
        return self.gateway.mediajob(key.namespace, key.name)

    def job_name(self, key: Key) -> str:
        return job_name(MediaJobRef.from_body(self.mj(key)))

    def job_body(self, key: Key) -> dict[str, Any]:
        return self.gateway.jobs[key.namespace, self.job_name(key)]

    def pod(self, key: Key, name: str = "p1", **status: Any) -> None:
        body = {
            "metadata": {"name": name, "creationTimestamp": self.now.strftime("%FT%TZ")},
            "status": status,
        }
        self.store.put_pod(key, PodView.from_body(body))


def secret_name(key: Key) -> str:
    return url_secret_name(MediaJobRef(key.name, key.namespace, f"uid-{key.name}"))


def condition(body: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(x for x in body["status"]["conditions"] if x["type"] == type_)


def running(started: str = "2026-12-02T10:00:02Z") -> dict[str, Any]:
    return {
        "phase": "Running",
        "containerStatuses": [{"name": "worker", "state": {"running": {"startedAt": started}}}],
    }


def terminated(exit_code: int, message: str, reason: str = "Completed") -> dict[str, Any]:
    state = {"exitCode": exit_code, "reason": reason, "message": message,
             "startedAt": "2026-12-02T10:00:02Z", "finishedAt": "2026-12-02T10:00:03Z"}  # fmt: skip
    return {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "containerStatuses": [{"name": "worker", "state": {"terminated": state}}],
    }


@pytest.fixture
def world() -> World:
    return World()


def test_a_new_mediajob_gets_its_job_then_secret_then_status_then_finalizer_and_label(
    world: World,
) -> None:
    key = world.create("photo")
    assert world.reconcile(key) is None
    mj = world.mj(key)
    assert mj["status"]["phase"] == "Pending"
    assert mj["status"]["jobName"] == world.job_name(key)
    assert condition(mj, "Accepted")["status"] == "True"
    assert mj["metadata"]["finalizers"] == [c.FINALIZER]
    assert mj["metadata"]["labels"] == {c.LABEL_PHASE: "Pending"}
    assert list(world.gateway.jobs) == [(NS, world.job_name(key))]
    assert list(world.gateway.secrets) == [(NS, secret_name(key))]
    assert world.gateway.requests == {
        "POST jobs": 1, "POST secrets": 1, "PATCH mediajobs/status": 1, "PATCH mediajobs": 1,
    }  # fmt: skip
    # The watch's echo of these writes decides nothing new: no request.
    world.reconcile(key)
    assert world.gateway.api_requests() == 4


def test_the_result_is_recorded_from_the_pod_and_the_job_goes_without_waiting_for_it(
    world: World,
) -> None:
    key = world.create("photo")
    world.reconcile(key)
    world.pod(key, **running())
    world.reconcile(key)
    assert world.mj(key)["status"]["phase"] == "Running"
    assert world.mj(key)["metadata"]["labels"][c.LABEL_PHASE] == "Running"
    world.now = T0 + timedelta(seconds=4)
    # The Job controller has not marked the Job Complete: the pod's message is enough.
    world.pod(key, **terminated(0, success_message(dict(RESULT))))
    world.reconcile(key)
    mj = world.mj(key)
    assert mj["status"]["phase"] == "Succeeded"
    assert mj["status"]["result"] == {
        "bucket": "media", "key": f"{NS}/results/uid-photo/output", "size": 1234,
        "contentType": "image/webp", "width": 640, "height": 480,
        "url": f"http://files.test/media/{NS}/results/uid-photo/output?name=photo.webp",
        "urlExpiresAt": "2026-12-03T00:00:00Z",
    }  # fmt: skip
    assert mj["status"]["progress"] == 100
    assert mj["status"]["startTime"] == "2026-12-02T10:00:02Z"
    assert mj["status"]["duration"] == "2s"
    assert mj["metadata"]["labels"][c.LABEL_PHASE] == "Succeeded"
    assert world.gateway.jobs == {}  # the Job went, and its Secret with it
    assert world.gateway.secrets == {}
    assert world.gateway.events == [("photo", "Normal", "Succeeded", "conversion succeeded")]
    # Pending, Running, Succeeded: at most 10 requests for the whole life of the MediaJob.
    assert world.gateway.api_requests() == 10, world.gateway.requests
    world.reconcile(key)  # late events of the deleted Job and pod change nothing
    assert world.gateway.api_requests() == 10


def test_a_pod_that_ends_before_running_is_seen_costs_two_requests_less(world: World) -> None:
    key = world.create("quick")
    world.reconcile(key)
    world.pod(key, **terminated(0, success_message(dict(RESULT))))
    world.reconcile(key)
    assert world.mj(key)["status"]["phase"] == "Succeeded"
    assert world.gateway.api_requests() == 8, world.gateway.requests


def test_a_missing_input_fails_at_once_without_a_job(world: World) -> None:
    key = world.create("missing", spec(key=f"{NS}/uploads/none/input"))
    world.reconcile(key)
    mj = world.mj(key)
    assert mj["status"]["phase"] == "Failed"
    assert condition(mj, "Accepted")["reason"] == "InputNotFound"
    assert condition(mj, "Succeeded")["reason"] == "InputNotFound"
    assert "does not exist" in mj["status"]["message"]
    assert mj["metadata"]["labels"][c.LABEL_PHASE] == "Failed"
    assert world.gateway.jobs == {}
    assert [e[1:3] for e in world.gateway.events] == [("Warning", "InputNotFound")]
    assert world.gateway.api_requests() == 3  # status, finalizer + label, Event


def test_an_invalid_spec_is_refused_with_the_validation_message(world: World) -> None:
    key = world.create("bad", {"operation": "ImageConvert", "input": {"object": {"key": "x"}}})
    world.reconcile(key)
    mj = world.mj(key)
    assert condition(mj, "Accepted")["reason"] == "InvalidSpec"
    assert world.gateway.jobs == {}


def test_a_crash_after_the_job_was_made_is_resumed_with_exactly_one_job(world: World) -> None:
    key = world.create("photo")
    world.gateway.fail_next["POST secrets"] = RuntimeError("the operator died here")
    with pytest.raises(RuntimeError):
        world.reconcile(key)
    assert len(world.gateway.jobs) == 1
    assert world.gateway.secrets == {}
    assert "status" not in world.mj(key)
    # A new operator: an empty store, and the watch has not delivered the Job yet.
    world.store = Store()
    world.reconciler = Reconciler(world.gateway, world.store, world.settings, lambda: world.now)
    world.reconcile(key)
    assert len(world.gateway.jobs) == 1  # adopted, not made again
    assert list(world.gateway.secrets) == [(NS, secret_name(key))]
    assert world.mj(key)["status"]["phase"] == "Pending"


def test_a_job_of_that_name_owned_by_something_else_is_never_adopted(world: World) -> None:
    key = world.create("photo")
    name = world.job_name(key)
    world.gateway.jobs[NS, name] = {
        "metadata": {"name": name, "namespace": NS, "uid": "other",
                     "ownerReferences": [{"uid": "someone-else"}]},
    }  # fmt: skip
    world.reconcile(key)
    mj = world.mj(key)
    assert mj["status"]["phase"] == "Failed"
    assert condition(mj, "Accepted")["reason"] == "JobConflict"
    assert world.gateway.jobs[NS, name]["metadata"]["uid"] == "other"


def test_a_foreign_secret_of_the_jobs_secret_name_deletes_the_job(world: World) -> None:
    key = world.create("photo")
    world.gateway.secrets[NS, secret_name(key)] = {"metadata": {"name": "x"}}
    world.reconcile(key)
    mj = world.mj(key)
    assert condition(mj, "Accepted")["reason"] == "SecretConflict"
    assert world.gateway.jobs == {}


def test_an_unschedulable_pod_says_why_once_and_fails_with_that_reason_at_its_deadline(
    world: World,
) -> None:
    key = world.create("big")
    world.reconcile(key)
    verdict = "0/1 nodes are available: 1 Insufficient cpu."
    world.pod(key, phase="Pending", conditions=[{"type": "PodScheduled", "status": "False",
              "reason": "Unschedulable", "message": verdict}])  # fmt: skip
    world.reconcile(key)
    mj = world.mj(key)
    assert mj["status"]["phase"] == "Pending"
    assert mj["status"]["message"] == f"waiting for the conversion pod to start: {verdict}"
    assert condition(mj, "Succeeded")["reason"] == "Unschedulable"
    assert world.gateway.events == [("big", "Warning", "Unschedulable", mj["status"]["message"])]
    world.reconcile(key)
    assert len(world.gateway.events) == 1  # said once
    # The deadline: the Job controller deletes the pod, then (seen later) fails the Job.
    world.store.pod_deleted(key, "p1")
    world.reconcile(key)
    assert condition(world.mj(key), "Succeeded")["reason"] == "Unschedulable"
    job = JobView.from_body(world.job_body(key))
    world.store.put_job(key, JobView(job.name, job.uid, job.owner_uids, "Failed",
                                     "DeadlineExceeded", 300))  # fmt: skip
    world.reconcile(key)
    mj = world.mj(key)
    assert mj["status"]["phase"] == "Failed"
    assert condition(mj, "Succeeded")["reason"] == "Unschedulable"
    assert mj["status"]["message"] == (
        f"the conversion pod could not be scheduled within its 300s limit; nothing ran: {verdict}"
    )
    assert world.gateway.events[-1][1:3] == ("Warning", "Unschedulable")


def test_a_deadline_after_the_pod_ran_says_it_took_too_long(world: World) -> None:
    key = world.create("slow")
    world.reconcile(key)
    world.pod(key, **running())
    world.reconcile(key)
    job = JobView.from_body(world.job_body(key))
    world.store.put_job(key, JobView(job.name, job.uid, job.owner_uids, "Failed",
                                     "DeadlineExceeded", 300))  # fmt: skip
    world.reconcile(key)
    mj = world.mj(key)
    assert condition(mj, "Succeeded")["reason"] == "DeadlineExceeded"
    assert mj["status"]["message"] == "the conversion took longer than its 300s limit"


def test_hostile_input_fails_from_the_pod_with_the_workers_words(world: World) -> None:
    key = world.create("evil")
    world.reconcile(key)
    says = "the input is text/plain content, not JPEG"
    world.pod(key, **terminated(c.EXIT_INVALID_INPUT, failure_message("InvalidInput", says)))
    world.reconcile(key)
    mj = world.mj(key)
    assert condition(mj, "Succeeded")["reason"] == "InvalidInput"
    assert mj["status"]["message"] == says
    assert world.gateway.jobs == {}


def test_transient_failures_wait_for_the_job_and_report_the_last_error(world: World) -> None:
    key = world.create("flaky")
    world.reconcile(key)
    world.pod(key, "p1", **terminated(c.EXIT_TRANSIENT, failure_message("TransientError", "x")))
    world.reconcile(key)
    assert world.mj(key)["status"]["phase"] == "Running"  # the Job retries
    world.now += timedelta(seconds=1)
    world.pod(key, "p2", **terminated(c.EXIT_TRANSIENT, failure_message("TransientError", "y")))
    job = JobView.from_body(world.job_body(key))
    world.store.put_job(key, JobView(job.name, job.uid, job.owner_uids, "Failed",
                                     "BackoffLimitExceeded", 300))  # fmt: skip
    world.reconcile(key)
    mj = world.mj(key)
    assert condition(mj, "Succeeded")["reason"] == "RetriesExhausted"
    assert mj["status"]["message"] == "the conversion failed 2 times; last error: y"


def test_a_job_deleted_by_hand_fails_the_mediajob(world: World) -> None:
    key = world.create("orphan")
    world.reconcile(key)
    world.pod(key, **running())
    world.reconcile(key)
    job = world.job_body(key)
    del world.gateway.jobs[NS, world.job_name(key)]
    world.store.job_deleted(key, job["metadata"]["uid"])
    world.reconcile(key)
    mj = world.mj(key)
    assert condition(mj, "Succeeded")["reason"] == "JobDeleted"
    # And one gone while the operator was down: the store never saw it.
    other = world.create("orphan2")
    world.reconcile(other)
    world.store = Store()
    world.reconciler = Reconciler(world.gateway, world.store, world.settings, lambda: world.now)
    del world.gateway.jobs[NS, world.job_name(other)]
    world.reconcile(other)
    assert condition(world.mj(other), "Succeeded")["reason"] == "JobDeleted"


def test_cancel_stops_the_job_and_deletes_its_own_upload(world: World) -> None:
    key = world.create("stop", annotations={c.ANNOTATION_DELETE_INPUT: "true"},
                       body_spec=spec(key=f"{NS}/uploads/stop/input"))  # fmt: skip
    world.gateway.objects[f"{NS}/uploads/stop/input"] = b"x"
    world.reconcile(key)
    world.gateway.objects[f"{NS}/results/uid-stop/output"] = b"partial"
    world.gateway.mediajobs[NS, "stop"]["metadata"]["annotations"][c.ANNOTATION_CANCEL] = "true"
    world.reconcile(key)
    mj = world.mj(key)
    assert mj["status"]["phase"] == "Cancelled"
    assert mj["metadata"]["labels"][c.LABEL_PHASE] == "Cancelled"
    assert world.gateway.jobs == {}
    assert f"{NS}/results/uid-stop/output" not in world.gateway.objects
    assert f"{NS}/uploads/stop/input" not in world.gateway.objects


def test_a_finished_mediajob_expires_after_its_ttl(world: World) -> None:
    key = world.create("brief", spec(ttlSecondsAfterFinished=30))
    world.reconcile(key)
    world.pod(key, **terminated(0, success_message(dict(RESULT))))
    requeue = world.reconcile(key)
    assert requeue == Requeue(30.0)
    world.now += timedelta(seconds=29)
    assert world.reconcile(key) == Requeue(1.0)
    world.now += timedelta(seconds=1)
    assert world.reconcile(key) is None
    # Deleted: it waits for its finalizer, which the next pass runs.
    assert world.mj(key)["metadata"]["deletionTimestamp"]
    world.reconcile(key)
    assert (NS, "brief") not in world.gateway.mediajobs


def test_deleting_a_running_mediajob_removes_its_job_and_objects_then_its_finalizer(
    world: World,
) -> None:
    key = world.create("gone")
    world.reconcile(key)
    world.gateway.objects[f"{NS}/results/uid-gone/output"] = b"x"
    world.gateway.delete_mediajob(NS, "gone", "uid-gone")
    world.reconcile(key)
    assert (NS, "gone") not in world.gateway.mediajobs
    assert world.gateway.jobs == {}
    assert not [k for k in world.gateway.objects if k.startswith(f"{NS}/results/")]


def test_a_lost_race_is_retried_soon_and_writes_nothing_twice(world: World) -> None:
    key = world.create("race")
    world.reconcile(key)
    world.pod(key, **running())
    world.gateway.fail_next["PATCH mediajobs/status"] = ConflictError("modified")
    assert world.reconcile(key) == Requeue(1.0)
    world.reconcile(key)
    assert world.mj(key)["status"]["phase"] == "Running"


def test_a_mediajob_of_an_earlier_operator_gets_its_label_on_first_sight(world: World) -> None:
    key = world.create("old", finalizers=[c.FINALIZER])
    world.gateway.mediajobs[NS, "old"]["status"] = {"phase": "Succeeded", "conditions": []}
    world.reconcile(key)
    assert world.mj(key)["metadata"]["labels"] == {c.LABEL_PHASE: "Succeeded"}
    assert world.gateway.requests == {"PATCH mediajobs": 1}


def test_a_finished_job_seen_before_its_pod_waits_for_the_pods_news(world: World) -> None:
    key = world.create("early")
    world.reconcile(key)
    job = JobView.from_body(world.job_body(key))
    complete = JobView(job.name, job.uid, job.owner_uids, "Complete", "", 300,
                       finished_at="2026-12-02T10:00:00Z")  # fmt: skip
    world.store.put_job(key, complete)
    assert world.reconcile(key) == Requeue(1.0)  # not ResultMissing: the pod's event lags
    world.pod(key, **terminated(0, success_message(dict(RESULT))))
    world.reconcile(key)
    assert world.mj(key)["status"]["phase"] == "Succeeded"
    # Without any pod news for long, the Job alone decides.
    other = world.create("silent")
    world.reconcile(other)
    job = JobView.from_body(world.job_body(other))
    world.store.put_job(other, JobView(job.name, job.uid, job.owner_uids, "Complete", "", 300,
                                       finished_at="2026-12-02T09:59:00Z"))  # fmt: skip
    world.reconcile(other)
    assert condition(world.mj(other), "Succeeded")["reason"] == "ResultMissing"
