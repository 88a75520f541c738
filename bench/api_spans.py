"""The HTTP API with timing spans around what an upload spends its time on, for benchmarks.

    MEDIAFLOW_BENCH_SPANS=/tmp/spans.jsonl python bench/api_spans.py

Runs `mediaflow_api`'s main after wrapping, in this process only, the library calls every
version of the upload path goes through (so it times an older tree's API too, given on
PYTHONPATH): the multipart parser, libmagic, each S3 request (by kind: object PUT, marker
PUT/DELETE, bulk DELETE...), each Kubernetes API request (by verb and resource), the wait of
a blocking call for a thread of the event loop's executor, and `UploadService.receive`.
Each span is appended to the file as one JSON line `{"span", "start", "seconds"}`
(`time.monotonic()`), read by `bench/upload_api.py --spans`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_LOCK = threading.Lock()
_OUT = Path(os.environ.get("MEDIAFLOW_BENCH_SPANS", "/dev/null")).open("a", buffering=1)  # noqa: SIM115


def record(span: str, start: float, seconds: float) -> None:
    line = json.dumps({"span": span, "start": start, "seconds": seconds})
    with _LOCK:
        _OUT.write(line + "\n")


def timed(span: Callable[..., str], function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            record(span(*args, **kwargs), start, time.monotonic() - start)

    return wrapper


def s3_kind(method: str, url: str) -> str:
    parts = urlsplit(url)
    query = parts.query
    if "delete" in query.split("&") or query.startswith("delete"):
        return "s3 bulk DELETE"
    if parts.path.endswith("/in-progress"):
        return f"s3 marker {method}"
    if "uploadId" in query or "uploads" in query:
        return f"s3 multipart {method}"
    return f"s3 object {method}"


def kube_kind(method: str, url: str) -> str:
    path = urlsplit(url).path
    resource = path.rstrip("/").split("/")
    # .../namespaces/NS/RESOURCE[/NAME]
    if "namespaces" in resource:
        after = resource[resource.index("namespaces") + 2 :]
        name = after[0] if after else "namespace"
        single = len(after) > 1
    else:
        name, single = resource[-1], False
    verb = {"GET": "get" if single else "list", "POST": "create"}.get(method, method.lower())
    return f"kube {verb} {name}"


def install() -> None:
    import kubernetes.client.rest
    import multipart
    import urllib3

    import mediaflow_core.libmagic as libmagic

    # urlopen: what minio-py's own requests and the presigned ones (PoolManager.request)
    # both end in; the Kubernetes client's requests, timed below, are left out by host.
    s3_host = urlsplit(os.environ["MEDIAFLOW_S3_ENDPOINT"]).netloc
    urlopen = urllib3.PoolManager.urlopen

    def timed_urlopen(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if urlsplit(url).netloc != s3_host:
            return urlopen(self, method, url, *args, **kwargs)
        start = time.monotonic()
        try:
            return urlopen(self, method, url, *args, **kwargs)
        finally:
            record(s3_kind(method, url), start, time.monotonic() - start)

    urllib3.PoolManager.urlopen = timed_urlopen  # type: ignore[method-assign]
    rest_request = kubernetes.client.rest.RESTClientObject.request
    kubernetes.client.rest.RESTClientObject.request = timed(  # type: ignore[method-assign]
        lambda self, method, url, *a, **k: kube_kind(method, url), rest_request
    )
    libmagic.mime_type_of_buffer = timed(  # type: ignore[assignment]
        lambda *a, **k: "libmagic sniff", libmagic.mime_type_of_buffer
    )

    parse = multipart.PushMultipartParser.parse

    def timed_parse(self: Any, chunk: Any) -> Iterator[Any]:
        events = parse(self, chunk)
        while True:
            start = time.monotonic()
            try:
                event = next(events)
            except StopIteration:
                record("multipart parse", start, time.monotonic() - start)
                return
            record("multipart parse", start, time.monotonic() - start)
            yield event

    multipart.PushMultipartParser.parse = timed_parse  # type: ignore[method-assign]

    to_thread = asyncio.to_thread

    async def timed_to_thread(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        submitted = time.monotonic()

        def run() -> Any:
            record("wait for an executor thread", submitted, time.monotonic() - submitted)
            return function(*args, **kwargs)

        return await to_thread(run)

    asyncio.to_thread = timed_to_thread  # type: ignore[assignment]

    from mediaflow_api.uploads.service import UploadService

    receive = UploadService.receive

    async def timed_receive(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return await receive(self, *args, **kwargs)
        finally:
            record("UploadService.receive (whole request body to answer)", start,
                   time.monotonic() - start)  # fmt: skip

    UploadService.receive = timed_receive  # type: ignore[method-assign]


def set_concurrency() -> None:
    """MEDIAFLOW_BENCH_CONCURRENCY=N: the upload path's stores and creates at once (a knob of
    this benchmark only, to compare values; the API itself has constants)."""
    value = os.environ.get("MEDIAFLOW_BENCH_CONCURRENCY")
    if value:
        from mediaflow_api.uploads import service

        service.STORE_CONCURRENCY = service.CREATE_CONCURRENCY = int(value)  # type: ignore[attr-defined]


if __name__ == "__main__":
    if os.environ.get("MEDIAFLOW_BENCH_SPANS"):
        install()
    set_concurrency()
    from mediaflow_api.__main__ import main

    sys.exit(main())
