"""The Helm release `make up` installs (hack/helm-up.sh): release `mediaflow` in namespace
`mediaflow`, its API reachable at MEDIAFLOW_API_URL, its storage the environment's MinIO."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from kubernetes import client

from tests.environment import MinioSettings, kube_client, require_env

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts/mediaflow"
RELEASE = "mediaflow"
NAMESPACE = "mediaflow"


def run(args: Sequence[str], *, timeout: float = 300, stdin: str | None = None) -> str:
    """Run a command; fail with its output when it fails."""
    result = subprocess.run(
        list(args), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(args)} exited {result.returncode}\n{result.stdout[-3000:]}\n"
        f"{result.stderr[-3000:]}"
    )
    return result.stdout


@pytest.fixture(scope="session")
def kube() -> client.ApiClient:
    return kube_client()


@pytest.fixture(scope="session")
def minio_settings() -> MinioSettings:
    return MinioSettings.from_env()


@pytest.fixture(scope="session")
def api_url() -> str:
    return require_env("MEDIAFLOW_API_URL").rstrip("/")


@pytest.fixture(scope="session")
def release(kube: client.ApiClient) -> str:
    """The release of `make up`, its operator and API Ready; its namespace."""
    run(["helm", "status", RELEASE, "-n", NAMESPACE])
    for component in ("operator", "api"):
        run(
            [
                "kubectl",
                "-n",
                NAMESPACE,
                "wait",
                "--for=condition=Ready",
                "pod",
                "-l",
                f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}",
                "--timeout=120s",
            ]
        )
    return NAMESPACE
