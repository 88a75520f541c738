"""The per-user cap on active (pending or processing) jobs, as the upload endpoints apply it.

A request is refused with 429 as soon as it is known to go over the cap: before its body is
read when the user is already at the cap, when a file starts that would be one too many
(so that file is never stored, and the batch's earlier files are deleted: a batch is all or
nothing), and finally when its MediaJobs are about to be created. That last check counts
afresh, under a per-user lock, so two requests of one user in one process never both pass
on the same count. Several API replicas count separately: together they can overshoot by
the uploads in flight at that moment (at most `max_concurrent_uploads_per_user` requests
per replica).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from mediaflow_api.problems import Problem


def over_quota(active: int, adding: int, limit: int) -> bool:
    """Whether `adding` more jobs on top of `active` go over `limit` (pure)."""
    return active + adding > limit


def quota_exceeded(active: int, limit: int) -> Problem:
    return Problem(
        429,
        "too-many-active-jobs",
        "Too many active jobs",
        f"You have {active} active jobs (pending or processing) and each user may have at "
        f"most {limit}; this request would go over that, so nothing of it was kept. Wait for "
        "jobs to finish, or delete some, then send it again.",
        headers={"Retry-After": "30"},
    )


@dataclass
class ActiveJobQuota:
    """The active-job cap of one user, for one upload request."""

    limit: int
    count: Callable[[], Awaitable[int]]  # the user's active jobs, read afresh
    creating: asyncio.Lock  # the user's lock around counting and creating MediaJobs
    active: int = 0  # as counted when the request started

    async def check_start(self) -> None:
        """Before the body is read: refuse a user already at the cap."""
        self.active = await self.count()
        if over_quota(self.active, 1, self.limit):
            raise quota_exceeded(self.active, self.limit)

    def check_file(self, files: int) -> None:
        """When file number `files` of the request starts, before it is stored."""
        if over_quota(self.active, files, self.limit):
            raise quota_exceeded(self.active, self.limit)

    @asynccontextmanager
    async def creating_jobs(self, files: int) -> AsyncIterator[None]:
        """Around creating `files` MediaJobs: counted again, one request of the user at once."""
        async with self.creating:
            self.active = await self.count()
            if over_quota(self.active, files, self.limit):
                raise quota_exceeded(self.active, self.limit)
            yield
