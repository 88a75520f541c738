from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.environment import MinioSettings, ScratchNamespace, kube_client, restricted_namespace


@pytest.fixture(scope="session")
def kube() -> client.ApiClient:
    return kube_client()


@pytest.fixture(scope="session")
def minio_settings() -> MinioSettings:
    return MinioSettings.from_env()


@pytest.fixture
def namespace(kube: client.ApiClient) -> Iterator[ScratchNamespace]:
    yield from restricted_namespace(kube, "mf-test")
