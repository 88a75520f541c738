"""Streaming one object into S3 from async code, without holding it in memory.

The request handler puts the body's chunks into a bounded queue; a worker thread copies them
into one reused part buffer and sends each full part as an S3 multipart-upload part (a file
smaller than one part goes as a single PUT). Every S3 request is a URL presigned offline by
MinIO's client (public API) and sent with urllib3:

- the payload is not hashed (presigned URLs are UNSIGNED-PAYLOAD; MinIO's own client would
  SHA-256 every part over plain HTTP), and parts are sent from the buffer without copies —
  minio-py's `put_object` with an unknown length rebuilt each part by `bytes +=` per chunk,
  which cost more CPU than everything else in an upload (bench/upload_api.py);
- a failure aborts the multipart upload, so an abandoned upload leaves nothing.

Memory per upload: the part buffer plus the queue.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
import xml.etree.ElementTree as ET  # parses answers of our own object storage
from concurrent.futures import Future
from datetime import timedelta
from typing import Any

import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject

# What the handler's side puts into the queue: bytes, or one of these.
_END = object()
_ABORT = object()
# How often a blocked producer looks whether the upload thread died.
_POLL_SECONDS = 0.5
# Presigned URLs are made per request; this only has to outlast one request.
_URL_TTL = timedelta(hours=1)
_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


# A URL's query string: on a presigned URL it holds the credential and the signature.
_QUERY = re.compile(r"\?[^\s'\"<>)]*")


class StorageError(Exception):
    """Object storage refused a request (status and the start of its answer), or could
    not be reached; its text never holds a presigned URL's query (credential, signature)."""


def without_queries(text: str) -> str:
    """`text` with the query string of every URL in it cut off (`?…`): urllib3's errors
    name the URL they failed on, which for a presigned URL is a bearer credential."""
    return _QUERY.sub("?…", text)


class _WithoutQueries(logging.Filter):
    """Rewrites a log record's text without URL queries (see `without_queries`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = without_queries(message), ()
        return True


# urllib3 itself logs the URL of every retried request (a WARNING) and every retry (DEBUG):
# for the presigned URLs sent here that is the signature. Logger filters do not apply to
# child loggers, so each logger urllib3 logs URLs on gets its own.
for _name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager"):
    logging.getLogger(_name).addFilter(_WithoutQueries())


class UploadAbortedError(Exception):
    """The request side abandoned the upload."""


class _S3Object:
    """The S3 requests of one object, each on a freshly presigned URL."""

    def __init__(self, minio: Minio, http: urllib3.PoolManager, bucket: str, key: str) -> None:
        self.minio, self.http, self.bucket, self.key = minio, http, bucket, key

    def _request(
        self,
        method: str,
        query: dict[str, str] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        url = self.minio.get_presigned_url(
            method, self.bucket, self.key, expires=_URL_TTL, extra_query_params=query
        )
        try:
            response = self.http.request(method, url, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as error:
            # Not chained (`from None`): the original's text and args hold the signed URL.
            raise StorageError(
                f"{method} {self.key}: {type(error).__name__}: {without_queries(str(error))}"
            ) from None
        # CompleteMultipartUpload may answer 200 with an error document (S3 does so).
        if response.status >= 300 or response.data.lstrip().startswith(b"<Error"):
            raise StorageError(
                f"{method} {self.key}: HTTP {response.status}: {response.data[:300]!r}"
            )
        return response

    def put(self, data: memoryview, content_type: str) -> None:
        self._request("PUT", body=data, headers={"Content-Type": content_type})

    def create_multipart(self, content_type: str) -> str:
        answer = self._request("POST", {"uploads": ""}, headers={"Content-Type": content_type})
        upload_id = ET.fromstring(answer.data).findtext(f"{_S3_NS}UploadId")  # noqa: S314
        if not upload_id:
            raise StorageError(f"no UploadId in {answer.data[:300]!r}")
        return upload_id

    def upload_part(self, upload_id: str, number: int, data: memoryview) -> str:
        query = {"uploadId": upload_id, "partNumber": str(number)}
        return self._request("PUT", query, body=data).headers["ETag"]

    def complete_multipart(self, upload_id: str, etags: list[str]) -> None:
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
            for n, etag in enumerate(etags, start=1)
        )
        body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        self._request("POST", {"uploadId": upload_id}, body=body)

    def abort_multipart(self, upload_id: str) -> None:
        self._request("DELETE", {"uploadId": upload_id})

    def remove(self) -> None:
        self._request("DELETE")


def remove_objects(minio: Minio, bucket: str, keys: list[str]) -> None:
    """Delete `keys` with S3 DeleteObjects, one request per 1,000 keys (a key that does not
    exist counts as deleted); raises StorageError naming what could not be deleted."""
    errors = list(minio.remove_objects(bucket, [DeleteObject(key) for key in keys]))
    if errors:
        failed = ", ".join(f"{error.name} ({error.code})" for error in errors[:10])
        raise StorageError(f"could not delete {len(errors)} objects: {failed}")


class _PartFiller:
    """Copies queued chunks into the part buffer (in the upload thread)."""

    def __init__(self, chunks: queue.Queue[Any]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")
        self.ended = False

    def fill(self, buffer: bytearray) -> int:
        """Fill `buffer` from the queue; answers how many bytes, less only at the end."""
        view = memoryview(buffer)
        filled = 0
        while filled < len(buffer):
            if not self._pending:
                if self.ended:
                    break
                item = self._chunks.get()
                if item is _ABORT:
                    raise UploadAbortedError("the upload was abandoned")
                if item is _END:
                    self.ended = True
                    break
                self._pending = memoryview(item)
            take = min(len(self._pending), len(buffer) - filled)
            view[filled : filled + take] = self._pending[:take]
            self._pending = self._pending[take:]
            filled += take
        return filled


class ObjectSink:
    """One object being written: `await write(chunk)`..., then `await finish()` or
    `await abort()` (which also removes the object if it was already complete)."""

    def __init__(
        self,
        minio: Minio,
        http: urllib3.PoolManager,
        bucket: str,
        key: str,
        content_type: str,
        *,
        part_size: int,
        queue_bytes: int,
    ) -> None:
        self._object = _S3Object(minio, http, bucket, key)
        self.key = key
        # Chunks arrive in sizes the ASGI server picks (uvicorn: up to 256 KiB), so the
        # queue is bounded in chunks sized for the largest.
        self._chunks: queue.Queue[Any] = queue.Queue(maxsize=max(2, queue_bytes // (256 * 1024)))
        self._result: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._upload, args=(content_type, part_size), name=f"upload {key}", daemon=True
        )
        self._thread.start()

    def _upload(self, content_type: str, part_size: int) -> None:
        filler = _PartFiller(self._chunks)
        buffer = bytearray(part_size)
        upload_id: str | None = None
        etags: list[str] = []
        try:
            while True:
                filled = filler.fill(buffer)
                if upload_id is None and filler.ended:  # smaller than one part
                    self._object.put(memoryview(buffer)[:filled], content_type)
                    break
                if upload_id is None:
                    upload_id = self._object.create_multipart(content_type)
                if filled:
                    part = memoryview(buffer)[:filled]
                    etags.append(self._object.upload_part(upload_id, len(etags) + 1, part))
                if filler.ended:
                    self._object.complete_multipart(upload_id, etags)
                    break
        except BaseException as error:  # handed to the awaiting side
            if upload_id is not None:
                try:
                    self._object.abort_multipart(upload_id)
                except Exception as abort_error:  # the first error is the one to report
                    error.add_note(f"aborting the multipart upload failed too: {abort_error}")
            self._result.set_exception(error)
        else:
            self._result.set_result(None)

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
        except BaseException:  # aborted as asked: the multipart upload was aborted
            return
        # It completed before the abort arrived: remove what was stored.
        await asyncio.to_thread(self._object.remove)
