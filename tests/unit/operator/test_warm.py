"""The warm path's decisions through the in-memory gateway: which MediaJobs share a warm pod,
the bounds, the mailbox the operator writes, outcomes from the pod's log, and what happens
when a warm pod ends without settling an item. (Against the real cluster:
tests/integration/test_warm_pods.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mediaflow_core import constants as c
from mediaflow_core.session import Slot, slot_key
from mediaflow_operator.config import OperatorSettings
from mediaflow_operator.observed import Key, PodView, Store
from mediaflow_operator.reconciler import Reconciler
from mediaflow_operator.warm import Owner, Pool, Session, may_take, owner_of
from tests.unit.operator.fake_gateway import FakeGateway
from tests.unit.operator.test_reconciler import NS, RESULT, T0, spec

pytestmark = pytest.mark.unit


class WarmWorld:
    def __init__(self, **settings: Any) -> None:
        self.gateway = FakeGateway()
        self.store = Store()
        self.woken: list[Key] = []
        self.clock = 1000.0
        self.settings = OperatorSettings(
            s3_endpoint="http://minio:9000",
            s3_access_key="a",
            s3_secret_key="b",  # noqa: S106
            **settings,
        )
        self.pool = Pool(self.gateway, self.settings, self.woken.append, lambda: self.clock)
        self.pool.spawn = lambda target, *args: None  # no log follower threads here
        self.reconciler = Reconciler(
            self.gateway, self.store, self.settings, lambda: T0, pool=self.pool
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
    c_ = world.create("c")
    assert world.status(c_)["jobName"] != job  # a closed pod takes nothing more
