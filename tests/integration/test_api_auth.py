"""`/api/v1/auth/*` against the real API process and kube-apiserver (users are Secrets)."""

# ruff: noqa: S105 - test passwords and token ids are fixtures, not secrets

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import httpx
import pytest
from kubernetes import client

from tests.integration.api_process import ApiProcess

PASSWORD = "correct horse battery"
PROBLEM_JSON = "application/problem+json"


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@Example.com"


def post(api: ApiProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{api.url}/api/v1/auth/{path}", timeout=30, **kwargs)


def register(api: ApiProcess, email: str, password: str = PASSWORD) -> httpx.Response:
    return post(api, "register", json={"email": email, "password": password})


def login(api: ApiProcess, email: str, password: str = PASSWORD) -> httpx.Response:
    return post(api, "login", data={"username": email, "password": password})


def refresh(api: ApiProcess, token: str) -> httpx.Response:
    return post(api, "refresh", json={"refresh_token": token})


def me(api: ApiProcess, token: str) -> httpx.Response:
    return httpx.get(
        f"{api.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    assert body["detail"]
    return body


@pytest.fixture
def user(auth_api: ApiProcess) -> dict[str, Any]:
    """A registered user: its email and the tokens of the registration."""
    email = new_email()
    response = register(auth_api, email)
    assert response.status_code == 201, response.text
    return {"email": email.lower(), **response.json()["data"]}


def test_register_stores_a_labelled_secret_without_the_password(
    auth_api: ApiProcess, api_namespace: str, kube: client.ApiClient
) -> None:
    email = new_email()
    response = register(auth_api, email)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert data["user"]["email"] == email.lower()
    assert data["tokens"]["token_type"] == "bearer"
    assert data["tokens"]["access_token"]
    assert data["tokens"]["refresh_token"]

    name = "user-" + hashlib.sha256(email.lower().encode()).hexdigest()[:32]
    secret = client.CoreV1Api(kube).read_namespaced_secret(name, api_namespace)
    assert secret.metadata.labels["mediaflow.io/user"] == "true"
    assert secret.metadata.labels["app.kubernetes.io/part-of"] == "mediaflow"
    stored = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    assert stored["email"] == email.lower()
    assert stored["password-hash"].startswith("$argon2id$")
    everything = repr(secret.to_dict()) + repr(stored)
    assert PASSWORD not in everything
    assert base64.b64encode(PASSWORD.encode()).decode() not in everything


def test_registering_an_email_twice_is_409_whatever_its_case(
    auth_api: ApiProcess, user: dict[str, Any]
) -> None:
    body = problem(register(auth_api, user["email"].upper(), "another password"), 409)
    assert body["type"].endswith("email-taken")
    assert user["email"] in body["detail"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "a@example.com", "password": "x" * 129}, "password"),
        ({"email": "a@example.com"}, "password"),
    ],
)
def test_register_validates_email_and_password(
    auth_api: ApiProcess, payload: dict[str, str], field: str
) -> None:
    body = problem(post(auth_api, "register", json=payload), 422)
    assert [e["field"] for e in body["errors"]] == [field]


def test_login_answers_the_flat_oauth2_body(auth_api: ApiProcess, user: dict[str, Any]) -> None:
    response = login(auth_api, user["email"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["access_token"]
    assert body["refresh_token"]
    assert "success" not in body
    assert me(auth_api, body["access_token"]).json()["data"]["email"] == user["email"]


def test_wrong_password_and_unknown_email_answer_the_same(
    auth_api: ApiProcess, user: dict[str, Any]
) -> None:
    wrong = login(auth_api, user["email"], "wrong password!")
    unknown = login(auth_api, new_email())
    for response in (wrong, unknown):
        problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    assert wrong.json() == unknown.json()


def test_me_takes_the_access_token_not_the_refresh_token(
    auth_api: ApiProcess, user: dict[str, Any]
) -> None:
    ok = me(auth_api, user["tokens"]["access_token"])
    assert ok.status_code == 200, ok.text
    assert ok.json()["data"] == user["user"]
    problem(me(auth_api, user["tokens"]["refresh_token"]), 401)
    problem(httpx.get(f"{auth_api.url}/api/v1/auth/me", timeout=30), 401)


def test_refresh_rotates_and_reuse_revokes_the_family(
    auth_api: ApiProcess, user: dict[str, Any]
) -> None:
    first = user["tokens"]["refresh_token"]
    rotated = refresh(auth_api, first)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["data"]["refresh_token"]
    assert me(auth_api, rotated.json()["data"]["access_token"]).status_code == 200

    # The first token was used: presenting it again revokes the family...
    assert problem(refresh(auth_api, first), 401)["type"].endswith("refresh-reused")
    # ...so the newest token of that login stops working too.
    assert problem(refresh(auth_api, second), 401)["type"].endswith("refresh-revoked")

    # Other logins of the same user are unaffected.
    other = login(auth_api, user["email"]).json()["refresh_token"]
    assert refresh(auth_api, other).status_code == 200


def test_refresh_refuses_an_access_token_and_garbage(
    auth_api: ApiProcess, user: dict[str, Any]
) -> None:
    problem(refresh(auth_api, user["tokens"]["access_token"]), 401)
    problem(refresh(auth_api, "not.a.token"), 401)


def test_login_and_register_are_rate_limited_per_client(api_namespace: str) -> None:
    # The bucket refills once in 1000 minutes: the outcome does not depend on timing.
    env = {
        "MEDIAFLOW_API_NAMESPACE": api_namespace,
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "3",
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_PER_MINUTE": "0.001",
    }
    with ApiProcess(env) as api:
        email = new_email()
        assert register(api, email).status_code == 201
        assert login(api, email).status_code == 200
        assert login(api, email, "wrong password!").status_code == 401
        limited = [login(api, email), register(api, new_email())]
        # Other endpoints are not limited.
        health = httpx.get(f"{api.url}/api/v1/health", timeout=30)
    for response in limited:
        body = problem(response, 429)
        assert body["type"].endswith("rate-limited")
        assert int(response.headers["retry-after"]) > 0
    assert health.status_code == 200
