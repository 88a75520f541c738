"""Who may upload right now: uploads in progress per process and per user, and dropping
uploads whose client stopped sending.

A process receives at most `max_total` uploads at once (each holds about one part buffer in
memory), and one user at most `max_per_user` of them, so that no user can take every slot:
16 stalled requests of one user kept everybody else at 503 before. An upload whose client
sends nothing is *stalled* once it has been silent for `stalled_seconds`: when the process
is full and another user's upload arrives, the longest-stalled upload of someone else gives
up its slot at once (dropped with 408 and cleaned up) instead of making the newcomer wait.
Whatever happens, an upload silent for the idle timeout is dropped the same way. So a
stalled upload never holds a slot another user needs, and never holds one for long.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum

from mediaflow_api.problems import Problem

# How often a waiting upload looks whether it was dropped to free its slot.
_POLL_SECONDS = 0.25


class Refusal(Enum):
    """Why an upload may not start now."""

    USER_LIMIT = "user-limit"
    BUSY = "busy"


def refusal(total: int, of_user: int, max_total: int, max_per_user: int) -> Refusal | None:
    """Whether one more upload may start, with `total` in progress in the process and
    `of_user` of them the user's own (pure). The user's own cap comes first: a user at the
    cap is told so (429) even when the process is also full."""
    if of_user >= max_per_user:
        return Refusal.USER_LIMIT
    if total >= max_total:
        return Refusal.BUSY
    return None


@dataclass
class UserUploads:
    """One user's uploads in progress in this process."""

    count: int = 0
    # Held while a request counts the user's active jobs and creates its MediaJobs, so that
    # two requests of one user cannot both pass the active-job cap on the same count.
    creating: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(eq=False)
class HeldUpload:
    """One upload in progress: its user, when its client last sent bytes, whether it was
    dropped to free its slot."""

    user: str
    uploads: UserUploads
    last_activity: float
    dropped: bool = False


def stalled_upload(
    held: Iterable[HeldUpload], newcomer: str, now: float, stalled_seconds: float
) -> HeldUpload | None:
    """The upload to drop so that `newcomer` gets a slot (pure): another user's, silent for
    `stalled_seconds` at least, the longest silent of those; None when there is none."""
    candidates = [
        upload
        for upload in held
        if upload.user != newcomer
        and not upload.dropped
        and now - upload.last_activity >= stalled_seconds
    ]
    return min(candidates, key=lambda upload: upload.last_activity, default=None)


class UploadSlots:
    """The uploads in progress in one API process (used from the event loop only)."""

    def __init__(
        self,
        max_total: int,
        max_per_user: int,
        stalled_seconds: float,
        clock: object = time.monotonic,
    ) -> None:
        self.max_total, self.max_per_user = max_total, max_per_user
        self.stalled_seconds = stalled_seconds
        self.clock = clock
        self._users: dict[str, UserUploads] = {}
        self._held: set[HeldUpload] = set()

    @property
    def total(self) -> int:
        return len(self._held)

    def of_user(self, user: str) -> int:
        uploads = self._users.get(user)
        return uploads.count if uploads else 0

    def _release(self, upload: HeldUpload) -> None:
        if upload not in self._held:
            return
        self._held.discard(upload)
        upload.uploads.count -= 1
        if upload.uploads.count == 0:
            del self._users[upload.user]

    @contextmanager
    def hold(self, user: str) -> Iterator[HeldUpload]:
        """A slot for one upload of `user` while the block runs, or a 429/503 Problem."""
        match refusal(self.total, self.of_user(user), self.max_total, self.max_per_user):
            case Refusal.USER_LIMIT:
                raise Problem(
                    429,
                    "too-many-uploads",
                    "Too many uploads in progress",
                    f"You already have {self.max_per_user} uploads in progress on this "
                    f"instance, the most one user may have at once; wait for one to finish.",
                    headers={"Retry-After": "5"},
                )
            case Refusal.BUSY:
                now = self.clock()  # type: ignore[operator]
                stalled = stalled_upload(self._held, user, now, self.stalled_seconds)
                if stalled is None:
                    raise Problem(
                        503,
                        "busy",
                        "Too many uploads in progress",
                        "This API instance is receiving as many uploads as it may at once; "
                        "retry in a few seconds.",
                        headers={"Retry-After": "5"},
                    )
                # Its request notices within _POLL_SECONDS, answers 408 and cleans up.
                stalled.dropped = True
                self._release(stalled)
        uploads = self._users.setdefault(user, UserUploads())
        uploads.count += 1
        upload = HeldUpload(user, uploads, self.clock())  # type: ignore[operator]
        self._held.add(upload)
        try:
            yield upload
        finally:
            self._release(upload)


def upload_idle(seconds: float) -> Problem:
    return Problem(
        408,
        "upload-idle",
        "The upload stalled",
        f"No data arrived for {seconds:g} seconds, so the upload was dropped and nothing of "
        "it was kept; send the whole request again.",
        # The rest of the body will never be read: the connection cannot be reused.
        headers={"Connection": "close"},
    )


def upload_preempted(seconds: float) -> Problem:
    return Problem(
        408,
        "upload-idle",
        "The upload stalled",
        f"No data arrived for {seconds:.0f} seconds while other users waited for an upload "
        "slot, so the upload was dropped and nothing of it was kept; send the whole request "
        "again.",
        headers={"Connection": "close"},
    )


async def _next_chunk(
    iterator: AsyncIterator[bytes], seconds: float, upload: HeldUpload | None, clock: object
) -> bytes | None:
    """The next chunk (None at the end), or a 408 Problem (see `with_idle_timeout`)."""
    started = clock()  # type: ignore[operator]
    if upload is not None:
        # Silence counts from here: time spent storing the previous chunk is ours, not the
        # client's, and must not make an upload look stalled.
        upload.last_activity = started
    waiting = asyncio.ensure_future(anext(iterator, None))
    try:
        while not waiting.done():
            silent = clock() - started  # type: ignore[operator]
            if silent >= seconds:
                raise upload_idle(seconds)
            if upload is not None and upload.dropped:
                raise upload_preempted(silent)
            await asyncio.wait({waiting}, timeout=min(_POLL_SECONDS, seconds - silent))
        return waiting.result()
    finally:
        waiting.cancel()  # no-op once done


async def with_idle_timeout(
    chunks: AsyncIterator[bytes],
    seconds: float,
    upload: HeldUpload | None = None,
    clock: object = time.monotonic,
) -> AsyncIterator[bytes]:
    """The chunks of a request body; a 408 Problem when the client sends nothing for
    `seconds`, or sends nothing and its slot was given to another user (`upload.dropped`).
    Only the wait for the client counts, not the time spent storing a chunk."""
    iterator = aiter(chunks)
    while (chunk := await _next_chunk(iterator, seconds, upload, clock)) is not None:
        yield chunk
    if upload is not None:
        # The body is in: the request waits for no client any more (creating its MediaJobs),
        # so it is never taken for a stalled one.
        upload.last_activity = math.inf
