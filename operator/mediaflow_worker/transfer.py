"""Streaming download of the input and presigned PUT of the output (urllib3)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import urllib3

from .errors import InputNotFound, InvalidInput, TransientError
from .report import log, redact_url

CHUNK = 1024 * 1024
MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}


def _pool() -> urllib3.PoolManager:
    # Our own redirect handling checks each hop's scheme; connection errors retry twice.
    retries = urllib3.Retry(total=2, connect=2, read=0, redirect=False, other=0, backoff_factor=1)
    return urllib3.PoolManager(
        retries=retries, timeout=urllib3.Timeout(connect=15, read=60), maxsize=1
    )


def check_scheme(url: str) -> None:
    """Only http and https are fetched, on every redirect hop."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise InvalidInput("the input URL must be http or https (also after redirects)")


def fetch(url: str, dest: Path, max_bytes: int, timeout: float) -> int:
    """Stream `url` into `dest`; stop as soon as `max_bytes` is passed. Returns the size."""
    deadline = time.monotonic() + timeout
    pool = _pool()
    check_scheme(url)
    try:
        for _hop in range(MAX_REDIRECTS + 1):
            response = pool.request(
                "GET",
                url,
                preload_content=False,
                redirect=False,
                decode_content=False,
                headers={"Accept-Encoding": "identity"},
            )
            if response.status not in _REDIRECTS:
                break
            location = response.headers.get("Location", "")
            response.release_conn()
            url = urljoin(url, location)
            check_scheme(url)
        else:
            raise InvalidInput(f"the input URL redirects more than {MAX_REDIRECTS} times")
        log("fetch", url=redact_url(url), status=response.status)
        if 400 <= response.status < 500:
            raise InputNotFound(
                f"the input URL answered HTTP {response.status}; check that the object or URL "
                "exists and is readable"
            )
        if response.status != 200:
            raise TransientError(f"the input URL answered HTTP {response.status}")
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise InvalidInput(f"the input is {int(declared)} bytes; the limit is {max_bytes}")
        size = 0
        with dest.open("wb") as out:
            for chunk in response.stream(CHUNK, decode_content=False):
                size += len(chunk)
                if size > max_bytes:
                    raise InvalidInput(f"the input is larger than the {max_bytes}-byte limit")
                if time.monotonic() > deadline:
                    raise TransientError(f"downloading the input took longer than {timeout:.0f} s")
                out.write(chunk)
        response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise TransientError(f"downloading the input failed: {type(exc).__name__}") from None
    finally:
        pool.clear()
    if size == 0:
        raise InvalidInput("the input is empty")
    return size


def upload(path: Path, url: str, content_type: str) -> None:
    """PUT the file to the presigned URL with its Content-Type and Content-Length."""
    size = path.stat().st_size
    pool = _pool()
    try:
        with path.open("rb") as body:
            response = pool.request(
                "PUT",
                url,
                body=body,
                headers={"Content-Type": content_type, "Content-Length": str(size)},
                redirect=False,
            )
    except urllib3.exceptions.HTTPError as exc:
        raise TransientError(f"uploading the output failed: {type(exc).__name__}") from None
    finally:
        pool.clear()
    log("upload", url=redact_url(url), status=response.status, size=size)
    if not 200 <= response.status < 300:
        raise TransientError(f"uploading the output failed: HTTP {response.status}")
