"""create_app: health with fake clients, problem details for every error, OpenAPI, CORS."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from litestar import Litestar, get, post
from litestar.params import FromQuery, JSONBody
from litestar.testing import TestClient
from pydantic import BaseModel, Field

from mediaflow_api.app import create_app
from mediaflow_api.auth.tokens import TokenCodec, TokenType
from mediaflow_api.problems import PROBLEM_JSON, VALIDATION_TYPE, Problem, problem_responses
from tests.unit.api.conftest import FakeClients, make_settings

HEALTH = "/api/v1/health"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["detail"]
    return body


# ---------------------------------------------------------------- health


def token_headers(app: Litestar) -> dict[str, str]:
    """A valid access token of this app's key: the caller sees each component's detail."""
    codec: TokenCodec = app.state.token_codec
    return {"Authorization": f"Bearer {codec.encode(str(uuid.uuid4()), TokenType.ACCESS)}"}


def test_health_up(app: Litestar, client: TestClient[Litestar]) -> None:
    response = client.get(HEALTH, headers=token_headers(app))
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["message"]
    data = body["data"]
    assert data["status"] == "healthy"
    assert {name: c["status"] for name, c in data["components"].items()} == {
        "kubernetes": "up",
        "mediajobs": "up",
        "minio": "up",
        "ffmpeg": "up",
        "cwebp": "up",
    }
    assert "v1.34.4" in data["components"]["kubernetes"]["detail"]
    assert data["components"]["ffmpeg"]["detail"].startswith("ffmpeg version")
    # The previous service's flat keys.
    assert {k: data[k] for k in ("database", "redis", "minio", "ffmpeg", "cwebp")} == dict.fromkeys(
        ("database", "redis", "minio", "ffmpeg", "cwebp"), "ok"
    )


def test_anonymous_callers_see_states_but_no_versions_or_errors(
    app: Litestar, client: TestClient[Litestar], fakes: FakeClients
) -> None:
    fakes.minio_error = ConnectionRefusedError("connection refused to 10.0.0.5:9000")
    for headers in ({}, {"Authorization": "Bearer forged.token.here"}):
        response = client.get(HEALTH, headers=headers)
        assert response.status_code == 503
        text = response.text
        assert "v1.34.4" not in text
        assert "10.0.0.5" not in text
        assert "ffmpeg version" not in text
        data = response.json()["data"]
        assert data["components"]["minio"] == {"status": "down", "detail": None}
        assert data["minio"] == "error"
        assert data["database"] == "ok"
    detailed = client.get(HEALTH, headers=token_headers(app)).json()["data"]
    assert "10.0.0.5" in detailed["components"]["minio"]["detail"]


def test_health_minio_down(app: Litestar, client: TestClient[Litestar], fakes: FakeClients) -> None:
    fakes.minio_error = ConnectionRefusedError("connection refused")
    response = client.get(HEALTH, headers=token_headers(app))
    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False
    assert "minio" in body["message"]
    assert "kubernetes" not in body["message"]
    minio = body["data"]["components"]["minio"]
    assert minio["status"] == "down"
    assert "connection refused" in minio["detail"]
    assert body["data"]["components"]["kubernetes"]["status"] == "up"


def test_health_missing_bucket_is_down(
    app: Litestar, client: TestClient[Litestar], fakes: FakeClients
) -> None:
    fakes.bucket_present = False
    response = client.get(HEALTH, headers=token_headers(app))
    assert response.status_code == 503
    assert "does not exist" in response.json()["data"]["components"]["minio"]["detail"]


def test_health_kubernetes_down(client: TestClient[Litestar], fakes: FakeClients) -> None:
    fakes.kube_error = OSError("no route to host")
    response = client.get(HEALTH)
    assert response.status_code == 503
    body = response.json()
    assert body["message"] == "Unavailable: kubernetes down."
    assert body["data"]["components"]["kubernetes"]["status"] == "down"
    assert body["data"]["database"] == "error"


def test_health_queue_down_is_redis(client: TestClient[Litestar], fakes: FakeClients) -> None:
    fakes.queue_error = LookupError("the server could not find the requested resource")
    body = client.get(HEALTH).json()
    assert body["message"] == "Unavailable: mediajobs down."
    assert (body["data"]["redis"], body["data"]["database"]) == ("error", "ok")


def test_health_names_a_missing_tool(
    app: Litestar, fakes: FakeClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with TestClient(app) as client:
        response = client.get(HEALTH, headers=token_headers(app))
    assert response.status_code == 503
    data = response.json()["data"]
    assert (data["ffmpeg"], data["cwebp"], data["minio"]) == ("error", "error", "ok")
    assert "not on PATH" in data["components"]["cwebp"]["detail"]


def test_a_hung_check_answers_within_the_timeout_and_is_not_piled_up(
    app: Litestar, client: TestClient[Litestar], fakes: FakeClients
) -> None:
    fakes.gate.clear()  # MinIO never answers
    started = time.monotonic()
    headers = token_headers(app)
    with ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(lambda _: client.get(HEALTH, headers=headers), range(3)))
    assert time.monotonic() - started < 5
    for response in responses:
        assert response.status_code == 503
        assert "no answer within 0.5s" in response.json()["data"]["components"]["minio"]["detail"]
    assert fakes.minio_calls == 1  # one thread blocked, not one per request
    fakes.gate.set()


def test_clients_are_closed_on_shutdown(app: Litestar, fakes: FakeClients) -> None:
    with TestClient(app):
        assert not fakes.closed
    assert fakes.closed


# ---------------------------------------------------------------- problem details


class Thing(BaseModel):
    name: str = Field(min_length=1)
    size: int = Field(ge=1)


@post("/test/things", sync_to_thread=False, responses=problem_responses(422))
def create_thing(data: JSONBody[Thing], count: FromQuery[int]) -> Thing:
    return data


@get("/test/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("database password is hunter2")


@get("/test/taken", sync_to_thread=False)
def taken() -> None:
    raise Problem(409, "email-taken", "Email already registered", "Log in, or use another email.")


def test_unknown_path_is_a_404_problem(client: TestClient[Litestar]) -> None:
    body = assert_problem(client.get("/api/v1/nothing-here"), 404)
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"
    assert body["instance"] == "/api/v1/nothing-here"


def test_wrong_method_is_a_405_problem(client: TestClient[Litestar]) -> None:
    response = client.delete(HEALTH)
    body = assert_problem(response, 405)
    assert body["title"] == "Method Not Allowed"
    assert "GET" in response.headers["allow"]
    assert "DELETE" in body["detail"]


def test_unexpected_error_is_a_500_problem_that_hides_the_cause(
    app: Litestar, fakes: FakeClients
) -> None:
    app.register(boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        body = assert_problem(client.get("/test/boom"), 500)
    assert body["title"] == "Internal Server Error"
    assert "hunter2" not in str(body)


def test_validation_errors_name_the_fields(app: Litestar) -> None:
    app.register(create_thing)
    with TestClient(app) as client:
        response = client.post("/test/things?count=many", json={"name": "a", "size": 1})
        body = assert_problem(response, 422)
        assert body["type"] == VALIDATION_TYPE
        assert [(e["field"], e["source"]) for e in body["errors"]] == [("count", "query")]
        assert body["errors"][0]["message"]
        assert "count" in body["detail"]

        response = client.post("/test/things?count=1", json={"name": "", "size": 0})
        body = assert_problem(response, 422)
        assert {error["field"] for error in body["errors"]} == {"name", "size"}

        response = client.post(
            "/test/things?count=1",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert_problem(response, 400)


def test_problems_of_this_api_keep_their_type(app: Litestar) -> None:
    app.register(taken)
    with TestClient(app) as client:
        body = assert_problem(client.get("/test/taken"), 409)
    assert body == {
        "type": "urn:mediaflow:problem:email-taken",
        "title": "Email already registered",
        "status": 409,
        "detail": "Log in, or use another email.",
        "instance": "/test/taken",
    }


# ---------------------------------------------------------------- OpenAPI and CORS


def test_docs_are_served(client: TestClient[Litestar]) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "getHealth" in response.text  # Swagger UI embeds the schema


def test_openapi_schema_describes_health(client: TestClient[Litestar]) -> None:
    response = client.get("/docs/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    operation = schema["paths"][HEALTH]["get"]
    assert operation["operationId"] == "getHealth"
    assert {"200", "503"} <= set(operation["responses"])


def test_cors_origins_come_from_settings(fakes: FakeClients) -> None:
    app = create_app(
        make_settings(cors_origins=["https://app.example"]), clients_factory=lambda _: fakes
    )
    with TestClient(app) as client:
        allowed = client.get(HEALTH, headers={"origin": "https://app.example"})
        other = client.get(HEALTH, headers={"origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in other.headers


def test_no_cors_headers_without_origins(client: TestClient[Litestar]) -> None:
    response = client.get(HEALTH, headers={"origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers
