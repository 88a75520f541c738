"""Uploads in progress per process and per user, idle uploads, and the active-job cap:
the decisions, without a server (the integration tests use the real API process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from mediaflow_api.problems import Problem
from mediaflow_api.uploads.quota import ActiveJobQuota, over_quota
from mediaflow_api.uploads.slots import (
    HeldUpload,
    Refusal,
    UploadSlots,
    UserUploads,
    refusal,
    stalled_upload,
    with_idle_timeout,
)

pytestmark = pytest.mark.unit


def test_a_user_at_the_cap_is_refused_before_the_process_is_full() -> None:
    assert refusal(total=3, of_user=3, max_total=16, max_per_user=4) is None
    assert refusal(total=4, of_user=4, max_total=16, max_per_user=4) is Refusal.USER_LIMIT
    assert refusal(total=16, of_user=0, max_total=16, max_per_user=4) is Refusal.BUSY
    assert refusal(total=16, of_user=4, max_total=16, max_per_user=4) is Refusal.USER_LIMIT


def test_one_user_cannot_take_every_slot() -> None:
    slots = UploadSlots(max_total=3, max_per_user=2, stalled_seconds=5)
    with slots.hold("mallory"), slots.hold("mallory"):
        with pytest.raises(Problem) as refused, slots.hold("mallory"):
            pass
        assert refused.value.status_code == 429
        assert "2 uploads" in refused.value.detail
        assert refused.value.headers == {"Retry-After": "5"}
        with slots.hold("alice"):  # another user still gets a slot
            with pytest.raises(Problem) as busy, slots.hold("bob"):
                pass
            assert busy.value.status_code == 503
    assert (slots.total, slots.of_user("mallory")) == (0, 0)


def held(user: str, last_activity: float) -> HeldUpload:
    return HeldUpload(user, UserUploads(), last_activity)


def test_the_longest_stalled_upload_of_another_user_gives_way() -> None:
    uploads = [held("mallory", 90), held("mallory", 80), held("bob", 97), held("alice", 70)]
    assert stalled_upload(uploads, "alice", now=100, stalled_seconds=5) is uploads[1]
    assert stalled_upload(uploads, "mallory", now=100, stalled_seconds=5) is uploads[3]
    assert stalled_upload(uploads[2:3], "alice", now=100, stalled_seconds=5) is None  # active


def test_a_full_process_takes_a_slot_from_a_stalled_upload_of_another_user() -> None:
    now = [0.0]
    slots = UploadSlots(max_total=2, max_per_user=2, stalled_seconds=5, clock=lambda: now[0])
    with slots.hold("mallory") as first, slots.hold("mallory") as second:
        now[0] = 3.0
        second.last_activity = 3.0  # still sending
        with pytest.raises(Problem) as busy, slots.hold("alice"):
            pass
        assert busy.value.status_code == 503  # nobody stalled for 5 s yet
        now[0] = 6.0
        with slots.hold("alice"):
            assert first.dropped
            assert not second.dropped
            assert (slots.total, slots.of_user("mallory"), slots.of_user("alice")) == (2, 1, 1)
            with pytest.raises(Problem), slots.hold("bob"):  # second has sent 3 s ago
                pass
    assert slots.total == 0


def test_a_dropped_upload_stops_at_once_with_a_408() -> None:
    upload = held("mallory", 0)

    async def stalls() -> AsyncIterator[bytes]:
        yield b"first"
        await asyncio.sleep(3600)
        yield b"never"

    async def read() -> list[bytes]:
        chunks = []
        async for chunk in with_idle_timeout(stalls(), 3600, upload):
            chunks.append(chunk)
            upload.dropped = True  # another user took its slot
        return chunks

    with pytest.raises(Problem) as dropped:
        asyncio.run(read())
    assert dropped.value.status_code == 408
    assert "other users waited" in dropped.value.detail


def test_silence_counts_only_while_waiting_for_the_client() -> None:
    upload = held("alice", 0)
    now = [10.0]

    async def body() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    seen: list[float] = []

    async def read() -> None:
        async for _ in with_idle_timeout(body(), 3600, upload, clock=lambda: now[0]):
            seen.append(upload.last_activity)
            now[0] += 60  # storing the chunk took a minute: not the client's silence
        assert upload.last_activity == float("inf")  # the body is in: never stalled

    asyncio.run(read())
    assert seen == [10.0, 70.0]  # each wait for the client starts the silence afresh
    assert stalled_upload([upload], "bob", now=now[0], stalled_seconds=5) is None


def test_a_slot_is_given_back_when_the_upload_fails() -> None:
    slots = UploadSlots(max_total=1, max_per_user=1, stalled_seconds=5)
    with pytest.raises(RuntimeError), slots.hold("alice"):
        raise RuntimeError("the upload failed")
    with slots.hold("alice"):
        assert slots.total == 1


def test_a_stalled_body_is_dropped_after_the_idle_timeout() -> None:
    async def stalls() -> AsyncIterator[bytes]:
        yield b"first"
        await asyncio.sleep(3600)
        yield b"never"

    async def read() -> list[bytes]:
        return [chunk async for chunk in with_idle_timeout(stalls(), 0.05)]

    with pytest.raises(Problem) as dropped:
        asyncio.run(read())
    assert dropped.value.status_code == 408
    assert "0.05 seconds" in dropped.value.detail
    assert dropped.value.headers == {"Connection": "close"}


def test_a_body_that_keeps_coming_is_read_whole() -> None:
    async def slow() -> AsyncIterator[bytes]:
        for chunk in (b"a", b"b", b"c"):
            await asyncio.sleep(0.02)
            yield chunk

    async def read() -> list[bytes]:
        return [chunk async for chunk in with_idle_timeout(slow(), 0.5)]

    assert asyncio.run(read()) == [b"a", b"b", b"c"]


def test_the_active_job_cap() -> None:
    assert not over_quota(active=99, adding=1, limit=100)
    assert over_quota(active=100, adding=1, limit=100)
    assert over_quota(active=90, adding=11, limit=100)


def quota(counts: list[int], limit: int = 3) -> ActiveJobQuota:
    async def count() -> int:
        return counts.pop(0)

    return ActiveJobQuota(limit, count, asyncio.Lock())


def test_a_batch_over_the_cap_is_refused_when_its_file_over_the_cap_starts() -> None:
    batch = quota([1])
    asyncio.run(batch.check_start())
    batch.check_file(1)
    batch.check_file(2)
    with pytest.raises(Problem) as refused:
        batch.check_file(3)
    assert refused.value.status_code == 429
    assert "at most 3" in refused.value.detail
    assert "You have 1 active jobs" in refused.value.detail


def test_a_user_at_the_cap_is_refused_before_the_body_and_again_before_creating() -> None:
    with pytest.raises(Problem):
        asyncio.run(quota([3]).check_start())

    async def create(counted: ActiveJobQuota) -> None:
        await counted.check_start()
        async with counted.creating_jobs(2):
            pass

    # Another request of the user created jobs meanwhile: counted afresh, refused.
    with pytest.raises(Problem) as refused:
        asyncio.run(create(quota([0, 2])))
    assert "You have 2 active jobs" in refused.value.detail
    asyncio.run(create(quota([0, 1])))


def test_upload_markers_are_written_first_refreshed_while_the_request_runs_then_deleted() -> None:
    from mediaflow_api.uploads.markers import UploadMarkers

    written: list[str] = []
    removed: list[list[str]] = []

    async def request() -> None:
        markers = UploadMarkers(written.append, removed.append, refresh_seconds=0.02)
        await markers.add("ns/uploads/job-1/input")
        assert written == ["ns/uploads/job-1/in-progress"]  # before the file is stored
        await markers.add("ns/uploads/job-2/input")
        await asyncio.sleep(0.15)  # a slow batch: both are rewritten meanwhile
        await markers.close()

    asyncio.run(request())
    assert written.count("ns/uploads/job-1/in-progress") >= 3
    assert written.count("ns/uploads/job-2/in-progress") >= 2
    # All in one request to object storage.
    assert removed == [["ns/uploads/job-1/in-progress", "ns/uploads/job-2/in-progress"]]
    count = len(written)
    asyncio.run(asyncio.sleep(0.05))
    assert len(written) == count  # no refresh after the request ended
