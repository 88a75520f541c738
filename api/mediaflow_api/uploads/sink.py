"""Streaming one object into S3 from async code, without holding it in memory.

The MinIO client blocks, so `put_object` runs in a worker thread and reads the object from
a bounded queue that the request handler fills as the body arrives. The object's size is
unknown up front: MinIO's client then buffers one part at a time (`part_size`) and uses a
multipart upload, which it aborts when reading fails, so an aborted upload leaves nothing.
Memory per upload is bounded by the queue plus one part.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from typing import Any

from minio import Minio

# What the handler's side puts into the queue: bytes, or one of these.
_END = object()
_ABORT = object()
# How often a blocked producer looks whether the upload thread died.
_POLL_SECONDS = 0.5


class UploadAbortedError(Exception):
    """Raised inside the upload thread to make MinIO's client abort the multipart upload."""


class _QueueReader:
    """The file-like object `put_object` reads from (in the upload thread)."""

    def __init__(self, chunks: queue.Queue[Any]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        if not self._pending:
            if self._ended:
                return b""
            item = self._chunks.get()
            if item is _ABORT:
                raise UploadAbortedError("the upload was abandoned")
            if item is _END:
                self._ended = True
                return b""
            self._pending = memoryview(item)
        if size < 0 or size >= len(self._pending):
            data, self._pending = self._pending, memoryview(b"")
        else:
            data, self._pending = self._pending[:size], self._pending[size:]
        return bytes(data)


class ObjectSink:
    """One object being written: `await write(chunk)`..., then `await finish()` or
    `await abort()` (which also removes the object if it was already complete)."""

    def __init__(
        self,
        minio: Minio,
        bucket: str,
        key: str,
        content_type: str,
        *,
        part_size: int,
        queue_chunks: int,
    ) -> None:
        self.minio, self.bucket, self.key = minio, bucket, key
        self._chunks: queue.Queue[Any] = queue.Queue(maxsize=queue_chunks)
        self._result: Future[None] = Future()
        reader = _QueueReader(self._chunks)

        def upload() -> None:
            try:
                # num_parallel_uploads=1: parallel parts would each hold a part in memory.
                minio.put_object(
                    bucket,
                    key,
                    reader,  # type: ignore[arg-type]  # has read(), all put_object needs
                    length=-1,
                    part_size=part_size,
                    content_type=content_type,
                    num_parallel_uploads=1,
                )
            except BaseException as error:  # handed to the awaiting side
                self._result.set_exception(error)
            else:
                self._result.set_result(None)

        self._thread = threading.Thread(target=upload, name=f"upload {key}", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> None:
        """Queue `item`, waiting for room; fail if the upload thread has already stopped."""
        while True:
            if self._result.done() and item is not _ABORT:
                self._result.result()  # raises the upload's error
                raise RuntimeError("the upload finished before its end was sent")
            try:
                self._chunks.put(item, timeout=_POLL_SECONDS)
            except queue.Full:
                if self._result.done():
                    return  # nobody reads any more; result() tells why
            else:
                return

    async def write(self, chunk: bytes) -> None:
        try:
            self._chunks.put_nowait(chunk)
        except queue.Full:
            if self._result.done():
                self._result.result()
            await asyncio.to_thread(self._put, chunk)

    async def finish(self) -> None:
        """Send the end and wait until the object is stored (raises the upload's error)."""
        await asyncio.to_thread(self._put, _END)
        await asyncio.wrap_future(self._result)

    async def abort(self) -> None:
        """Stop the upload and make sure no object remains."""
        if not self._result.done():
            await asyncio.to_thread(self._put, _ABORT)
        try:
            await asyncio.wrap_future(self._result)
        except BaseException:  # aborted as asked: MinIO dropped the parts
            return
        # It completed before the abort arrived: remove what was stored.
        await asyncio.to_thread(self.minio.remove_object, self.bucket, self.key)
