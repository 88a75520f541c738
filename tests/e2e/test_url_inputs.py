"""The release's worker fetches a MediaJob's `input.url` from public addresses only
(`worker.allowPrivateUrlInputs: false`, the chart's default), before any connection: the
refusal does not depend on the NetworkPolicy, which a cluster may not enforce, or may enforce
only a moment after the pod starts.

The URL points at a listener this test owns on the bridge address (10.244.0.1, private). The
release's NetworkPolicy would also keep the pod from it, but as a connect timeout (a
TransientError, retried); a Failed MediaJob whose message names the non-public address, and a
listener that saw no connection at all, show the worker's own guard.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import yaml

from tests.e2e.conftest import run
from tests.environment import Listener, counting_listener, unique_name, wait_until

NODE_IP = "10.244.0.1"  # the bridge address: this machine, as pods see it


@pytest.fixture
def listener() -> Iterator[Listener]:
    """Counts every connection attempt made to it on the bridge address."""
    with counting_listener(NODE_IP) as state:
        yield state


def get_mj(namespace: str, name: str) -> dict:
    return json.loads(run(["kubectl", "-n", namespace, "get", "mj", name, "-o", "json"]))


def test_a_url_on_a_private_address_fails_before_any_connection(
    release: str, listener: Listener
) -> None:
    name = unique_name("e2e-private-url")
    url = f"http://{NODE_IP}:{listener.port}/photo.jpg"
    body = {
        "apiVersion": "mediaflow.io/v1alpha1",
        "kind": "MediaJob",
        "metadata": {"name": name, "namespace": release},
        "spec": {
            "operation": "ImageConvert",
            "input": {"url": url},
            "imageConvert": {"format": "webp"},
        },
    }
    try:
        run(["kubectl", "apply", "-f", "-"], stdin=yaml.safe_dump(body))

        def finished() -> dict | None:
            mj = get_mj(release, name)
            return mj if (mj.get("status") or {}).get("phase") in {"Succeeded", "Failed"} else None

        mj = wait_until(f"MediaJob {release}/{name} to finish", finished, timeout=180)
        status = mj["status"]
        assert status["phase"] == "Failed", status
        assert status["message"] == (
            f"the input URL's host {NODE_IP} is not a public address; "
            "MediaFlow fetches URLs on public addresses only"
        ), status
        succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
        assert succeeded["reason"] == "InvalidInput", succeeded
        time.sleep(0.5)  # any connection would have been accepted by now
        assert listener.connections == 0
    finally:
        run(["kubectl", "-n", release, "delete", "mj", name, "--ignore-not-found", "--timeout=60s"])
