"""The work queue's guarantees (one reconcile per burst, never two workers on one key,
scheduled wake-ups) and the progress reader's budget (a bounded rate whatever the number of
running video MediaJobs)."""

from __future__ import annotations

import threading

from mediaflow_operator.observed import Key, PodView, Store
from mediaflow_operator.progress import Budget, ProgressReader, pick
from mediaflow_operator.workqueue import WorkQueue
from tests.unit.operator.fake_gateway import FakeGateway
from tests.unit.operator.test_reconciler import World


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_events_for_one_key_is_one_item() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(5):
        queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    assert queue.get(timeout=0) == "a"
    assert queue.get(timeout=0) == "b"
    assert queue.get(timeout=0) is None


def test_a_key_added_while_processed_comes_back_after_done_not_before() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert queue.get(timeout=0) == "a"
    queue.add("a")  # an event while a worker has it
    assert queue.get(timeout=0) is None  # no second worker gets it
    queue.done("a")
    assert queue.get(timeout=0) == "a"


def test_scheduled_keys_wake_when_due_and_the_earliest_wins() -> None:
    clock = Clock()
    queue: WorkQueue[str] = WorkQueue(clock)
    queue.add_after("a", 10)
    queue.add_after("a", 5)
    queue.add_after("a", 30)
    assert queue.delayed() == 1
    assert queue.get(timeout=0) is None
    clock.now = 5
    assert queue.get(timeout=0) == "a"
    queue.done("a")
    clock.now = 40  # the superseded wake-ups do not come back
    assert queue.get(timeout=0) is None


def test_close_releases_waiting_workers() -> None:
    queue: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    thread = threading.Thread(target=lambda: got.append(queue.get()))
    thread.start()
    queue.close()
    thread.join(timeout=5)
    assert got == [None]


def test_a_closed_queue_hands_out_nothing_more_not_even_what_waits() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("b")
    assert queue.get(timeout=0) == "a"
    queue.close()
    assert queue.get(timeout=0) is None  # "b" waited: the next leader takes it up
    queue.done("a")
    queue.add("c")
    assert queue.get(timeout=0) is None
    assert len(queue) == 0


def test_pick_reads_the_longest_unread_first_and_skips_the_recent() -> None:
    keys = [Key("n", str(i)) for i in range(4)]
    last = {keys[0]: 9.0, keys[1]: 2.0, keys[2]: 5.0}
    assert pick(keys, last, now=10.0, interval=3.0, allowed=10) == [keys[3], keys[1], keys[2]]
    assert pick(keys, last, now=10.0, interval=3.0, allowed=2) == [keys[3], keys[1]]


def test_the_budget_refills_at_its_rate_and_saves_at_most_a_second() -> None:
    budget = Budget(rate=5)
    budget.refill(0.0)
    assert budget.take(10) == 1
    budget.refill(100.0)
    assert budget.take(10) == 5


def running_video_world(count: int) -> tuple[World, list[Key]]:
    world = World()
    keys = []
    for i in range(count):
        name = f"v{i}"
        world.gateway.add_mediajob("team", name, {"operation": "VideoConvert"})
        body = world.gateway.mediajobs["team", name]
        body["status"] = {"phase": "Running"}
        key = world.sync(Key("team", name))
        pod = PodView(f"{name}-pod", "2026-12-02T10:00:00Z", "Running")
        world.store.put_pod(key, pod)
        world.gateway.logs["team", pod.name] = '{"event":"progress","percent":42}'
        keys.append(key)
    return world, keys


def test_progress_reads_stay_within_the_budget_however_many_jobs_run() -> None:
    world, keys = running_video_world(200)
    clock = Clock()
    world.settings.progress_interval_seconds = 1.0
    world.settings.progress_reads_per_second = 5.0
    reader = ProgressReader(world.gateway, world.store, world.settings, clock)
    for step in range(41):  # 10 s in ticks of 0.25 s
        clock.now = step * 0.25
        reader.tick()
    reads = world.gateway.requests["GET pods/log"]
    assert 45 <= reads <= 51, reads  # 5 per second (+1 at the start), not 200 per second
    # Each read MediaJob got its progress, written once.
    progressed = [k for k in keys if world.store.mediajob(k)["status"].get("progress") == 42]
    assert len(progressed) == reads == world.gateway.requests["PATCH mediajobs/status"]


def test_with_few_jobs_each_is_read_on_its_interval() -> None:
    world, _ = running_video_world(2)
    clock = Clock()
    world.settings.progress_interval_seconds = 3.0
    reader = ProgressReader(world.gateway, world.store, world.settings, clock)
    for step in range(41):
        clock.now = step * 0.25
        reader.tick()
    # t = 0, 3, 6, 9 for each of the two.
    assert world.gateway.requests["GET pods/log"] == 8
    # Progress written once per change, not per read.
    assert world.gateway.requests["PATCH mediajobs/status"] == 2


def test_store_keeps_the_last_state_of_a_deleted_pod_while_its_mediajob_runs() -> None:
    store = Store()
    gateway = FakeGateway()
    gateway.add_mediajob("team", "a", {})
    key = store.put_mediajob(gateway.mediajob("team", "a"))
    store.put_pod(key, PodView("p", "t", "Succeeded"))
    store.pod_deleted(key, "p")
    assert [p.deleted for p in store.pods(key)] == [True]
