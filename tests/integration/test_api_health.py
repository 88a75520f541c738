"""`GET /api/v1/health` against the real Kubernetes API server, MinIO and tools."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.integration.api_process import LOOPBACK, ApiProcess, free_port

COMPONENTS = {"kubernetes", "mediajobs", "minio", "ffmpeg", "cwebp"}
# The previous service's monitors read these flat keys.
FLAT_KEYS = ("database", "redis", "minio", "ffmpeg", "cwebp")


def get_json(url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    response = httpx.get(url, timeout=15, **kwargs)
    return response.status_code, response.json()


def test_health_reports_every_component_up_with_the_previous_services_keys(
    api: ApiProcess,
) -> None:
    status, body = get_json(f"{api.url}/api/v1/health")
    assert status == 200, body
    assert body["success"] is True
    data = body["data"]
    assert data["status"] == "healthy"
    assert {k: data[k] for k in FLAT_KEYS} == dict.fromkeys(FLAT_KEYS, "ok")
    assert {name: c["status"] for name, c in data["components"].items()} == dict.fromkeys(
        COMPONENTS, "up"
    )


def test_anonymous_callers_get_no_versions_but_users_do(auth_api: ApiProcess) -> None:
    anonymous = httpx.get(f"{auth_api.url}/api/v1/health", timeout=15)
    assert anonymous.status_code == 200, anonymous.text
    assert all(c["detail"] is None for c in anonymous.json()["data"]["components"].values())
    assert "API server" not in anonymous.text
    assert "version" not in anonymous.text

    registered = httpx.post(
        f"{auth_api.url}/api/v1/auth/register",
        json={"email": f"health-{uuid.uuid4().hex[:10]}@example.com", "password": "a long one"},
        timeout=30,
    )
    assert registered.status_code == 201, registered.text
    token = registered.json()["data"]["tokens"]["access_token"]
    status, body = get_json(
        f"{auth_api.url}/api/v1/health", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200, body
    components = body["data"]["components"]
    assert components["kubernetes"]["detail"].startswith("API server v1.")
    assert components["ffmpeg"]["detail"].startswith("ffmpeg version")
    assert components["mediajobs"]["detail"]
    assert components["minio"]["detail"]


def test_health_is_503_naming_minio_when_minio_is_unreachable() -> None:
    port = free_port()
    with ApiProcess({"MEDIAFLOW_S3_ENDPOINT": f"http://{LOOPBACK}:{port}"}) as api:
        response = httpx.get(f"{api.url}/api/v1/health", timeout=15)
    status, body = response.status_code, response.json()
    assert status == 503, body
    assert body["success"] is False
    assert "minio" in body["message"]
    assert "kubernetes" not in body["message"]
    assert body["data"]["components"]["minio"]["status"] == "down"
    assert body["data"]["components"]["kubernetes"]["status"] == "up"
    assert (body["data"]["minio"], body["data"]["database"]) == ("error", "ok")
    # The error (here: a refused connection to that port) is for the log, not the caller.
    assert str(port) not in response.text


def test_unknown_paths_answer_problem_details(api: ApiProcess) -> None:
    response = httpx.get(f"{api.url}/api/v1/no-such-thing", timeout=15)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
