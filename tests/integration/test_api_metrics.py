"""The API's metrics and request ids against the real API process, kube-apiserver, MinIO
and operator (issue 13 items 3 and 6).

Each test gives itself its own user (the per-user upload limit is a token bucket per user)
and compares the counters of /metrics before and after what it does, so that it holds
whatever ran on the same API process before.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.api_process import ApiProcess
from tests.integration.test_api_jobs import PASSWORD, User, cleanup, problem  # noqa: F401 - fixture
from tests.integration.test_mediajob import GROUP, PLURAL, VERSION, custom
from tests.media import make_photo

pytestmark = pytest.mark.integration

REQUEST_ID = "mediaflow.io/request-id"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
IMAGE_LIMIT = 2  # uploads of images per user and minute on this module's API (burst 2)
WEBP = "/api/v1/image/convert/webp"
BATCH = "/api/v1/image/batch/convert/webp"


@pytest.fixture(scope="module")
def metrics_api(api_namespace: str, users_namespace: str) -> Iterator[ApiProcess]:
    """The API writing into the session's scratch namespaces, with an image upload limit a
    test can reach and sign-in limits none reaches."""
    env = {
        "MEDIAFLOW_API_NAMESPACE": api_namespace,
        "MEDIAFLOW_API_USERS_NAMESPACE": users_namespace,
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "10000",
        "MEDIAFLOW_API_AUTH_ACCOUNT_RATE_LIMIT_BURST": "10000",
        "MEDIAFLOW_API_RATE_LIMIT_IMAGE_PER_MINUTE": str(IMAGE_LIMIT),
        "MEDIAFLOW_API_RATE_LIMIT_BATCH_PER_MINUTE": "10000",
    }
    with ApiProcess(env) as process:
        yield process


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_photo(tmp_path_factory.mktemp("metrics") / "photo.jpg")


def scrape(api: ApiProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics (fetched without credentials), by name and labels."""
    response = httpx.get(f"{api.url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_total(samples: dict, method: str, path: str, status: int) -> float:
    return value(
        samples,
        "mediaflow_api_requests_total",
        app_name="mediaflow_api",
        method=method,
        path=path,
        status_code=str(status),
    )


def upload(user: User, path: str, photo: Path, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{user.api.url}{path}",
        headers={**user.headers, **headers},
        files={"file": (photo.name, photo.read_bytes())},
        timeout=60,
    )


def mediajob(kube: client.ApiClient, namespace: str, name: str) -> dict:
    return custom(kube).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def test_an_upload_is_followed_from_request_to_mediajob_and_counted(
    metrics_api: ApiProcess,
    api_namespace: str,
    cleanup: None,  # noqa: F811 - the fixture (with the operator, which it needs)
    kube: client.ApiClient,
    photo: Path,
) -> None:
    user = User(metrics_api)
    before = scrape(metrics_api)
    mine = f"metrics-{uuid.uuid4().hex}"
    sent = upload(user, WEBP, photo, **{"X-Request-ID": mine})
    assert sent.status_code == 202, sent.text
    assert sent.headers["x-request-id"] == mine
    made = upload(user, WEBP, photo)  # no id sent: the API makes one
    assert made.status_code == 202, made.text
    generated = made.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(generated)

    for response, request_id in ((sent, mine), (made, generated)):
        job = mediajob(kube, api_namespace, response.json()["data"]["job_id"])
        assert job["metadata"]["annotations"][REQUEST_ID] == request_id

    after = scrape(metrics_api)
    assert requests_total(after, "POST", WEBP, 202) == requests_total(before, "POST", WEBP, 202) + 2
    size = photo.stat().st_size
    assert value(after, "mediaflow_api_upload_bytes_total", kind="image") == (
        value(before, "mediaflow_api_upload_bytes_total", kind="image") + 2 * size
    )
    assert value(after, "mediaflow_api_upload_seconds_count", kind="image") == (
        value(before, "mediaflow_api_upload_seconds_count", kind="image") + 2
    )
    assert value(after, "mediaflow_api_upload_seconds_sum", kind="image") > value(
        before, "mediaflow_api_upload_seconds_sum", kind="image"
    )
    # The latency histogram of the route, by template: one count per request.
    labels = {"app_name": "mediaflow_api", "method": "POST", "path": WEBP, "status_code": "202"}
    assert value(after, "mediaflow_api_request_duration_seconds_count", **labels) == (
        value(before, "mediaflow_api_request_duration_seconds_count", **labels) + 2
    )


def test_a_batch_mediajob_carries_its_request_id(
    metrics_api: ApiProcess,
    api_namespace: str,
    cleanup: None,  # noqa: F811 - the fixture
    kube: client.ApiClient,
    photo: Path,
) -> None:
    user = User(metrics_api)
    data = photo.read_bytes()
    response = httpx.post(
        f"{metrics_api.url}{BATCH}",
        headers={**user.headers, "X-Request-ID": "batch-request.1"},
        files=[("files", ("one.jpg", data)), ("files", ("two.jpg", data))],
        timeout=60,
    )
    assert response.status_code == 202, response.text
    assert response.headers["x-request-id"] == "batch-request.1"
    (batch,) = custom(kube).list_namespaced_custom_object(
        GROUP, VERSION, api_namespace, PLURAL, label_selector=f"mediaflow.io/owner={user.id}"
    )["items"]
    assert len(batch["spec"]["inputs"]) == 2
    assert batch["metadata"]["annotations"][REQUEST_ID] == "batch-request.1"


def test_a_rejected_upload_is_counted_by_its_problem_type(
    metrics_api: ApiProcess, tmp_path: Path
) -> None:
    user = User(metrics_api)
    text = tmp_path / "notes.jpg"
    text.write_bytes(b"just some text and not a picture\n" * 50)
    before = scrape(metrics_api)
    response = upload(user, WEBP, text, **{"X-Request-ID": "has spaces"})
    body = problem(response, 415)
    assert body["type"] == "urn:mediaflow:problem:unsupported-media-type"
    # Problem details carry the id too; an insane one sent is replaced.
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])
    after = scrape(metrics_api)
    reason = {"reason": "unsupported-media-type"}
    assert value(after, "mediaflow_api_uploads_rejected_total", **reason) == (
        value(before, "mediaflow_api_uploads_rejected_total", **reason) + 1
    )
    assert requests_total(after, "POST", WEBP, 415) == requests_total(before, "POST", WEBP, 415) + 1
    # Nothing of it was accepted: no bytes counted.
    assert value(after, "mediaflow_api_upload_bytes_total", kind="image") == value(
        before, "mediaflow_api_upload_bytes_total", kind="image"
    )


def test_the_upload_rate_limit_is_counted(
    metrics_api: ApiProcess,
    cleanup: None,  # noqa: F811 - the fixture
    photo: Path,
) -> None:
    user = User(metrics_api)
    before = scrape(metrics_api)
    for _ in range(IMAGE_LIMIT):
        assert upload(user, WEBP, photo).status_code == 202
    refused = upload(user, WEBP, photo)
    assert problem(refused, 429)["type"] == "urn:mediaflow:problem:rate-limited"
    assert refused.headers["x-request-id"]
    after = scrape(metrics_api)
    assert value(after, "mediaflow_api_rate_limited_total", limit="upload-image") == (
        value(before, "mediaflow_api_rate_limited_total", limit="upload-image") + 1
    )
    assert value(after, "mediaflow_api_uploads_rejected_total", reason="rate-limited") == (
        value(before, "mediaflow_api_uploads_rejected_total", reason="rate-limited") + 1
    )


def test_failed_logins_and_missing_tokens_are_auth_failures(
    metrics_api: ApiProcess, photo: Path
) -> None:
    user = User(metrics_api)
    before = scrape(metrics_api)
    wrong = httpx.post(
        f"{metrics_api.url}/api/v1/auth/login",
        data={"username": user.email, "password": PASSWORD + " but wrong"},
        timeout=30,
    )
    assert problem(wrong, 401)["type"] == "urn:mediaflow:problem:invalid-credentials"
    assert GENERATED_ID.fullmatch(wrong.headers["x-request-id"])
    anonymous = httpx.post(
        f"{metrics_api.url}{WEBP}", files={"file": ("p.jpg", photo.read_bytes())}, timeout=30
    )
    assert problem(anonymous, 401)["type"] == "urn:mediaflow:problem:missing-token"
    after = scrape(metrics_api)
    for reason in ("invalid-credentials", "missing-token"):
        assert value(after, "mediaflow_api_auth_failures_total", reason=reason) == (
            value(before, "mediaflow_api_auth_failures_total", reason=reason) + 1
        ), reason
    login = "/api/v1/auth/login"
    assert (
        requests_total(after, "POST", login, 401) == requests_total(before, "POST", login, 401) + 1
    )


def test_storage_up_and_no_probe_or_scrape_in_the_request_series(
    metrics_api: ApiProcess,
) -> None:
    health = httpx.get(f"{metrics_api.url}/api/v1/health", timeout=30)
    assert health.status_code == 200, health.text
    assert health.headers["x-request-id"]
    samples = scrape(metrics_api)
    assert value(samples, "mediaflow_storage_up", component="api") == 1
    paths = {
        dict(labels).get("path")
        for (name, labels) in samples
        if name.startswith("mediaflow_api_request")
    }
    assert "/metrics" not in paths
    assert "/api/v1/health" not in paths
    # Route templates only: no job id, user id or raw path in any label.
    assert all(path is None or path.startswith("/api/v1/") or path == "/docs/openapi.json"
               for path in paths), paths  # fmt: skip
    assert not any(re.search(r"[0-9a-f]{8}", path or "") for path in paths), paths
    # Not in the public schema that schemathesis checks.
    schema = httpx.get(f"{metrics_api.url}/docs/openapi.json", timeout=30).json()
    assert "/metrics" not in schema["paths"]
