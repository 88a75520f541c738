"""Completion webhooks delivered by the release `make up` installs (issue 15): the operator
pod POSTs to a receiver on this machine's pod-reachable address (the bridge, 10.244.0.1,
which hack/helm-up.sh sets as `operator.webhooks.allowedNetworks`), signed with the user's
secret from the API so that `standardwebhooks` verifies it; a receiver that fails twice gets
three attempts with one id; loopback stays refused.

tests/integration/test_webhooks.py covers the rest of the delivery rules against an operator
run from the tree; this proves the chart wires the release's operator for them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from tests.e2e.conftest import run
from tests.environment import wait_until
from tests.media import make_photo
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

NODE_IP = "10.244.0.1"  # the bridge address: this machine, as pods see it


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    # Fails twice, then takes the event.
    yield from Receiver(codes=[503, 500], host=NODE_IP).serve()


@pytest.fixture
def api(api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=60) as api:
        registered = api.post(
            "/api/v1/auth/register",
            json={"email": f"e2e-hooks-{uuid.uuid4().hex[:10]}@example.com", "password": "x" * 16},
        )
        assert registered.status_code == 201, registered.text
        token = registered.json()["data"]["tokens"]["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        yield api


def upload(api: httpx.Client, photo: Path, callback_url: str) -> str:
    with photo.open("rb") as file:
        response = api.post(
            "/api/v1/image/convert/webp",
            data={"callback_url": callback_url},
            files={"file": ("photo.jpg", file, "image/jpeg")},
        )
    assert response.status_code == 202, response.text
    return response.json()["data"]["job_id"]


def mediajob(namespace: str, job_id: str) -> dict:
    """The MediaJob of an API job (a single upload's MediaJob is named after its job id)."""
    return json.loads(run(["kubectl", "-n", namespace, "get", "mj", job_id, "-o", "json"]))


def notified_condition(mj: dict) -> dict | None:
    conditions = (mj.get("status") or {}).get("conditions", [])
    cond = next((c for c in conditions if c["type"] == "Notified"), None)
    return cond if cond and cond["status"] in ("True", "False") else None


def operator_pod_ips(namespace: str) -> set[str]:
    pods = json.loads(
        run(
            [
                "kubectl", "-n", namespace, "get", "pod", "-o", "json",
                "-l", "app.kubernetes.io/component=operator",
            ]
        )
    )  # fmt: skip
    return {p["status"]["podIP"] for p in pods["items"] if p["status"].get("podIP")}


def test_the_release_operator_delivers_signed_webhooks_with_retries(
    release: str, api: httpx.Client, receiver: Receiver, tmp_path: Path
) -> None:
    secret = api.get("/api/v1/webhooks/secret").json()["data"]["secret"]
    job_id = upload(api, make_photo(tmp_path / "photo.jpg"), receiver.url)

    wait_until("three delivery attempts", lambda: len(receiver.deliveries) >= 3, timeout=120)
    ids = {d.headers["webhook-id"] for d in receiver.deliveries}
    assert len(ids) == 1, ids
    for delivery in receiver.deliveries:
        event = Webhook(secret).verify(delivery.body, delivery.headers)
        assert event["type"] == "io.mediaflow.mediajob.succeeded"
        assert event["data"]["jobId"] == job_id
        assert event["data"]["result"]["contentType"] == "image/webp"
    # From the release's operator pod, over the pod network: what receivers allow.
    peers = {d.peer for d in receiver.deliveries}
    assert peers <= operator_pod_ips(release), peers

    mj = wait_until(
        "the Notified condition", lambda: notified_condition(mediajob(release, job_id)) and
        mediajob(release, job_id), timeout=60,
    )  # fmt: skip
    cond = notified_condition(mj)
    assert cond is not None
    assert cond["status"] == "True", cond
    notification = mj["status"]["notification"]
    assert notification["attempts"] == 3, notification
    assert notification["lastResponseCode"] == 200, notification
    assert len(receiver.deliveries) == 3


def test_the_release_refuses_a_loopback_receiver(
    release: str, api: httpx.Client, tmp_path: Path
) -> None:
    # Loopback is not among the local release's allowed networks: refused before any connection.
    job_id = upload(api, make_photo(tmp_path / "photo.jpg"), "http://127.0.0.1:9/hooks")
    mj = wait_until(
        "the Notified condition", lambda: notified_condition(mediajob(release, job_id)) and
        mediajob(release, job_id), timeout=120,
    )  # fmt: skip
    cond = notified_condition(mj)
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("False", "AddressNotAllowed"), cond
    assert mj["status"]["notification"]["attempts"] == 0
