"""/metrics: served without auth, outside the OpenAPI schema, probes not counted, and the
contract's series wired to what the API does (issue 13 item 3). The counts after real
uploads and logins are proven in tests/integration/test_api_metrics.py."""

from __future__ import annotations

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient
from prometheus_client import REGISTRY

from mediaflow_api.app import create_app
from mediaflow_api.auth.service import unauthorized
from mediaflow_api.problems import EXCEPTION_HANDLERS
from tests.unit.api.conftest import FakeClients, make_settings

pytestmark = pytest.mark.unit

CONTRACT_SERIES = [
    "mediaflow_api_upload_bytes_total",
    "mediaflow_api_upload_seconds",
    "mediaflow_api_uploads_rejected_total",
    "mediaflow_api_rate_limited_total",
    "mediaflow_api_auth_failures_total",
    "mediaflow_storage_up",
    "mediaflow_storage_errors_total",
]


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_are_served_without_auth_in_the_prometheus_format(
    client: TestClient[Litestar],
) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for series in CONTRACT_SERIES:
        assert f"# TYPE {series} " in response.text, series


def test_metrics_are_not_part_of_the_public_schema(client: TestClient[Litestar]) -> None:
    paths = client.get("/docs/openapi.json").json()["paths"]
    assert "/metrics" not in paths
    assert all(path.startswith("/api/v1/") for path in paths)


def test_requests_are_counted_by_route_template_but_not_scrapes_or_probes(
    client: TestClient[Litestar],
) -> None:
    labels = {"app_name": "mediaflow_api", "method": "GET", "status_code": "200"}
    before = value("mediaflow_api_requests_total", path="/docs/openapi.json", **labels)
    client.get("/docs/openapi.json")
    client.get("/metrics")
    client.get("/api/v1/health")
    after = value("mediaflow_api_requests_total", path="/docs/openapi.json", **labels)
    assert after == before + 1
    text = client.get("/metrics").text
    assert 'path="/metrics"' not in text
    assert 'path="/api/v1/health"' not in text
    # Paths no route matched are not counted: their label would be the raw path.
    client.get("/no/such/path/1234")
    assert "/no/such/path" not in client.get("/metrics").text


def test_storage_up_follows_the_health_check(
    client: TestClient[Litestar], fakes: FakeClients
) -> None:
    errors = value("mediaflow_storage_errors_total", component="api")
    fakes.bucket_present = False
    client.get("/api/v1/health")
    assert value("mediaflow_storage_up", component="api") == 0
    assert value("mediaflow_storage_errors_total", component="api") == errors + 1
    fakes.bucket_present = True
    client.get("/api/v1/health")
    assert value("mediaflow_storage_up", component="api") == 1
    assert value("mediaflow_storage_errors_total", component="api") == errors + 1


def test_a_401_is_an_auth_failure_by_its_slug() -> None:
    @get("/guarded")
    async def guarded() -> None:
        raise unauthorized("token-expired", "Token expired", "Log in again.")

    app = Litestar([guarded], exception_handlers=EXCEPTION_HANDLERS)
    before = value("mediaflow_api_auth_failures_total", reason="token-expired")
    with TestClient(app) as client:
        assert client.get("/guarded").status_code == 401
        assert client.get("/guarded").status_code == 401
    assert value("mediaflow_api_auth_failures_total", reason="token-expired") == before + 2


def test_a_sign_in_refused_by_the_address_limit_is_counted(fakes: FakeClients) -> None:
    app = create_app(
        make_settings(auth_rate_limit_burst=1, auth_rate_limit_per_minute=0.001),
        clients_factory=lambda _settings: fakes,
    )
    before = value("mediaflow_api_rate_limited_total", limit="auth-address")
    form = {"username": "someone@example.com", "password": "whatever it is"}
    with TestClient(app) as client:
        client.post("/api/v1/auth/login", data=form)  # takes the one attempt
        refused = client.post("/api/v1/auth/login", data=form)
    assert refused.status_code == 429
    assert refused.json()["type"] == "urn:mediaflow:problem:rate-limited"
    assert value("mediaflow_api_rate_limited_total", limit="auth-address") == before + 1
