"""The part buffer of streaming uploads (the S3 side is tested against MinIO)."""

from __future__ import annotations

import queue

import pytest

from mediaflow_api.uploads.sink import _ABORT, _END, UploadAbortedError, _PartFiller

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
