"""Who may upload right now: uploads in progress per process and per user, and dropping
uploads whose client stopped sending.

A process receives at most `total` uploads at once (each holds about one part buffer in
memory), and one user at most `per_user` of them, so that no user can take every slot:
16 stalled requests of one user kept everybody else at 503 before. A request that sends
nothing for the idle timeout is dropped (and cleaned up like any failed upload), so a
stalled upload gives its slot back instead of holding it for as long as the client likes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum

from mediaflow_api.problems import Problem


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


class UploadSlots:
    """The uploads in progress in one API process (used from the event loop only)."""

    def __init__(self, max_total: int, max_per_user: int) -> None:
        self.max_total, self.max_per_user = max_total, max_per_user
        self.total = 0
        self._users: dict[str, UserUploads] = {}

    def of_user(self, user: str) -> int:
        uploads = self._users.get(user)
        return uploads.count if uploads else 0

    @contextmanager
    def hold(self, user: str) -> Iterator[UserUploads]:
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
                raise Problem(
                    503,
                    "busy",
                    "Too many uploads in progress",
                    "This API instance is receiving as many uploads as it may at once; retry "
                    "in a few seconds.",
                    headers={"Retry-After": "5"},
                )
        uploads = self._users.setdefault(user, UserUploads())
        uploads.count += 1
        self.total += 1
        try:
            yield uploads
        finally:
            uploads.count -= 1
            self.total -= 1
            if uploads.count == 0:
                del self._users[user]


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


async def with_idle_timeout(chunks: AsyncIterator[bytes], seconds: float) -> AsyncIterator[bytes]:
    """The chunks of a request body; a 408 Problem when the client sends nothing for
    `seconds`. Only the wait for the client counts, not the time spent storing a chunk."""
    iterator = aiter(chunks)
    while True:
        try:
            chunk = await asyncio.wait_for(anext(iterator), seconds)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise upload_idle(seconds) from None
        yield chunk
