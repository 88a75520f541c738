"""The local Prometheus (hack/prometheus.sh) for tests: its HTTP API at PROMETHEUS_URL, and
registering a process of this machine (a test's own operator or API) as a scrape target.

    with scrape_target(f"127.0.0.1:{port}", job="mediaflow-operator-test"):
        wait_until("scraped", lambda: query('up{job="mediaflow-operator-test"} == 1'))

Give such targets a job of their own: `mediaflow-operator` / `mediaflow-api` are the release's,
and its alert rules aggregate over them."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.environment import require_env


def prometheus(path: str, **params: str) -> Any:
    """GET PROMETHEUS_URL/api/v1/PATH; its `data` (fails on an error status)."""
    url = f"{require_env('PROMETHEUS_URL').rstrip('/')}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our local URL)
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def query(expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    return prometheus("query", query=expr)["result"]


@contextmanager
def scrape_target(address: str, *, job: str, **labels: str) -> Iterator[None]:
    """Have Prometheus scrape http://ADDRESS/metrics (every 5 s) with these labels, until exit."""
    directory = Path(require_env("PROMETHEUS_TARGETS_DIR"))
    path = directory / f"{job}-{uuid.uuid4().hex[:8]}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": [address], "labels": {"job": job, **labels}}]))
    tmp.rename(path)  # Prometheus must never read half a file
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
