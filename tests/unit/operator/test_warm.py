"""The warm path's decisions through the in-memory gateway: which MediaJobs share a warm pod,
the bounds, the mailbox the operator writes, outcomes from the pod's log, and what happens
when a warm pod ends without settling an item. (Against the real cluster:
tests/integration/test_warm_pods.py.)"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from mediaflow_core import constants as c
from mediaflow_core.naming import cancel_item_annotation
from mediaflow_core.session import Slot, slot_key
from mediaflow_operator.config import OperatorSettings
from mediaflow_operator.gateway import ConflictError
from mediaflow_operator.observed import Key, PodView, Store
from mediaflow_operator.reconciler import Reconciler
from mediaflow_operator.warm import Owner, Pool, PoolClosedError, Session, may_take, owner_of
from tests.unit.operator.fake_gateway import FakeGateway
from tests.unit.operator.test_reconciler import NS, RESULT, T0, spec

pytestmark = pytest.mark.unit


class WarmWorld:
    def __init__(self, **settings: Any) -> None:
        self.gateway = FakeGateway()
        self.store = Store()
        self.woken: list[Key] = []
        self.clock = 1000.0
        self.now = T0
        # Every change of an item written at once, unless a test spaces the writes.
        settings.setdefault("items_status_interval_ms", 0)
        self.settings = OperatorSettings(
            s3_endpoint="http://minio:9000",
            s3_access_key="a",
            s3_secret_key="b",  # noqa: S106
            **settings,
        )
        self.pool = Pool(self.gateway, self.settings, self.woken.append, lambda: self.clock)
        self.pool.spawn = lambda target, *args: None  # no log follower threads here
        self.reconciler = Reconciler(
            self.gateway, self.store, self.settings, lambda: self.now, pool=self.pool
        )

    def create(self, name: str, user: str = "alice", body_spec: dict | None = None) -> Key:
        self.gateway.objects[f"{NS}/uploads/a/input"] = b"x" * 100
        labels = {c.LABEL_OWNER: user} if user else {}
        self.gateway.add_mediajob(NS, name, body_spec or spec(), labels=labels)
        return self.reconcile(Key(NS, name))

    def reconcile(self, key: Key) -> Key:
        body = self.gateway.mediajobs.get((key.namespace, key.name))
        if body is not None:
            self.store.put_mediajob(json.loads(json.dumps(body)))
        self.reconciler.reconcile(key)
        return key

    def status(self, key: Key) -> dict[str, Any]:
        return self.gateway.mediajob(key.namespace, key.name).get("status") or {}

    def warm_jobs(self) -> list[str]:
        return [
            n
            for (_, n), j in self.gateway.jobs.items()
            if c.LABEL_SESSION in j["metadata"]["labels"]
        ]

    def log(self, job: str, *lines: dict[str, Any]) -> None:
        for line in lines:
            self.pool._line(NS, job, json.dumps(line))

    def uid(self, key: Key) -> str:
        return self.gateway.mediajob(key.namespace, key.name)["metadata"]["uid"]


def test_one_owners_image_jobs_share_one_warm_pod_through_its_mailbox() -> None:
    world = WarmWorld()
    a, b = world.create("a"), world.create("b")
    assert len(world.warm_jobs()) == 1
    job = world.warm_jobs()[0]
    sa, sb = world.status(a), world.status(b)
    assert (sa["jobName"], sa["sessionSlot"]) == (job, 0)
    assert (sb["jobName"], sb["sessionSlot"]) == (job, 1)
    assert sa["phase"] == "Pending"
    accepted = next(x for x in sa["conditions"] if x["type"] == "Accepted")
    assert accepted["reason"] == "WarmPod"
    # Slot 0's URL is in the pod's Secret; each slot holds one item and the next slot's URL.
    secret = world.gateway.secrets[NS, job]
    assert secret["stringData"][c.MAILBOX_URL_FILE].endswith(f"{slot_key(NS, job, 0)}?get")
    slot0 = Slot.from_json(world.gateway.objects[slot_key(NS, job, 0)])
    assert [i.id for i in slot0.items] == [world.uid(a)]
    assert slot0.items[0].output_url.endswith(f"{NS}/results/{world.uid(a)}/output?put")
    assert slot0.next_url.endswith(f"{slot_key(NS, job, 1)}?get")
    # The warm pod's Job: ours, labelled with its session and owner; no one-shot Job made.
    labels = world.gateway.jobs[NS, job]["metadata"]["labels"]
    assert labels[c.LABEL_SESSION] == job
    assert labels[c.LABEL_OWNER] == "alice"
    assert len(world.gateway.jobs) == 1


def test_owners_never_share_a_warm_pod() -> None:
    world = WarmWorld(warm_pods_per_owner=1)
    world.create("a", user="alice")
    world.create("b", user="bob")
    world.create("c", user="")  # a kubectl user of the namespace
    assert len(world.warm_jobs()) == 3
    owners = {
        world.gateway.jobs[NS, j]["metadata"]["labels"].get(c.LABEL_OWNER)
        for j in world.warm_jobs()
    }
    assert owners == {"alice", "bob", None}


def test_beyond_the_bounds_a_mediajob_gets_a_pod_of_its_own() -> None:
    world = WarmWorld(warm_pods_total=1)
    world.create("a", user="alice")
    b = world.create("b", user="bob")
    assert len(world.warm_jobs()) == 1
    assert world.status(b).get("sessionSlot") is None
    assert (NS, world.status(b)["jobName"]) in world.gateway.jobs  # its one-shot Job


def test_videos_and_own_resources_never_go_warm() -> None:
    world = WarmWorld()
    own = world.create("own", body_spec=spec(resources={"cpu": "1"}))
    video = world.create(
        "video",
        body_spec={"operation": "VideoThumbnail",
                   "input": {"object": {"key": f"{NS}/uploads/a/input"}},
                   "videoThumbnail": {"timestamp": "00:00:01"}},
    )  # fmt: skip
    assert world.warm_jobs() == []
    assert world.status(own).get("sessionSlot") is None
    assert world.status(video).get("sessionSlot") is None


def test_a_missing_input_fails_before_any_pod() -> None:
    world = WarmWorld()
    key = Key(NS, "missing")
    world.gateway.add_mediajob(NS, "missing", spec(key=f"{NS}/uploads/none/input"))
    world.reconcile(key)
    assert world.status(key)["phase"] == "Failed"
    assert world.warm_jobs() == []


def test_the_outcome_line_settles_the_mediajob_with_its_result() -> None:
    world = WarmWorld()
    key = world.create("a")
    job, uid = world.status(key)["jobName"], world.uid(key)
    world.log(job, {"event": "item-start", "item": uid})
    assert world.woken == [key]
    world.reconcile(key)
    assert world.status(key)["phase"] == "Running"
    world.log(job, {"event": "item", "item": uid, "result": RESULT})
    world.reconcile(key)
    status = world.status(key)
    assert status["phase"] == "Succeeded"
    assert status["result"]["key"] == f"{NS}/results/{uid}/output"
    assert status["result"]["width"] == 640
    assert status["result"]["url"]
    # The warm pod stays for the next item.
    assert (NS, job) in world.gateway.jobs


def test_a_final_failure_fails_only_its_item() -> None:
    world = WarmWorld()
    bad, good = world.create("bad"), world.create("good")
    job = world.status(bad)["jobName"]
    failure = {"reason": "InvalidInput", "message": "the png file cannot be read"}
    world.log(job, {"event": "item", "item": world.uid(bad), "failure": failure},
              {"event": "item", "item": world.uid(good), "result": RESULT})  # fmt: skip
    world.reconcile(bad)
    world.reconcile(good)
    assert world.status(bad)["phase"] == "Failed"
    assert world.status(bad)["message"] == "the png file cannot be read"
    assert world.status(good)["phase"] == "Succeeded"


def test_a_transient_failure_or_a_pod_that_ends_first_gives_the_item_a_pod_of_its_own() -> None:
    world = WarmWorld()
    broke, later = world.create("broke"), world.create("later")
    job = world.status(broke)["jobName"]
    failure = {"reason": "TransientError", "message": "ffmpeg was killed by signal 9"}
    world.log(job, {"event": "item", "item": world.uid(broke), "failure": failure},
              {"event": "session-end", "reason": "unsound"})  # fmt: skip
    world.reconcile(broke)
    status = world.status(broke)
    assert status.get("sessionSlot") is None
    assert status["phase"] == "Pending"
    assert status["jobName"] != job
    assert (NS, status["jobName"]) in world.gateway.jobs
    assert (
        "killed by signal 9"
        in next(x for x in status["conditions"] if x["type"] == "Accepted")["message"]
    )
    # The pod ends; its log is read to the end without `later`: a pod of its own, too.
    world.pool.spawn = lambda target, *args: target(*args)  # the follower, in line
    world.gateway.logs[NS, "p"] = ""  # read again from the start: nothing new
    world.pool.pod_seen(NS, job, PodView(name="p", created="", phase="Succeeded"))
    assert Key(NS, "later") in world.woken
    world.reconcile(later)
    assert world.status(later).get("sessionSlot") is None
    assert (NS, world.status(later)["jobName"]) in world.gateway.jobs
    # The ended warm pod's Job and mailbox are gone.
    assert (NS, job) not in world.gateway.jobs
    assert not [k for k in world.gateway.objects if k.startswith(f"_sessions/{NS}/{job}/")]


def test_cancelling_a_queued_item_revokes_its_slot() -> None:
    world = WarmWorld()
    key = world.create("a")
    job, slot = world.status(key)["jobName"], world.status(key)["sessionSlot"]
    body = world.gateway.mediajobs[NS, "a"]
    body["metadata"]["annotations"] = {c.ANNOTATION_CANCEL: "true"}
    world.reconcile(key)
    assert world.status(key)["phase"] == "Cancelled"
    assert Slot.from_json(world.gateway.objects[slot_key(NS, job, slot)]).items == ()
    assert (NS, job) in world.gateway.jobs  # the warm pod is not the cancelled item's
    # A result the pod still reports for it is deleted.
    world.gateway.objects[f"{NS}/results/{world.uid(key)}/output"] = b"late"
    world.log(job, {"event": "item", "item": world.uid(key), "result": RESULT})
    assert f"{NS}/results/{world.uid(key)}/output" not in world.gateway.objects


def test_a_warm_pod_stops_taking_items_near_its_idle_end_and_lifetime() -> None:
    settings = OperatorSettings(
        s3_endpoint="http://minio:9000", s3_access_key="a", s3_secret_key="b",  # noqa: S106
        warm_idle_seconds=60, warm_lifetime_seconds=600, warm_queue=2,
    )  # fmt: skip
    session = Session(NS, "w", Owner(NS, "u"), born=0.0, accepting=True, last_activity=0.0)
    assert may_take(session, settings, 10.0)
    assert not may_take(session, settings, 56.0)  # idle for 56 of 60 s: it may be gone
    session.queued = 1
    assert may_take(session, settings, 56.0)  # busy: its idle time has not begun
    session.queued = 2
    assert not may_take(session, settings, 10.0)  # its queue is full
    session.queued = 1
    assert not may_take(session, settings, 596.0)  # its lifetime is nearly over
    session.ended_line = True
    assert not may_take(session, settings, 10.0)


def test_after_a_restart_known_warm_pods_get_no_new_items_but_are_followed() -> None:
    world = WarmWorld()
    key = world.create("a")
    job = world.status(key)["jobName"]
    # A new operator: an empty pool; the watch brings the warm pod's Job, then the MediaJob.
    world.pool = Pool(world.gateway, world.settings, world.woken.append, lambda: world.clock)
    world.pool.spawn = lambda target, *args: None
    world.reconciler.pool = world.pool
    world.pool.job_seen(world.gateway.jobs[NS, job], deleted=False)
    world.reconcile(key)
    assert world.status(key)["sessionSlot"] == 0  # still waiting on its warm pod
    world.log(job, {"event": "item", "item": world.uid(key), "result": RESULT})
    assert key in world.woken
    world.reconcile(key)
    assert world.status(key)["phase"] == "Succeeded"
    other = world.create("b")
    assert world.status(other)["jobName"] != job  # a fresh warm pod


def test_a_warm_pod_found_after_a_restart_is_closed_after_what_it_holds() -> None:
    """The new operator closes a found pod's mailbox after its last slot (it converts what
    it holds and ends, rather than idling out as its owner's one warm pod), and writes a slot
    the old operator reserved but never wrote empty, so the pod does not wait for it."""
    world = WarmWorld()
    a, b, c_ = world.create("a"), world.create("b"), world.create("c")
    job = world.status(a)["jobName"]
    assert [world.status(k)["sessionSlot"] for k in (a, b, c_)] == [0, 1, 2]
    del world.gateway.objects[slot_key(NS, job, 1)]  # reserved, then the operator died
    world.pool = Pool(world.gateway, world.settings, world.woken.append, lambda: world.clock)
    spawned: list[tuple] = []
    world.pool.spawn = lambda target, *args: spawned.append((target, args))
    world.reconciler.pool = world.pool
    world.pool.job_seen(world.gateway.jobs[NS, job], deleted=False)
    assert [(t.__name__, args) for t, args in spawned] == [("_close_found", (NS, job))]
    # A found Job that has finished: its pod reads nothing more, nothing to close.
    done = json.loads(json.dumps(world.gateway.jobs[NS, job]))
    done["metadata"]["name"] = "mf-warm-done"
    done["metadata"]["labels"][c.LABEL_SESSION] = "mf-warm-done"
    done["metadata"]["labels"][c.LABEL_OWNER] = "bob"  # not alice's: no bearing on hers below
    done["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    world.pool.job_seen(done, deleted=False)
    assert len(spawned) == 1
    world.pool._close_found(NS, job)
    gap = Slot.from_json(world.gateway.objects[slot_key(NS, job, 1)])
    assert gap.items == ()  # revoked: the pod reads on
    assert gap.next_url
    assert Slot.from_json(world.gateway.objects[slot_key(NS, job, 2)]).items  # kept
    closing = Slot.from_json(world.gateway.objects[slot_key(NS, job, 3)])
    assert (closing.items, closing.next_url) == ((), "")
    assert slot_key(NS, job, 4) not in world.gateway.objects
    # A found pod whose mailbox is gone (it ended and was cleaned up) gets no slot written.
    world.pool._close_found(NS, "mf-warm-gone")
    assert not world.gateway.object_keys(f"_sessions/{NS}/mf-warm-gone/")
    # Its end (the log read to the end) leaves the owner free to get a warm pod again; the
    # item of the slot never written is placed anew (here: a Job of its own).
    session = next(s for s in world.pool.sessions() if s.name == job)
    for key in (a, b, c_):
        world.reconcile(key)  # the new operator learns which items wait on it
    with world.pool._lock:
        world.pool._drained(session)
    world.reconcile(b)
    assert world.status(b)["jobName"] != job
    d = world.create("d")
    assert world.status(d)["jobName"] in world.warm_jobs()
    assert world.status(d)["jobName"] != job


def test_owner_of_reads_namespace_and_user_label() -> None:
    body = {"metadata": {"namespace": "n", "labels": {c.LABEL_OWNER: "u1"}}}
    assert owner_of(body) == Owner("n", "u1")
    assert owner_of({"metadata": {"namespace": "n"}}) == Owner("n", "")


def test_a_job_a_previous_run_made_is_adopted_not_left_for_a_warm_pod() -> None:
    """Just after a restart the watch may not have listed the Job a crashed run made for a
    MediaJob: the operator asks, and adopts it."""
    from mediaflow_core.mediajob import MediaJobSpec
    from mediaflow_core.naming import MediaJobRef, job_name
    from mediaflow_operator.builders import build_job

    world = WarmWorld()
    world.gateway.objects[f"{NS}/uploads/a/input"] = b"x" * 100
    body = world.gateway.add_mediajob(NS, "left", spec())
    ref = MediaJobRef.from_body(body)
    world.gateway.create_job(
        build_job(ref, MediaJobSpec.model_validate(spec()), world.settings, input_size=100)
    )
    world.reconcile(Key(NS, "left"))
    assert world.status(Key(NS, "left"))["jobName"] == job_name(ref)
    assert world.warm_jobs() == []


# Many inputs (spec.inputs).


def many(*keys: str, **extra: Any) -> dict[str, Any]:
    return {
        "operation": "ImageConvert",
        "inputs": [{"object": {"key": k}} for k in keys],
        "imageConvert": {"format": "webp"},
        **extra,
    }


def item(uid: str, index: int) -> str:
    return f"{uid}.{index}"


def test_a_mediajob_of_many_inputs_queues_them_in_one_pod_and_fails_a_missing_one_alone() -> None:
    world = WarmWorld()
    world.gateway.objects[f"{NS}/in/b"] = b"y" * 10
    key = world.create(
        "many", body_spec=many(f"{NS}/uploads/a/input", f"{NS}/in/none", f"{NS}/in/b")
    )
    status = world.status(key)
    assert status["phase"] == "Pending"
    assert status["itemsDone"] == "1/3"
    items = status["items"]
    assert [i["phase"] for i in items] == ["Pending", "Failed", "Pending"]
    assert items[1]["reason"] == "InputNotFound"
    job = items[0]["jobName"]
    assert items[2]["jobName"] == job
    assert (items[0]["sessionSlot"], items[2]["sessionSlot"]) == (0, 1)
    uid = world.uid(key)
    slot1 = Slot.from_json(world.gateway.objects[slot_key(NS, job, 1)])
    assert slot1.items[0].id == item(uid, 2)
    assert slot1.items[0].output_url.endswith(f"{NS}/results/{uid}/items/002/output?put")

    world.log(job, {"event": "item-start", "item": item(uid, 0)})
    world.reconcile(key)
    assert world.status(key)["phase"] == "Running"
    assert world.status(key)["items"][0]["phase"] == "Running"
    failure = {"reason": "InvalidInput", "message": "not an image"}
    world.log(job, {"event": "item", "item": item(uid, 0), "result": RESULT},
              {"event": "item", "item": item(uid, 2), "failure": failure})  # fmt: skip
    world.reconcile(key)
    status = world.status(key)
    assert status["phase"] == "Succeeded"
    assert status["itemsDone"] == "3/3"
    succeeded = next(x for x in status["conditions"] if x["type"] == "Succeeded")
    assert succeeded["reason"] == "SomeItemsFailed"
    assert "1 of 3 items succeeded" in status["message"]
    result = status["items"][0]["result"]
    assert result["key"] == f"{NS}/results/{uid}/items/000/output"
    assert result["url"]
    assert status["items"][2]["reason"] == "InvalidInput"


def test_a_running_mediajob_of_many_inputs_writes_its_status_at_most_once_a_second() -> None:
    world = WarmWorld(items_status_interval_ms=1000)
    world.gateway.objects[f"{NS}/in/b"] = b"y" * 10
    inputs = [f"{NS}/uploads/a/input", f"{NS}/in/b", f"{NS}/in/b", f"{NS}/in/b"]
    key = world.create("spaced", body_spec=many(*inputs))
    uid, job = world.uid(key), world.status(key)["items"][0]["jobName"]

    def writes() -> int:
        return world.gateway.requests["PATCH mediajobs/status"]

    # The first change is written at once: the MediaJob is Running.
    world.log(job, {"event": "item-start", "item": item(uid, 0)})
    world.reconcile(key)
    assert world.status(key)["phase"] == "Running"
    first = writes()
    # Within the second, more changes wait for one write at its end.
    world.log(job, {"event": "item", "item": item(uid, 0), "result": RESULT},
              {"event": "item-start", "item": item(uid, 1)})  # fmt: skip
    held = world.reconciler.reconcile(key)
    assert held is not None
    assert held.seconds == pytest.approx(1.0)
    world.now += timedelta(seconds=0.4)
    assert world.reconciler.reconcile(key).seconds == pytest.approx(0.6)  # type: ignore[union-attr]
    assert writes() == first
    assert world.status(key)["itemsDone"] == "0/4"
    world.now += timedelta(seconds=0.6)
    world.reconcile(key)
    assert writes() == first + 1
    assert world.status(key)["itemsDone"] == "1/4"
    assert world.status(key)["items"][1]["phase"] == "Running"
    # An input to cancel is not held back.
    cancel_item(world, key, 3)
    assert world.status(key)["items"][3]["phase"] == "Cancelled"
    # Nor is the write that finishes the MediaJob, a moment after the last one.
    world.now += timedelta(seconds=0.1)
    world.log(job, {"event": "item", "item": item(uid, 1), "result": RESULT},
              {"event": "item", "item": item(uid, 2), "result": RESULT})  # fmt: skip
    world.reconcile(key)
    assert world.status(key)["phase"] == "Succeeded"
    assert key not in world.reconciler.items_written


def test_an_input_its_pod_did_not_settle_gets_another_pod_then_fails_after_three() -> None:
    world = WarmWorld()
    key = world.create("retry", body_spec=many(f"{NS}/uploads/a/input"))
    uid = world.uid(key)
    world.pool.spawn = lambda target, *args: target(*args)
    for attempt in (1, 2, 3):
        job = world.status(key)["items"][0]["jobName"]
        assert world.status(key)["items"][0]["attempts"] == attempt
        world.gateway.logs[NS, f"p{attempt}"] = json.dumps(
            {"event": "item", "item": item(uid, 0),
             "failure": {"reason": "TransientError", "message": "cwebp was killed by signal 9"}}
        )  # fmt: skip
        world.pool.pod_seen(NS, job, PodView(name=f"p{attempt}", created="", phase="Failed"))
        world.reconcile(key)
    status = world.status(key)
    assert status["phase"] == "Failed"
    assert status["items"][0]["reason"] == "TransientError"
    assert "given up after 3 pods" in status["items"][0]["message"]


def test_all_inputs_failing_fails_the_mediajob_and_cancel_revokes_queued_inputs() -> None:
    world = WarmWorld()
    key = world.create("bad", body_spec=many(f"{NS}/in/x", f"{NS}/in/y"))
    assert world.status(key)["phase"] == "Failed"
    assert (
        next(x for x in world.status(key)["conditions"] if x["type"] == "Succeeded")["reason"]
        == "InputNotFound"
    )

    other = world.create("cancel", body_spec=many(f"{NS}/uploads/a/input", f"{NS}/uploads/a/input"))
    job = world.status(other)["items"][0]["jobName"]
    world.gateway.mediajobs[NS, "cancel"]["metadata"]["annotations"] = {c.ANNOTATION_CANCEL: "true"}
    world.reconcile(other)
    assert world.status(other)["phase"] == "Cancelled"
    for slot in (0, 1):
        assert Slot.from_json(world.gateway.objects[slot_key(NS, job, slot)]).items == ()


def test_inputs_with_their_own_resources_get_a_pod_of_their_own() -> None:
    world = WarmWorld()
    a = world.create("shared", body_spec=many(f"{NS}/uploads/a/input"))
    b = world.create("own", body_spec=many(f"{NS}/uploads/a/input", resources={"cpu": "1"}))
    job_a, job_b = world.status(a)["items"][0]["jobName"], world.status(b)["items"][0]["jobName"]
    assert job_a != job_b
    container = world.gateway.jobs[NS, job_b]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"] == "1"
    c_ = world.create("later", body_spec=many(f"{NS}/uploads/a/input"))
    assert world.status(c_)["items"][0]["jobName"] == job_a  # the own pod takes nothing else


def test_a_warm_pod_that_cannot_start_ends_and_its_items_get_pods_of_their_own() -> None:
    world = WarmWorld()
    world.pool.spawn = lambda target, *args: target(*args)
    world.pool.start_grace_seconds = 0  # (20 s: a node freeing up in time keeps it)
    key = world.create("a")
    job = world.status(key)["jobName"]
    pod = PodView(name="p", created="", phase="Pending", unschedulable="0/1 nodes are available")
    world.pool.pod_seen(NS, job, pod)
    assert (NS, job) not in world.gateway.jobs  # ended
    world.pool.pod_seen(NS, job, PodView(name="p", created="", phase="Pending", deleted=True))
    assert key in world.woken
    world.reconcile(key)
    status = world.status(key)
    assert status.get("sessionSlot") is None
    assert (NS, status["jobName"]) in world.gateway.jobs  # a Job of its own says why it waits


def test_a_warm_pod_that_starts_within_the_grace_is_kept() -> None:
    world = WarmWorld()
    later: list[tuple] = []
    world.pool.spawn = lambda target, *args: later.append((target, args))
    world.pool.start_grace_seconds = 0
    key = world.create("a")
    job = world.status(key)["jobName"]
    waiting = PodView(name="p", created="", phase="Pending", unschedulable="Insufficient cpu")
    world.pool.pod_seen(NS, job, waiting)
    running = PodView(name="p", created="", phase="Running", started_at="2026-12-02T10:00:05Z")
    world.pool.pod_seen(NS, job, running)  # a node freed up: it starts (its log followed)
    for target, args in later:
        if target == world.pool._end_if_not_started:
            target(*args)
    assert (NS, job) in world.gateway.jobs
    assert world.pool.reserve(owner_of(world.gateway.mediajob(NS, "a")), Key(NS, "b"), "u-b")


def test_an_operator_shutting_down_closes_its_warm_pods_after_their_queues() -> None:
    world = WarmWorld()
    a, b = world.create("a"), world.create("b")
    job = world.status(a)["jobName"]
    world.pool.close_all()
    closing = Slot.from_json(world.gateway.objects[slot_key(NS, job, 2)])
    assert (closing.items, closing.next_url) == ((), "")
    assert world.status(b)["sessionSlot"] == 1  # queued before the closing slot
    # Nor does the stopping operator start anything else: neither a one-shot Job nor a new
    # warm pod (a rolling upgrade's next leader places the MediaJob; see Runtime.stop).
    jobs = set(world.gateway.jobs)
    with pytest.raises(PoolClosedError):
        world.create("c")
    assert world.status(Key(NS, "c")) == {}
    assert set(world.gateway.jobs) == jobs
    with pytest.raises(PoolClosedError):
        batch(world, "d", 3)
    assert world.status(Key(NS, "d")) == {}
    assert set(world.gateway.jobs) == jobs
    # Its pod ends (its log read to the end) while the operator still stops: the Job and its
    # log stay for the next leader, which writes the outcomes into the MediaJobs first.
    spawned: list[str] = []
    world.pool.spawn = lambda target, *args: spawned.append(target.__name__)
    session = next(s for s in world.pool.sessions() if s.name == job)
    with world.pool._lock:
        world.pool._drained(session)
    assert spawned == []
    assert (NS, job) in world.gateway.jobs


# One input cancelled alone (mediaflow.io/cancel-item-<index>): the API cancels one file of
# a batch request, whose files are the inputs of one MediaJob, each its own upload.


def batch(world: WarmWorld, name: str, n: int, **annotations: str) -> Key:
    """A MediaJob like the API's for a batch request: each file its own upload under the
    MediaJob's upload prefix, delete-input."""
    keys = [upload(name, i) for i in range(n)]
    for key in keys:
        world.gateway.objects[key] = b"x" * 100
    meta = {c.ANNOTATION_DELETE_INPUT: "true", **annotations}
    world.gateway.add_mediajob(NS, name, many(*keys), labels={c.LABEL_OWNER: "alice"},
                               annotations=meta)  # fmt: skip
    return world.reconcile(Key(NS, name))


def upload(name: str, index: int) -> str:
    return f"{NS}/uploads/{name}/job-{index}/input"


def item_output(world: WarmWorld, key: Key, index: int) -> str:
    return f"{NS}/results/{world.uid(key)}/items/{index:03d}/output"


def cancel_item(world: WarmWorld, key: Key, index: int) -> None:
    meta = world.gateway.mediajobs[key.namespace, key.name]["metadata"]
    meta.setdefault("annotations", {})[cancel_item_annotation(index)] = "true"
    world.reconcile(key)


def cancel_events(world: WarmWorld, name: str) -> list[str]:
    return [m for (n, _, r, m) in world.gateway.events if n == name and r == "ItemCancelled"]


def test_an_input_cancelled_while_queued_leaves_its_slot_its_files_go_and_the_rest_go_on() -> None:
    world = WarmWorld()
    key = batch(world, "b", 3)
    uid, job = world.uid(key), world.status(key)["items"][0]["jobName"]
    world.log(job, {"event": "item-start", "item": item(uid, 0)})
    world.reconcile(key)

    cancel_item(world, key, 1)
    status = world.status(key)
    cancelled = status["items"][1]
    assert (cancelled["phase"], cancelled["reason"]) == ("Cancelled", "Cancelled")
    assert "result" not in cancelled
    assert "cancel-item-1" in cancelled["message"]
    assert (status["phase"], status["itemsDone"]) == ("Running", "1/3")
    assert status["message"] == "1 of 3 items done (1 cancelled)"
    # Its slot is rewritten empty; the others' are untouched.
    slots = [Slot.from_json(world.gateway.objects[slot_key(NS, job, n)]) for n in range(3)]
    assert [[i.id for i in s.items] for s in slots] == [[item(uid, 0)], [], [item(uid, 2)]]
    # Its upload is gone, the others' stay; one Event names it.
    assert upload("b", 1) not in world.gateway.objects
    assert upload("b", 0) in world.gateway.objects
    assert upload("b", 2) in world.gateway.objects
    [event] = cancel_events(world, "b")
    assert event.startswith("input 1 cancelled on request (mediaflow.io/cancel-item-1)")
    # A result the pod still makes for it (it read the slot before it was emptied) goes
    # when its outcome line comes.
    world.gateway.objects[item_output(world, key, 1)] = b"late"
    world.log(job, {"event": "item", "item": item(uid, 1), "result": RESULT})
    assert item_output(world, key, 1) not in world.gateway.objects

    for n in (0, 2):
        world.gateway.objects[item_output(world, key, n)] = b"webp"
        world.log(job, {"event": "item", "item": item(uid, n), "result": RESULT})
    world.reconcile(key)
    status = world.status(key)
    assert (status["phase"], status["itemsDone"]) == ("Succeeded", "3/3")
    assert status["message"] == "2 of 3 items succeeded; 1 cancelled"
    assert [i["phase"] for i in status["items"]] == ["Succeeded", "Cancelled", "Succeeded"]
    assert status["items"][1] == cancelled  # settled news of others changes nothing of it
    assert len(cancel_events(world, "b")) == 1

    # Deleting the MediaJob deletes the rest: results, and every upload in one request.
    world.gateway.mediajobs[NS, "b"]["metadata"]["deletionTimestamp"] = "2026-12-02T11:00:00Z"
    world.reconcile(key)
    assert (NS, "b") not in world.gateway.mediajobs
    mine = (f"{NS}/results/{uid}/", f"{NS}/uploads/b/")
    assert not [k for k in world.gateway.objects if k.startswith(mine)]
    assert world.gateway.bulk_deletes[-1] == [upload("b", 0), upload("b", 1), upload("b", 2)]


def test_an_input_cancelled_while_its_pod_converts_it_loses_its_result_even_after_a_restart() -> (
    None
):
    world = WarmWorld()
    key = batch(world, "r", 2)
    uid, job = world.uid(key), world.status(key)["items"][0]["jobName"]
    world.log(job, {"event": "item-start", "item": item(uid, 0)})
    world.reconcile(key)
    assert world.status(key)["items"][0]["phase"] == "Running"
    # The operator restarts: a new pool that knows nothing of the warm pod yet.
    world.pool = Pool(world.gateway, world.settings, world.woken.append, lambda: world.clock)
    world.pool.spawn = lambda target, *args: None
    world.reconciler.pool = world.pool

    cancel_item(world, key, 0)
    assert world.status(key)["items"][0]["phase"] == "Cancelled"
    # The new pool learnt of the warm pod from its Job, so the result the pod still makes
    # is unwanted: deleted when its log (read again from the start) reports it.
    world.gateway.objects[item_output(world, key, 0)] = b"late"
    world.log(job, {"event": "item", "item": item(uid, 0), "result": RESULT})
    assert item_output(world, key, 0) not in world.gateway.objects
    assert upload("r", 0) not in world.gateway.objects
    world.log(job, {"event": "item", "item": item(uid, 1), "result": RESULT})
    world.reconcile(key)
    status = world.status(key)
    assert status["phase"] == "Succeeded"
    assert status["message"] == "1 of 2 items succeeded; 1 cancelled"


def test_an_input_cancelled_after_the_mediajob_finished_loses_its_files_not_the_phase() -> None:
    world = WarmWorld()
    key = batch(world, "f", 3)
    uid, job = world.uid(key), world.status(key)["items"][0]["jobName"]
    for n in range(3):
        world.gateway.objects[item_output(world, key, n)] = b"webp"
        world.log(job, {"event": "item", "item": item(uid, n), "result": RESULT})
    world.reconcile(key)
    before = world.status(key)
    assert (before["phase"], before["message"]) == ("Succeeded", "3 of 3 items succeeded")

    cancel_item(world, key, 2)
    after = world.status(key)
    assert after["phase"] == "Succeeded"
    for field in ("conditions", "completionTime", "startTime", "progress", "itemsDone"):
        assert after[field] == before[field]
    assert after["message"] == "2 of 3 items succeeded; 1 cancelled"
    assert after["items"][2]["phase"] == "Cancelled"
    assert "result" not in after["items"][2]
    assert after["items"][:2] == before["items"][:2]
    assert item_output(world, key, 2) not in world.gateway.objects
    assert upload("f", 2) not in world.gateway.objects
    for n in (0, 1):
        assert item_output(world, key, n) in world.gateway.objects
        assert upload("f", n) in world.gateway.objects
    assert len(cancel_events(world, "f")) == 1
    assert mj_label(world, "f") == "Succeeded"
    world.reconcile(key)  # nothing new
    assert len(cancel_events(world, "f")) == 1


def mj_label(world: WarmWorld, name: str) -> str:
    return world.gateway.mediajobs[NS, name]["metadata"]["labels"][c.LABEL_PHASE]


def test_an_input_cancelled_before_acceptance_is_never_placed_and_others_indexes_are_ignored() -> (
    None
):
    world = WarmWorld()
    early = {cancel_item_annotation(1): "true", cancel_item_annotation(7): "true"}
    key = batch(world, "e", 3, **early)
    status = world.status(key)
    assert [i["phase"] for i in status["items"]] == ["Pending", "Cancelled", "Pending"]
    assert "jobName" not in status["items"][1]
    assert status["itemsDone"] == "1/3"
    job = status["items"][0]["jobName"]
    uid = world.uid(key)
    slots = [Slot.from_json(world.gateway.objects[slot_key(NS, job, n)]) for n in range(2)]
    assert [[i.id for i in s.items] for s in slots] == [[item(uid, 0)], [item(uid, 2)]]
    assert slot_key(NS, job, 2) not in world.gateway.objects  # two slots, not three
    assert upload("e", 1) not in world.gateway.objects
    assert upload("e", 0) in world.gateway.objects
    assert len(cancel_events(world, "e")) == 1

    # Every input cancelled before acceptance: Cancelled, no pod made for it.
    pods_before = len(world.warm_jobs())
    every = {cancel_item_annotation(n): "true" for n in range(2)}
    key = batch(world, "all", 2, **every)
    status = world.status(key)
    assert (status["phase"], status["message"]) == ("Cancelled", "all 2 items were cancelled")
    assert len(world.warm_jobs()) == pods_before
    assert not [k for k in world.gateway.objects if k.startswith(f"{NS}/uploads/all/")]
    world.reconcile(key)
    assert mj_label(world, "all") == "Cancelled"


def test_an_input_another_still_names_is_kept_and_one_not_its_own_is_kept_with_a_warning() -> None:
    world = WarmWorld()
    own, shared = f"{NS}/uploads/twice/input", f"{NS}/photos/1.jpg"
    world.gateway.objects.update({own: b"x" * 10, shared: b"y" * 10})
    world.gateway.add_mediajob(NS, "twice", many(own, own, shared),
                               annotations={c.ANNOTATION_DELETE_INPUT: "true"})  # fmt: skip
    key = world.reconcile(Key(NS, "twice"))
    cancel_item(world, key, 0)
    assert own in world.gateway.objects  # input 1 still converts it
    cancel_item(world, key, 2)
    assert shared in world.gateway.objects  # not an upload made for this MediaJob
    kept = [m for (_, t, r, m) in world.gateway.events if r == "InputKept"]
    assert kept == [
        f"mediaflow.io/delete-input: kept input {shared!r}: only an upload made for this "
        f"MediaJob (under '{NS}/uploads/twice/') may be deleted"
    ]
    cancel_item(world, key, 1)
    assert own not in world.gateway.objects
    assert world.status(key)["phase"] == "Cancelled"


def test_cancelling_or_expiring_a_mediajob_of_many_inputs_deletes_each_own_upload_at_once() -> None:
    world = WarmWorld()
    key = batch(world, "c", 3)
    world.gateway.objects[f"{NS}/uploads/elsewhere/input"] = b"z"
    world.gateway.mediajobs[NS, "c"]["metadata"]["annotations"][c.ANNOTATION_CANCEL] = "true"
    world.reconcile(key)
    assert world.status(key)["phase"] == "Cancelled"
    assert not [k for k in world.gateway.objects if k.startswith(f"{NS}/uploads/c/")]
    assert world.gateway.bulk_deletes == [[upload("c", 0), upload("c", 1), upload("c", 2)]]
    assert f"{NS}/uploads/elsewhere/input" in world.gateway.objects

    ttl = batch(world, "t", 2)
    world.gateway.mediajobs[NS, "t"]["spec"]["ttlSecondsAfterFinished"] = 0
    job, uid = world.status(ttl)["items"][0]["jobName"], world.uid(ttl)
    for n in range(2):
        world.log(job, {"event": "item", "item": item(uid, n), "result": RESULT})
    world.reconcile(ttl)  # finished
    world.reconcile(ttl)  # expired: deleted
    world.reconcile(ttl)  # finalized
    assert (NS, "t") not in world.gateway.mediajobs
    assert not [k for k in world.gateway.objects if k.startswith(f"{NS}/uploads/t/")]


def test_inputs_placed_again_after_a_lost_race_at_acceptance_keep_their_results() -> None:
    world = WarmWorld()
    world.gateway.fail_next["PATCH mediajobs/status"] = ConflictError("modified")
    key = batch(world, "race", 2)  # the status write loses: slots emptied, items released
    assert "status" not in world.gateway.mediajobs[NS, "race"]
    job = world.warm_jobs()[0]
    assert [Slot.from_json(world.gateway.objects[slot_key(NS, job, n)]).items for n in (0, 1)] == [
        (),
        (),
    ]
    world.reconcile(key)  # accepted: placed again
    uid, items = world.uid(key), world.status(key)["items"]
    assert [i["sessionSlot"] for i in items] == [2, 3]
    for n in (0, 1):
        world.gateway.objects[item_output(world, key, n)] = b"webp"
        world.log(job, {"event": "item", "item": item(uid, n), "result": RESULT})
        assert item_output(world, key, n) in world.gateway.objects
    world.reconcile(key)
    assert world.status(key)["phase"] == "Succeeded"


def test_a_new_warm_pods_job_seen_by_the_watch_at_once_is_ours_not_adopted() -> None:
    """The watch can bring the new Job at any moment while the pool makes the pod (here: when
    the pool reads its clock, just before it registers the session): that Job must not be
    taken for one made before a restart, which takes no new items."""
    world = WarmWorld()
    seen: list[str | None] = []

    def clock_with_the_watch() -> float:
        for (_, name), job in list(world.gateway.jobs.items()):
            world.pool.job_seen(job, deleted=False)
            seen.append(world.pool.state(NS, name))
        return world.clock

    world.pool.clock = clock_with_the_watch
    a = world.create("a")
    world.pool.clock = lambda: world.clock
    assert seen
    assert set(seen) <= {None, "live"}
    (session,) = world.pool.sessions()
    assert session.accepting  # never registered as a pod found after a restart
    b = world.create("b")
    job = world.warm_jobs()[0]
    assert (world.status(a)["jobName"], world.status(b)["jobName"]) == (job, job)
    assert world.status(b)["sessionSlot"] == 1
