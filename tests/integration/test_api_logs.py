"""The API's logs from a real process (issue 13 item 6): JSON lines, each request's line
with its id, user, route, status and duration; no email, password or token in them; text
lines when asked for."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.environment import wait_until
from tests.integration import api_process
from tests.integration.api_process import ApiProcess
from tests.integration.test_api_jobs import PASSWORD, User, cleanup  # noqa: F401 - fixture
from tests.media import make_photo

pytestmark = pytest.mark.integration

WEBP = "/api/v1/image/convert/webp"


def api_with_log(log: Path, env: dict[str, str]) -> ApiProcess:
    """An API process whose output goes to `log` alone (ApiProcess appends to the lane's
    shared test log otherwise)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api_process, "LOG", log)
        return ApiProcess(env).__enter__()


@pytest.fixture(scope="module")
def logged_api(
    api_namespace: str, users_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ApiProcess, Path]]:
    log = tmp_path_factory.mktemp("api-logs") / "api.log"
    env = {
        "MEDIAFLOW_API_NAMESPACE": api_namespace,
        "MEDIAFLOW_API_USERS_NAMESPACE": users_namespace,
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "10000",
        "MEDIAFLOW_API_AUTH_ACCOUNT_RATE_LIMIT_BURST": "10000",
    }
    env.pop("MEDIAFLOW_API_LOG_FORMAT", None)  # the default: JSON
    process = api_with_log(log, env)
    try:
        yield process, log
    finally:
        process.__exit__()


def json_lines(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_the_api_logs_json_lines_with_the_request_and_user(
    logged_api: tuple[ApiProcess, Path],
    cleanup: None,  # noqa: F811 - the fixture (with the operator, which it needs)
    tmp_path: Path,
) -> None:
    api, log = logged_api
    user = User(api)
    request_id = f"logs-{uuid.uuid4().hex}"
    photo = make_photo(tmp_path / "photo.jpg")
    response = httpx.post(
        f"{api.url}{WEBP}",
        headers={**user.headers, "X-Request-ID": request_id},
        files={"file": ("photo.jpg", photo.read_bytes())},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    wrong = httpx.post(
        f"{api.url}/api/v1/auth/login",
        data={"username": user.email, "password": "not the password"},
        timeout=30,
    )
    assert wrong.status_code == 401
    httpx.get(f"{api.url}/no/such/path", timeout=30)

    def request_lines() -> list[dict[str, Any]]:
        return [r for r in json_lines(log) if r["logger"] == "mediaflow_api.access"]

    # Each line is written as its response's last byte goes out; give the process's
    # stderr a moment to reach the file.
    def when_complete() -> list[dict[str, Any]] | None:
        lines = request_lines()
        return lines if any(r["path"] == "/no/such/path" for r in lines) else None

    records = wait_until("the request lines in the log", when_complete, timeout=10)
    (line,) = [r for r in records if r["request_id"] == request_id]
    assert line["level"] == "INFO"
    assert line["user_id"] == user.id
    assert (line["method"], line["route"], line["path"], line["status"]) == (
        "POST",
        WEBP,
        WEBP,
        202,
    )
    assert line["duration_ms"] > 0
    assert line["time"].startswith("20")
    (failed,) = [r for r in records if r["request_id"] == wrong.headers["x-request-id"]]
    assert (failed["route"], failed["status"], failed["user_id"]) == (
        "/api/v1/auth/login",
        401,
        None,
    )
    (unknown,) = [r for r in records if r["path"] == "/no/such/path"]
    assert (unknown["route"], unknown["status"]) == (None, 404)
    # Uvicorn's own records (start-up) come in the same format, and no access line of its.
    everything = json_lines(log)
    assert any(r["logger"].startswith("uvicorn") for r in everything)
    assert not any(r["logger"] == "uvicorn.access" for r in everything)
    text = log.read_text()
    for secret in (user.email, PASSWORD, "not the password", user.headers["Authorization"][7:]):
        assert secret not in text


def test_text_logs_for_development(
    api_namespace: str, users_namespace: str, tmp_path: Path
) -> None:
    log = tmp_path / "api.log"
    env = {
        "MEDIAFLOW_API_NAMESPACE": api_namespace,
        "MEDIAFLOW_API_USERS_NAMESPACE": users_namespace,
        "MEDIAFLOW_API_LOG_FORMAT": "text",
    }
    api = api_with_log(log, env)
    try:
        response = httpx.get(
            f"{api.url}/no/such/path", headers={"X-Request-ID": "text-log-1"}, timeout=30
        )
        assert response.headers["x-request-id"] == "text-log-1"
    finally:
        api.__exit__()
    lines = log.read_text().splitlines()
    (line,) = [line for line in lines if "[text-log-1]" in line]
    assert "mediaflow_api.access" in line
    assert "GET /no/such/path 404" in line
    assert not any(line.startswith("{") for line in lines)
