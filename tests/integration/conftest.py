import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.environment import MinioSettings, ScratchNamespace, kube_client, restricted_namespace
from tests.integration.operator_process import OperatorProcess

CRD = Path(__file__).resolve().parents[2] / "crds/mediajobs.yaml"


@pytest.fixture(scope="session")
def kube() -> client.ApiClient:
    return kube_client()


@pytest.fixture(scope="session")
def minio_settings() -> MinioSettings:
    return MinioSettings.from_env()


@pytest.fixture
def namespace(kube: client.ApiClient) -> Iterator[ScratchNamespace]:
    yield from restricted_namespace(kube, "mf-test")


@pytest.fixture(scope="session")
def operator(kube: client.ApiClient) -> Iterator[OperatorProcess]:
    """The CRD installed from crds/ and the operator running for the whole session."""
    subprocess.run(
        ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(CRD)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["kubectl", "wait", "--for=condition=Established", "crd/mediajobs.mediaflow.io"],
        check=True,
        capture_output=True,
    )
    process = OperatorProcess.start()
    try:
        yield process
    finally:
        process.stop()


# Imported here so this file's earlier part stays as it was (fixtures are only appended).
from tests.integration.api_process import ApiProcess  # noqa: E402


@pytest.fixture(scope="session")
def api() -> Iterator[ApiProcess]:
    """The HTTP API running on a free loopback port with the settings of .local/env."""
    with ApiProcess() as process:
        yield process


@pytest.fixture(scope="session")
def api_namespace(kube: client.ApiClient) -> Iterator[str]:
    """A scratch namespace for the user Secrets (and later MediaJobs) the API writes."""
    for scratch in restricted_namespace(kube, "mf-api"):
        yield scratch.name


@pytest.fixture(scope="session")
def users_namespace(kube: client.ApiClient) -> Iterator[str]:
    """A scratch namespace for the user Secrets alone, as the chart keeps them apart."""
    for scratch in restricted_namespace(kube, "mf-users"):
        yield scratch.name


@pytest.fixture(scope="session")
def auth_api(api_namespace: str, users_namespace: str) -> Iterator[ApiProcess]:
    """The API writing MediaJobs into `api_namespace` and users into `users_namespace`,
    with rate limits no test reaches."""
    env = {
        "MEDIAFLOW_API_NAMESPACE": api_namespace,
        "MEDIAFLOW_API_USERS_NAMESPACE": users_namespace,
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "10000",
        "MEDIAFLOW_API_AUTH_ACCOUNT_RATE_LIMIT_BURST": "10000",
        "MEDIAFLOW_API_RATE_LIMIT_IMAGE_PER_MINUTE": "10000",
        "MEDIAFLOW_API_RATE_LIMIT_VIDEO_PER_MINUTE": "10000",
        "MEDIAFLOW_API_RATE_LIMIT_BATCH_PER_MINUTE": "10000",
    }
    with ApiProcess(env) as process:
        yield process
