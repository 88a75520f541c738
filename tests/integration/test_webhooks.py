"""Completion webhooks (issue 15) against the real cluster, MinIO, worker pods and the
operator as a host process: a receiver on this machine's loopback (the session's operator
allows 127.0.0.0/8 through MEDIAFLOW_WEBHOOK_ALLOWED_NETWORKS, tests/integration/
operator_process.py) gets each event once per attempt, signed so that `standardwebhooks`
verifies it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client
from standardwebhooks import Webhook

from mediaflow_core import webhooks
from tests.environment import MinioSettings, ScratchNamespace, unique_name, wait_until
from tests.integration.api_process import ApiProcess
from tests.integration.test_api_jobs import User, cleanup  # noqa: F401 - the fixture
from tests.integration.test_mediajob import condition, create_mediajob, get_mj, wait_finished
from tests.media import make_photo
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.usefixtures("operator")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from Receiver(codes=[]).serve()


def signing_secret(ns: ScratchNamespace, name: str = "hooks") -> str:
    secret = webhooks.new_signing_secret()
    ns.core.create_namespaced_secret(
        ns.name,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            data={"signing-key": base64.b64encode(secret.encode()).decode()},
        ),
    )
    return secret


def notify(url: str, name: str = "hooks") -> dict:
    return {"url": url, "secretRef": {"name": name, "key": "signing-key"}}


def refused_spec(ns: ScratchNamespace, url: str) -> dict:
    """A MediaJob the operator fails at once (its input is outside its namespace): no pod."""
    return {
        "input": {"object": {"key": "someone-else/photo.jpg"}},
        "operation": "ImageConvert",
        "imageConvert": {"format": "webp"},
        "notify": notify(url),
    }


def notified(kube: client.ApiClient, ns: str, name: str) -> dict:
    def final() -> dict | None:
        mj = get_mj(kube, ns, name)
        cond = next(
            (c for c in (mj.get("status") or {}).get("conditions", []) if c["type"] == "Notified"),
            None,
        )
        return mj if cond and cond["status"] in ("True", "False") else None

    return wait_until(f"MediaJob {ns}/{name} to be notified", final, timeout=60)


def events(ns: ScratchNamespace, name: str) -> list[str]:
    items = ns.core.list_namespaced_event(
        ns.name, field_selector=f"involvedObject.kind=MediaJob,involvedObject.name={name}"
    ).items
    return [e.reason for e in items]


def test_a_succeeded_mediajob_is_announced_signed(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    secret = signing_secret(namespace)
    key = f"{namespace.name}/in/photo.jpg"
    minio_settings.client().fput_object(
        minio_settings.bucket, key, str(make_photo(tmp_path / "photo.jpg"))
    )
    name = unique_name("hooked")
    spec = {
        "input": {"object": {"key": key}},
        "operation": "ImageConvert",
        "imageConvert": {"format": "webp"},
        "notify": notify(receiver.url),
    }
    create_mediajob(kube, namespace, name, spec)
    mj = wait_finished(kube, namespace.name, name)
    assert mj["status"]["phase"] == "Succeeded"
    mj = notified(kube, namespace.name, name)

    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    event = Webhook(secret).verify(body, headers)
    uid = mj["metadata"]["uid"]
    assert headers["webhook-id"] == f"msg_{uid}" == event["id"]
    assert headers["content-type"] == "application/cloudevents+json"
    assert "authorization" not in headers
    assert "cookie" not in headers
    assert event["specversion"] == "1.0"
    assert event["type"] == "io.mediaflow.mediajob.succeeded"
    assert event["source"].endswith(f"/namespaces/{namespace.name}/mediajobs/{name}")
    data = event["data"]
    assert data["id"] == f"{namespace.name}/{name}"
    assert data["status"] == "Succeeded"
    result = mj["status"]["result"]
    assert data["result"]["size"] == result["size"] > 0
    assert (data["result"]["width"], data["result"]["height"]) == (320, 240)
    assert data["result"]["url"] == result["url"]

    assert condition(mj, "Notified")["status"] == "True"
    note = mj["status"]["notification"]
    assert note["webhookId"] == f"msg_{uid}"
    assert (note["attempts"], note["lastResponseCode"]) == (1, 200)
    assert note["deliveredTime"]


def test_two_failures_then_200_is_three_attempts_with_one_id(
    kube: client.ApiClient, namespace: ScratchNamespace, receiver: Receiver
) -> None:
    secret = signing_secret(namespace)
    receiver.codes[:] = [503, 500]
    name = unique_name("retried")
    create_mediajob(kube, namespace, name, refused_spec(namespace, receiver.url))
    mj = notified(kube, namespace.name, name)

    assert mj["status"]["phase"] == "Failed"
    assert len(receiver.requests) == 3
    ids = {headers["webhook-id"] for headers, _ in receiver.requests}
    assert ids == {f"msg_{mj['metadata']['uid']}"}
    for headers, body in receiver.requests:
        event = Webhook(secret).verify(body, headers)
        assert event["type"] == "io.mediaflow.mediajob.failed"
        assert event["data"]["error"]["reason"]
    assert condition(mj, "Notified")["status"] == "True"
    note = mj["status"]["notification"]
    assert (note["attempts"], note["lastResponseCode"]) == (3, 200)
    assert events(namespace, name).count("WebhookFailed") == 2


def test_a_receiver_on_a_private_address_is_refused(
    kube: client.ApiClient, namespace: ScratchNamespace
) -> None:
    signing_secret(namespace)
    name = unique_name("private")
    # 10.0.0.0/8 is not among the allowed networks (only loopback is, for these tests).
    create_mediajob(kube, namespace, name, refused_spec(namespace, "http://10.255.255.1:8080/"))
    mj = notified(kube, namespace.name, name)
    cond = condition(mj, "Notified")
    assert (cond["status"], cond["reason"]) == ("False", "AddressNotAllowed")
    assert "10.255.255.1" in cond["message"]
    assert mj["status"]["notification"]["attempts"] == 0
    wait_until("the WebhookRefused Event", lambda: "WebhookRefused" in events(namespace, name))


def test_a_410_stops_the_retries(
    kube: client.ApiClient, namespace: ScratchNamespace, receiver: Receiver
) -> None:
    signing_secret(namespace)
    receiver.codes[:] = [410]
    name = unique_name("gone")
    create_mediajob(kube, namespace, name, refused_spec(namespace, receiver.url))
    mj = notified(kube, namespace.name, name)
    cond = condition(mj, "Notified")
    assert (cond["status"], cond["reason"]) == ("False", "Gone")
    assert len(receiver.requests) == 1


def secret_of(user: User, rotate: bool = False) -> dict:
    url = f"{user.api.url}/api/v1/webhooks/secret" + ("/rotate" if rotate else "")
    response = (httpx.post if rotate else httpx.get)(url, headers=user.headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["data"]


@pytest.mark.usefixtures("cleanup")
def test_an_api_upload_with_a_callback_url_is_announced(
    auth_api: ApiProcess, receiver: Receiver, tmp_path: Path
) -> None:
    user = User(auth_api)
    assert httpx.get(f"{auth_api.url}/api/v1/webhooks/secret", timeout=30).status_code == 401
    secret = secret_of(user)["secret"]
    assert secret.startswith("whsec_")
    assert secret_of(user)["secret"] == secret  # made once, then the same

    photo = make_photo(tmp_path / "photo.jpg")
    with photo.open("rb") as stream:
        response = httpx.post(
            f"{auth_api.url}/api/v1/image/convert/webp",
            headers=user.headers,
            data={"quality": "70", "callback_url": receiver.url},
            files={"file": ("photo.jpg", stream)},
            timeout=60,
        )
    assert response.status_code == 202, response.text
    job_id = response.json()["data"]["job_id"]
    wait_until("the webhook", lambda: receiver.requests, timeout=120)
    headers, body = receiver.requests[0]
    event = Webhook(secret).verify(body, headers)
    assert event["type"] == "io.mediaflow.mediajob.succeeded"
    assert event["data"]["jobId"] == job_id
    assert event["data"]["result"]["contentType"] == "image/webp"

    # A rotation: the next webhook carries a signature with each secret.
    rotated = secret_of(user, rotate=True)
    assert rotated["secret"] != secret
    assert rotated["previous_secret"] == secret
    with photo.open("rb") as stream:
        response = httpx.post(
            f"{auth_api.url}/api/v1/image/convert/avif",
            headers=user.headers,
            data={"callback_url": receiver.url},
            files={"file": ("photo.jpg", stream)},
            timeout=60,
        )
    assert response.status_code == 202, response.text
    wait_until("the second webhook", lambda: len(receiver.requests) >= 2, timeout=120)
    headers, body = receiver.requests[1]
    assert Webhook(rotated["secret"]).verify(body, headers)["data"]["jobId"]
    assert Webhook(secret).verify(body, headers)["data"]["jobId"]


def test_a_bad_callback_url_is_refused(auth_api: ApiProcess, tmp_path: Path) -> None:
    user = User(auth_api)
    photo = make_photo(tmp_path / "photo.jpg")
    with photo.open("rb") as stream:
        response = httpx.post(
            f"{auth_api.url}/api/v1/image/convert/webp",
            headers=user.headers,
            data={"callback_url": "ftp://example.com/x"},
            files={"file": ("photo.jpg", stream)},
            timeout=60,
        )
    assert response.status_code == 422, response.text
    assert "callback_url" in response.text
