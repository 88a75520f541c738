"""The completion webhooks' decisions (issue 15): schedule, outcomes, the status they write.
The component runs here against the fake gateway with a fake `send`; the real deliveries are
tests/integration/test_webhooks.py."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook

from mediaflow_core import webhooks
from mediaflow_core.mediajob import MediaJobStatus
from mediaflow_operator import notifier as n
from mediaflow_operator.config import OperatorSettings
from mediaflow_operator.metrics import Metrics
from mediaflow_operator.observed import Key, Store
from tests.unit.operator.fake_gateway import FakeGateway

NS = "team-a"
SECRET = webhooks.new_signing_secret()


def test_the_schedule_doubles_and_stops_within_the_window() -> None:
    assert [n.retry_delay(k, 1.0) for k in range(1, 6)] == [1, 2, 4, 8, 16]
    # 1 s base, 600 s window: waits 1+2+...+256 = 511 s, so 10 attempts in all.
    attempts = next(k for k in range(1, 50) if not n.may_retry(k, 1.0, 600))
    assert attempts == 10
    assert sum(n.retry_delay(k, 1.0) for k in range(1, attempts)) == 511
    assert not n.may_retry(1, 1.0, 0)


@pytest.mark.parametrize(
    ("ip", "allowed", "ok"),
    [
        ("8.8.8.8", (), True),
        ("127.0.0.1", (), False),
        ("10.1.2.3", (), False),
        ("169.254.169.254", (), False),
        ("::1", (), False),
        ("127.0.0.1", ("127.0.0.0/8",), True),
        ("10.1.2.3", ("10.0.0.0/8",), True),
        ("10.1.2.3", ("127.0.0.0/8",), False),
        ("::1", ("127.0.0.0/8",), False),
    ],
)
def test_addresses_must_be_public_or_allowed(ip: str, allowed: tuple, ok: bool) -> None:
    assert n.address_allowed(ip, n.parse_networks(allowed)) is ok


def test_a_private_host_is_refused_without_a_connection() -> None:
    attempt = n.post("http://127.0.0.1:9/hook", {}, b"{}", ())
    assert attempt.refused == n.ADDRESS_NOT_ALLOWED
    assert attempt.code is None
    assert n.post("http://u:p@example.com/", {}, b"", ()).refused == n.ADDRESS_NOT_ALLOWED


class World:
    def __init__(self, replies: list[n.Attempt]) -> None:
        self.gateway = FakeGateway()
        self.store = Store()
        # Now, when the test runs (not when the module was collected, maybe many minutes
        # earlier in a full run): the library checks a signature's timestamp against its own
        # clock, with a 5-minute tolerance.
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.replies = list(replies)
        self.sent: list[tuple[str, dict[str, str], bytes]] = []
        settings = OperatorSettings(
            s3_endpoint="http://minio:9000", s3_access_key="a", s3_secret_key="b",  # noqa: S106
            webhook_backoff_seconds=1.0, webhook_retry_seconds=10.0,
        )  # fmt: skip
        self.metrics = Metrics()
        self.notifier = n.Notifier(
            self.gateway, self.store, settings, lambda: self.now, self.send, metrics=self.metrics
        )
        self.gateway.secrets[NS, "hooks"] = {
            "metadata": {"namespace": NS, "name": "hooks"},
            "data": {"key": base64.b64encode(SECRET.encode()).decode()},
        }
        spec = {
            "input": {"object": {"key": f"{NS}/a"}},
            "operation": "ImageConvert",
            "imageConvert": {"format": "webp"},
            "notify": {"url": "https://hooks.example/x",
                       "secretRef": {"name": "hooks", "key": "key"}},
        }  # fmt: skip
        self.gateway.add_mediajob(NS, "job-1", spec)
        self.gateway.mediajobs[NS, "job-1"]["status"] = {
            "phase": "Succeeded",
            "completionTime": "2026-12-03T07:59:59Z",
            "conditions": [{"type": "Succeeded", "status": "True", "reason": "Completed",
                            "lastTransitionTime": "2026-12-03T07:59:59Z"}],
        }  # fmt: skip
        self.key = Key(NS, "job-1")
        self.sync()

    def sync(self) -> None:
        self.store.put_mediajob(self.gateway.mediajob(NS, "job-1"))

    def send(self, url: str, headers: dict[str, str], body: bytes, allowed: Any) -> n.Attempt:
        self.sent.append((url, headers, body))
        return self.replies.pop(0)

    def status(self) -> MediaJobStatus:
        return MediaJobStatus.model_validate(self.gateway.mediajobs[NS, "job-1"]["status"])

    def notified(self) -> tuple[str, str]:
        cond = next(x for x in self.status().conditions if x.type == "Notified")
        return cond.status, cond.reason


def test_two_failures_then_delivered_three_attempts_one_id() -> None:
    world = World([n.Attempt(code=500), n.Attempt(error="refused"), n.Attempt(code=204)])
    assert world.notifier.handle(world.key) == 1.0
    assert world.notified() == ("Unknown", n.RETRYING)
    world.now += timedelta(seconds=0.5)
    assert world.notifier.handle(world.key) == pytest.approx(0.5)  # not due yet: no attempt
    assert len(world.sent) == 1
    world.now += timedelta(seconds=1)
    assert world.notifier.handle(world.key) == 2.0
    world.now += timedelta(seconds=2)
    assert world.notifier.handle(world.key) is None
    note = world.status().notification
    assert note is not None
    assert (note.attempts, note.last_response_code) == (3, 204)
    assert note.delivered_time is not None
    assert world.notified() == ("True", n.DELIVERED)
    assert {h["webhook-id"] for _, h, _ in world.sent} == {"msg_uid-job-1"}
    assert len({b for _, _, b in world.sent}) == 1  # the same event every time
    # Each attempt verifies with the Secret's key.
    for _, headers, body in world.sent:
        assert Webhook(SECRET).verify(body, headers)["data"]["status"] == "Succeeded"
    reasons = [e[2] for e in world.gateway.events]
    assert reasons == ["WebhookFailed", "WebhookFailed", "WebhookDelivered"]
    # Done: a later reconcile does not queue it again.
    assert not n.wants_notice(world.gateway.mediajob(NS, "job-1"))
    # Counted: three POSTs by outcome, one webhook ended Delivered.
    sample = world.metrics.registry.get_sample_value
    assert sample("mediaflow_webhook_attempts_total", {"outcome": "http_error"}) == 1
    assert sample("mediaflow_webhook_attempts_total", {"outcome": "no_answer"}) == 1
    assert sample("mediaflow_webhook_attempts_total", {"outcome": "delivered"}) == 1
    assert sample("mediaflow_webhook_attempt_duration_seconds_count") == 3
    ended = {"namespace": NS, "reason": n.DELIVERED}
    assert sample("mediaflow_webhook_notifications_total", ended) == 1


def test_410_stops_at_once() -> None:
    world = World([n.Attempt(code=410)])
    assert world.notifier.handle(world.key) is None
    assert world.notified() == ("False", n.GONE)


def test_retries_end_within_the_window() -> None:
    # Waits 1, 2, 4 (7 s) fit 10 s; the next (8 s) would not: 4 attempts.
    world = World([n.Attempt(code=503)] * 10)
    while (delay := world.notifier.handle(world.key)) is not None:
        world.now += timedelta(seconds=delay)
    assert len(world.sent) == 4
    assert world.notified() == ("False", n.DELIVERY_FAILED)
    assert world.status().notification.attempts == 4  # type: ignore[union-attr]
    sample = world.metrics.registry.get_sample_value
    assert sample("mediaflow_webhook_attempts_total", {"outcome": "http_error"}) == 4
    ended = {"namespace": NS, "reason": n.DELIVERY_FAILED}
    assert sample("mediaflow_webhook_notifications_total", ended) == 1


def test_a_restart_resumes_from_the_status() -> None:
    world = World([n.Attempt(code=500), n.Attempt(code=200)])
    world.notifier.handle(world.key)
    restarted = n.Notifier(world.gateway, Store(), world.notifier.settings, lambda: world.now,
                           world.send)  # fmt: skip
    restarted.store.put_mediajob(world.gateway.mediajob(NS, "job-1"))
    assert restarted.handle(world.key) == pytest.approx(1.0)  # the wait is kept
    world.now += timedelta(seconds=1)
    assert restarted.handle(world.key) is None
    assert world.status().notification.attempts == 2  # type: ignore[union-attr]
    assert len({h["webhook-id"] for _, h, _ in world.sent}) == 1


def test_a_refused_address_is_final_with_an_event() -> None:
    world = World([n.Attempt(refused=n.ADDRESS_NOT_ALLOWED, error="not public")])
    assert world.notifier.handle(world.key) is None
    assert world.notified() == ("False", n.ADDRESS_NOT_ALLOWED)
    assert world.gateway.events[-1][1:3] == ("Warning", "WebhookRefused")
    assert world.status().notification.attempts == 0  # type: ignore[union-attr]
    # No POST was made; the webhook ended with its reason.
    sample = world.metrics.registry.get_sample_value
    assert sample("mediaflow_webhook_attempt_duration_seconds_count") == 0
    ended = {"namespace": NS, "reason": n.ADDRESS_NOT_ALLOWED}
    assert sample("mediaflow_webhook_notifications_total", ended) == 1


def test_a_missing_secret_is_final_and_nothing_is_sent() -> None:
    world = World([])
    del world.gateway.secrets[NS, "hooks"]
    assert world.notifier.handle(world.key) is None
    assert world.notified() == ("False", n.SECRET_INVALID)
    assert world.sent == []


def test_only_finished_mediajobs_that_ask_are_announced() -> None:
    world = World([])
    body = world.gateway.mediajob(NS, "job-1")
    assert n.wants_notice(body)
    running = json.loads(json.dumps(body))
    running["status"]["phase"] = "Running"
    assert not n.wants_notice(running)
    del body["spec"]["notify"]
    assert not n.wants_notice(body)


def test_the_api_users_keys_secret_is_made_once_and_never_overwritten() -> None:
    world = World([])
    settings = world.notifier.settings.model_copy(
        update={"webhook_keys_secret": "keys", "webhook_keys_namespace": "mediaflow"}
    )
    notifier = n.Notifier(world.gateway, world.store, settings, lambda: world.now, world.send)
    notifier.make_keys_secret()
    assert world.gateway.secrets["mediaflow", "keys"]["data"] == {}
    world.gateway.secrets["mediaflow", "keys"]["data"] = {"u": "d2hzZWNfeA=="}
    notifier.make_keys_secret()  # a restart: 409, the users' keys stay
    assert world.gateway.secrets["mediaflow", "keys"]["data"] == {"u": "d2hzZWNfeA=="}
