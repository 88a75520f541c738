"""Access to the local environment (hack/cluster-up.sh writes .local/env) for tests.

Tests that need the environment fail, never skip, when it is missing: a skipped test
would hide a broken environment.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from minio import Minio

# Several developers (or agents) can run the integration tests against one local cluster at
# once: each sets its own MEDIAFLOW_TEST_LANE (a short lowercase word), which gives its scratch
# namespaces, its test operator's watched globs and its logs their own names. CI sets none.
TEST_LANE = os.environ.get("MEDIAFLOW_TEST_LANE", "")
if TEST_LANE and not TEST_LANE.isalnum():
    raise RuntimeError(f"MEDIAFLOW_TEST_LANE={TEST_LANE!r}: use letters and digits only")


def lane_prefix(prefix: str) -> str:
    """A scratch-namespace prefix of this lane: `mf-test` or, in lane `a`, `mf-testa`."""
    return f"{prefix}{TEST_LANE.lower()}"


def require_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run `make up` and `source .local/env` first")
    return value


@dataclass(frozen=True)
class MinioSettings:
    endpoint: str  # reachable from the host
    internal_endpoint: str  # reachable from pods
    access_key: str
    secret_key: str
    bucket: str
    region: str

    @classmethod
    def from_env(cls) -> MinioSettings:
        return cls(
            endpoint=require_env("MINIO_ENDPOINT"),
            internal_endpoint=require_env("MINIO_INTERNAL_ENDPOINT"),
            access_key=require_env("MINIO_ACCESS_KEY"),
            secret_key=require_env("MINIO_SECRET_KEY"),
            bucket=require_env("MINIO_BUCKET"),
            region=os.environ.get("MINIO_REGION", "us-east-1"),
        )

    def client(self, *, internal: bool = False) -> Minio:
        """A client for the host endpoint, or one that signs URLs for the pods' endpoint.

        The region is given so that signing a URL needs no network call.
        """
        url = self.internal_endpoint if internal else self.endpoint
        scheme, _, host = url.partition("://")
        return Minio(
            host,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=scheme == "https",
            region=self.region,
        )


def kube_client() -> client.ApiClient:
    config.load_kube_config(config_file=require_env("KUBECONFIG"))
    return client.ApiClient()


def wait_until(
    what: str, predicate: Callable[[], Any], timeout: float = 120, interval: float = 0.5
) -> Any:
    """Poll predicate until it returns something truthy; fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class ScratchNamespace:
    name: str
    core: client.CoreV1Api
    batch: client.BatchV1Api


def restricted_namespace(api: client.ApiClient, prefix: str) -> Iterator[ScratchNamespace]:
    """A namespace enforcing the `restricted` Pod Security profile, deleted afterwards."""
    core = client.CoreV1Api(api)
    name = unique_name(lane_prefix(prefix))
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "app.kubernetes.io/part-of": "mediaflow-tests",
    }
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    wait_until(
        "the default service account",
        lambda: (
            core.list_namespaced_service_account(name, field_selector="metadata.name=default").items
        ),
    )
    try:
        yield ScratchNamespace(name=name, core=core, batch=client.BatchV1Api(api))
    finally:
        core.delete_namespace(name, propagation_policy="Foreground")


@dataclass
class Listener:
    """A TCP listener that counts connection attempts (tests expect zero)."""

    port: int
    connections: int = 0


@contextmanager
def counting_listener(address: str) -> Iterator[Listener]:
    """Listen on `address` (a free port), accept and count every connection, until exit."""
    sock = socket.socket()
    sock.bind((address, 0))
    sock.listen(8)
    sock.settimeout(0.1)
    state = Listener(sock.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            state.connections += 1
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join()
        sock.close()
