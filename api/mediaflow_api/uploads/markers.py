"""Markers of the uploads one request is storing, so the operator's orphan sweep spares them.

The contract (names, lifetime, refresh) is in `mediaflow_core.naming`; the operator's sweep
honours it. A marker is written before the first byte of its file is stored, rewritten every
`UPLOAD_MARKER_REFRESH` while the request runs (a slow batch keeps its first files), and
deleted when the request ends, after its MediaJobs exist or its objects are deleted: all of
a request's markers in one request to object storage (S3 DeleteObjects), not one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mediaflow_api.uploads.sink import StorageError
from mediaflow_core.naming import UPLOAD_MARKER_REFRESH, upload_marker_key

logger = logging.getLogger(__name__)


class UploadMarkers:
    """The markers of one request. `put(key)` writes one marker and `remove_all(keys)`
    deletes several; both block, and run through `run` (a request's blocking-call runner,
    `asyncio.to_thread` by default)."""

    def __init__(
        self,
        put: Callable[[str], None],
        remove_all: Callable[[list[str]], None],
        refresh_seconds: float = UPLOAD_MARKER_REFRESH.total_seconds(),
        run: Callable[..., Awaitable[Any]] = asyncio.to_thread,
    ) -> None:
        self._put, self._remove_all, self._run = put, remove_all, run
        self._refresh_seconds = refresh_seconds
        self.keys: list[str] = []
        # The first write of each marker: the files of a batch made as one MediaJob share
        # one upload prefix, and so one marker, written once and awaited by each.
        self._written: dict[str, asyncio.Future[Any]] = {}
        self._refresher: asyncio.Task[None] | None = None

    async def add(self, key: str) -> None:
        """Mark the upload prefix of `key` as in progress (before storing `key`)."""
        marker = upload_marker_key(key)
        written = self._written.get(marker)
        if written is None:
            # Listed before it is written: a PUT that fails after MinIO stored the marker (a
            # timeout) must still be deleted at the end.
            self.keys.append(marker)
            written = self._written[marker] = asyncio.ensure_future(self._run(self._put, marker))
        await asyncio.shield(written)
        if self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh(), name="upload markers")

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            for marker in list(self.keys):
                try:
                    await self._run(self._put, marker)
                except StorageError as error:  # the next round tries again
                    logger.warning("could not refresh the upload marker %s: %s", marker, error)

    async def close(self) -> None:
        """Stop refreshing and delete the markers (best effort, logged: a marker left behind
        ages out, and the sweep deletes it)."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self.keys:
            try:
                await self._run(self._remove_all, list(self.keys))
            except Exception as error:  # logged: the sweep removes them once they aged out
                logger.warning("could not delete the upload markers %s: %s", self.keys, error)
        self.keys.clear()
        for written in self._written.values():  # retrieved: a failure was raised to its adder
            if written.done() and not written.cancelled():
                written.exception()
        self._written.clear()
