"""API unit-test fixtures: settings that ignore the environment, and fake clients.

The fakes stand in for the Kubernetes and MinIO clients only here; the integration tests
use the real ones.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from mediaflow_api.app import create_app
from mediaflow_api.clients import Clients
from mediaflow_api.settings import ApiSettings

REQUIRED = {
    "s3_endpoint": "http://127.0.0.1:9",
    "s3_access_key": "test-access",
    "s3_secret_key": "test-secret-value",
}


@pytest.fixture(autouse=True)
def _no_mediaflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test, not from a sourced .local/env."""
    for name in list(os.environ):
        if name.startswith("MEDIAFLOW_"):
            monkeypatch.delenv(name)


def make_settings(**overrides: object) -> ApiSettings:
    return ApiSettings(**{**REQUIRED, "health_timeout_seconds": 0.5, **overrides})


class FakeClients(Clients):
    """Clients whose answers the test sets; `gate` holds checks until it is set."""

    def __init__(self) -> None:  # no real clients behind this fake
        self.kube_error: Exception | None = None
        self.minio_error: Exception | None = None
        self.queue_error: Exception | None = None
        self.bucket_present = True
        self.gate = threading.Event()
        self.gate.set()
        self.minio_calls = 0
        self.closed = False

    def kubernetes_version(self, timeout: float) -> str:
        if self.kube_error:
            raise self.kube_error
        return "v1.34.4"

    def list_mediajobs(self, namespace: str, timeout: float) -> None:
        if self.queue_error:
            raise self.queue_error

    def bucket_exists(self, bucket: str) -> bool:
        self.minio_calls += 1
        self.gate.wait(10)
        if self.minio_error:
            raise self.minio_error
        return self.bucket_present

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fakes() -> FakeClients:
    return FakeClients()


@pytest.fixture
def app(fakes: FakeClients) -> Litestar:
    return create_app(make_settings(), clients_factory=lambda _settings: fakes)


@pytest.fixture
def client(app: Litestar, fakes: FakeClients) -> Iterator[TestClient[Litestar]]:
    with TestClient(app) as test_client:
        yield test_client
    fakes.gate.set()
