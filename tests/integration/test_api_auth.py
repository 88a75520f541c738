"""`/api/v1/auth/*` against the real API process and kube-apiserver (users are Secrets)."""

# ruff: noqa: S105 - test passwords and token ids are fixtures, not secrets

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from typing import Any

import httpx
import jwt
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
    auth_api: ApiProcess, users_namespace: str, kube: client.ApiClient
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
    # In the users' own namespace (MEDIAFLOW_API_USERS_NAMESPACE), not the API's.
    secret = client.CoreV1Api(kube).read_namespaced_secret(name, users_namespace)
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


# ---------------------------------------------------------------- issue 10: the auth lane

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified (the test reads what the API wrote)."""
    return jwt.decode(token, options={"verify_signature": False})


def test_user_objects_have_the_previous_services_shape(
    auth_api: ApiProcess, user: dict[str, Any]
) -> None:
    """Its clients check `^[0-9a-f-]{36}$` ids and read `is_active`."""
    shown = user["user"]
    assert set(shown) == {"id", "email", "is_active", "created_at"}
    assert re.fullmatch(r"[0-9a-f-]{36}", shown["id"])
    assert UUID.match(shown["id"])
    assert shown["is_active"] is True
    # The same 128 bits as the Secret's name, and the same id everywhere.
    assert shown["id"].replace("-", "") == hashlib.sha256(user["email"].encode()).hexdigest()[:32]
    assert me(auth_api, user["tokens"]["access_token"]).json()["data"] == shown
    assert claims_of(user["tokens"]["access_token"])["sub"] == shown["id"]


def test_login_accepts_a_multipart_form_as_curl_f_sends_it(
    auth_api: ApiProcess, user: dict[str, Any]
) -> None:
    # (None, value): a plain form field of a multipart/form-data body, like `curl -F`.
    fields = {"username": (None, user["email"]), "password": (None, PASSWORD)}
    response = post(auth_api, "login", files=fields)
    assert response.request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert response.status_code == 200, response.text
    assert me(auth_api, response.json()["access_token"]).status_code == 200
    # The same validation as urlencoded: a missing field is a 422 naming it...
    body = problem(post(auth_api, "login", files={"username": (None, user["email"])}), 422)
    assert [e["field"] for e in body["errors"]] == ["password"]
    # ...and a body that is no form at all a 415.
    problem(post(auth_api, "login", json={"username": user["email"], "password": PASSWORD}), 415)


def test_logout_ends_that_login_and_its_access_tokens_at_once(
    auth_api: ApiProcess, user: dict[str, Any]
) -> None:
    ended = login(auth_api, user["email"]).json()
    other = login(auth_api, user["email"]).json()
    assert me(auth_api, ended["access_token"]).status_code == 200

    response = post(auth_api, "logout", json={"refresh_token": ended["refresh_token"]})
    assert response.status_code == 204, response.text
    # Its access token stops now, not when it expires; its refresh token too.
    assert problem(me(auth_api, ended["access_token"]), 401)["type"].endswith("session-revoked")
    assert problem(refresh(auth_api, ended["refresh_token"]), 401)["type"].endswith(
        "refresh-revoked"
    )
    # Logging out again is harmless; other logins are untouched.
    again = post(auth_api, "logout", json={"refresh_token": ended["refresh_token"]})
    assert again.status_code == 204
    assert me(auth_api, other["access_token"]).status_code == 200
    assert refresh(auth_api, other["refresh_token"]).status_code == 200
    problem(post(auth_api, "logout", json={"refresh_token": "not.a.token"}), 401)


def test_logout_all_ends_every_login_of_the_user(
    auth_api: ApiProcess, user: dict[str, Any]
) -> None:
    logins = [login(auth_api, user["email"]).json() for _ in range(2)]
    registration = user["tokens"]
    stranger = register(auth_api, new_email()).json()["data"]["tokens"]

    response = httpx.post(
        f"{auth_api.url}/api/v1/auth/logout-all",
        headers={"Authorization": f"Bearer {logins[0]['access_token']}"},
        timeout=30,
    )
    assert response.status_code == 204, response.text
    for tokens in (*logins, registration):
        problem(me(auth_api, tokens["access_token"]), 401)
        problem(refresh(auth_api, tokens["refresh_token"]), 401)
    assert me(auth_api, stranger["access_token"]).status_code == 200
    # Without a token it is a 401, and a fresh login works again.
    problem(httpx.post(f"{auth_api.url}/api/v1/auth/logout-all", timeout=30), 401)
    assert me(auth_api, login(auth_api, user["email"]).json()["access_token"]).status_code == 200


def test_a_login_has_an_absolute_lifetime_that_refreshing_does_not_extend(
    api_namespace: str, users_namespace: str
) -> None:
    """With a 10-minute session cap, no token of a login expires later than 10 minutes
    after the login, however it is refreshed (refresh tokens alone would last 7 days)."""
    env = {
        "MEDIAFLOW_API_NAMESPACE": api_namespace,
        "MEDIAFLOW_API_USERS_NAMESPACE": users_namespace,
        "MEDIAFLOW_API_SESSION_MAX_SECONDS": "600",
    }
    with ApiProcess(env) as api:
        email = new_email()
        first = register(api, email).json()["data"]["tokens"]
        started = claims_of(first["refresh_token"])["iat"]
        assert claims_of(first["refresh_token"])["exp"] <= started + 600
        time.sleep(1.1)  # a later iat: a sliding expiry would move
        tokens = first
        for _ in range(3):
            response = refresh(api, tokens["refresh_token"])
            assert response.status_code == 200, response.text
            tokens = response.json()["data"]
            for token in (tokens["refresh_token"], tokens["access_token"]):
                assert claims_of(token)["exp"] <= started + 600
        assert tokens["expires_in"] <= 600


def test_failed_logins_are_limited_per_account_from_any_address(
    api_namespace: str, users_namespace: str
) -> None:
    env = {
        "MEDIAFLOW_API_NAMESPACE": api_namespace,
        "MEDIAFLOW_API_USERS_NAMESPACE": users_namespace,
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "10000",  # the per-address limit stays out
        "MEDIAFLOW_API_AUTH_ACCOUNT_RATE_LIMIT_BURST": "2",
        "MEDIAFLOW_API_AUTH_ACCOUNT_RATE_LIMIT_PER_MINUTE": "0.001",
    }
    with ApiProcess(env) as api:
        victim, bystander = new_email(), new_email()
        assert register(api, victim).status_code == 201
        assert register(api, bystander).status_code == 201
        assert login(api, victim).status_code == 200  # success takes nothing
        assert [login(api, victim, "wrong password!").status_code for _ in range(2)] == [401, 401]
        # Now even the right password waits: the account is limited, not the address.
        limited = [login(api, victim), login(api, victim.upper(), "wrong password!")]
        # A registration of the taken email goes through the same per-account limit.
        limited.append(register(api, victim, "another password"))
        assert login(api, bystander).status_code == 200
        # Registering a taken email counts like a failed login (it tells the email exists).
        assert [register(api, bystander, "x" * 10).status_code for _ in range(2)] == [409, 409]
        limited.append(register(api, bystander, "x" * 10))
    for response in limited:
        body = problem(response, 429)
        assert "account" in body["detail"]
        assert int(response.headers["retry-after"]) > 0


def test_spoofed_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    api_namespace: str, users_namespace: str
) -> None:
    base = {
        "MEDIAFLOW_API_NAMESPACE": api_namespace,
        "MEDIAFLOW_API_USERS_NAMESPACE": users_namespace,
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "2",
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_PER_MINUTE": "0.001",
    }

    def attempt(api: ApiProcess, forwarded_for: str) -> int:
        return post(
            api,
            "login",
            data={"username": new_email(), "password": "whatever!"},
            headers={"X-Forwarded-For": forwarded_for},
        ).status_code

    # No trusted proxy (the default): 127.0.0.1 is just a client, whatever it claims.
    with ApiProcess(base) as api:
        untrusted = [attempt(api, f"198.51.100.{i}") for i in range(1, 4)]
    assert untrusted == [401, 401, 429]

    # 127.0.0.1 is the trusted proxy: the right-most address before it is the client.
    with ApiProcess({**base, "MEDIAFLOW_API_TRUSTED_PROXIES": "127.0.0.1"}) as api:
        one = [attempt(api, "198.51.100.1") for _ in range(2)]
        # What the client wrote itself, left of what the proxy appended, changes nothing.
        spoofed = attempt(api, "203.0.113.9, 198.51.100.1")
        other = attempt(api, "198.51.100.2")
    assert one == [401, 401]
    assert spoofed == 429
    assert other == 401


def test_an_oversized_login_body_is_refused_before_it_is_read(auth_api: ApiProcess) -> None:
    fields = {"username": (None, "a@example.com"), "password": (None, "x" * 100_000)}
    problem(post(auth_api, "login", files=fields), 413)
