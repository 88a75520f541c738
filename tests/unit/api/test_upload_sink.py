"""The part buffer of streaming uploads (the S3 side is tested against MinIO)."""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import AsyncIterator

import pytest
from kubernetes import client as kube

from mediaflow_api.clients import s3_pool, upload_io_threads
from mediaflow_api.problems import Problem
from mediaflow_api.uploads.forms import ENDPOINTS
from mediaflow_api.uploads.quota import ActiveJobQuota
from mediaflow_api.uploads.service import UploadService
from mediaflow_api.uploads.sink import (
    _ABORT,
    _END,
    UploadAbortedError,
    _PartFiller,
    without_queries,
)
from mediaflow_core.storage import minio_client
from tests.unit.api.conftest import make_settings

pytestmark = pytest.mark.unit


def filler(*items: object) -> _PartFiller:
    chunks: queue.Queue[object] = queue.Queue()
    for item in items:
        chunks.put(item)
    return _PartFiller(chunks)


def test_chunks_fill_parts_across_chunk_boundaries() -> None:
    parts = filler(b"abc", b"defgh", b"ij", _END)
    buffer = bytearray(4)
    seen = []
    while True:
        filled = parts.fill(buffer)
        seen.append(bytes(buffer[:filled]))
        if parts.ended:
            break
    assert seen == [b"abcd", b"efgh", b"ij"]


def test_a_body_of_exactly_one_part_ends_with_an_empty_fill() -> None:
    parts = filler(b"abcd", _END)
    buffer = bytearray(4)
    assert (parts.fill(buffer), parts.ended) == (4, False)
    assert (parts.fill(buffer), parts.ended) == (0, True)


def test_abort_stops_the_upload() -> None:
    parts = filler(b"ab", _ABORT)
    with pytest.raises(UploadAbortedError):
        parts.fill(bytearray(4))


# --- errors name no presigned URL's query (issue 10, item 11) ---------------------------


def test_storage_failures_are_logged_without_a_presigned_urls_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Object storage unreachable (a closed port): urllib3's MaxRetryError names the URL it
    failed on, a presigned one; neither the log nor the error may keep its query."""
    settings = make_settings(s3_endpoint="http://127.0.0.1:9")
    service = UploadService(
        settings,
        minio_client(settings.s3_endpoint, settings),
        s3_pool(),
        kube.ApiClient(),  # not reached: the upload fails before any MediaJob
        upload_io_threads(),
    )
    quota = ActiveJobQuota(10, _none_active, asyncio.Lock())
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.jpg"\r\n\r\n'
        ).encode()
        + JPEG_HEAD
        + f"\r\n--{boundary}--\r\n".encode()
    )

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    async def upload() -> None:
        await service.receive(
            ENDPOINTS["/image/convert/webp"],
            "owner",
            f"multipart/form-data; boundary={boundary}",
            chunks(),
            quota,
        )

    with caplog.at_level(logging.DEBUG), pytest.raises(Problem) as refused:
        asyncio.run(upload())
    assert refused.value.status_code == 503
    logged = caplog.text
    assert "upload failed: object storage" in logged
    assert "127.0.0.1" in logged  # the failure is still told
    for secret in ("X-Amz-Signature", "X-Amz-Credential", "X-Amz-"):
        assert secret not in logged
    chained = refused.value.__cause__ or refused.value.__context__
    assert chained is None or "X-Amz-" not in repr(chained)


def test_without_queries_cuts_every_query_string() -> None:
    text = (
        "MaxRetryError(\"HTTPConnectionPool(host='minio', port=9000): Max retries exceeded "
        'with url: /b/k?uploads=&X-Amz-Credential=a%2Fb&X-Amz-Signature=ff (Caused by x)")'
    )
    assert without_queries(text) == (
        "MaxRetryError(\"HTTPConnectionPool(host='minio', port=9000): Max retries exceeded "
        'with url: /b/k?… (Caused by x)")'
    )


async def _none_active() -> int:
    return 0


# The start of a JPEG (JFIF): enough for libmagic to call it image/jpeg.
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 200
