"""`GET /api/v1/health` against the real Kubernetes API server and MinIO."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.api_process import LOOPBACK, ApiProcess, free_port


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(url, timeout=15)
    return response.status_code, response.json()


def test_health_reports_both_components_up(api: ApiProcess) -> None:
    status, body = get_json(f"{api.url}/api/v1/health")
    assert status == 200, body
    assert body["success"] is True
    assert body["data"]["status"] == "healthy"
    components = body["data"]["components"]
    assert components["kubernetes"]["status"] == "up"
    assert components["kubernetes"]["detail"].startswith("API server v1.")
    assert components["minio"]["status"] == "up"


def test_health_is_503_naming_minio_when_minio_is_unreachable() -> None:
    closed = f"http://{LOOPBACK}:{free_port()}"
    with ApiProcess({"MEDIAFLOW_S3_ENDPOINT": closed}) as api:
        status, body = get_json(f"{api.url}/api/v1/health")
    assert status == 503, body
    assert body["success"] is False
    assert "minio" in body["message"]
    assert "kubernetes" not in body["message"]
    assert body["data"]["components"]["minio"]["status"] == "down"
    assert body["data"]["components"]["kubernetes"]["status"] == "up"


def test_unknown_paths_answer_problem_details(api: ApiProcess) -> None:
    response = httpx.get(f"{api.url}/api/v1/no-such-thing", timeout=15)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
