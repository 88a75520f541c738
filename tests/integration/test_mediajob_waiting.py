"""Issue 11, item 9, against the real scheduler: a MediaJob whose pod cannot be placed says
why while it waits (status and a Warning Event), and its deadline fails it with that reason,
not with "took longer than its limit" (nothing ran)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.environment import MinioSettings, ScratchNamespace, wait_until
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_mediajob import condition, get_mj, wait_finished
from tests.integration.test_mediajob_security import mediajob, photo, put, unschedulable

__all__ = ["photo"]  # the module-scoped fixture, shared
DEADLINE = 10  # the smallest image deadline the operator accepts


@pytest.fixture
def short_deadline(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    saved = dict(operator.extra_env)
    operator.extra_env["MEDIAFLOW_IMAGE_DEADLINE_SECONDS"] = str(DEADLINE)
    operator.restart()
    try:
        yield operator
    finally:
        operator.extra_env.clear()
        operator.extra_env.update(saved)
        operator.restart()


def warnings(ns: ScratchNamespace, name: str, reason: str) -> list[client.CoreV1Event]:
    events = ns.core.list_namespaced_event(
        ns.name, field_selector=f"involvedObject.kind=MediaJob,involvedObject.name={name}"
    ).items
    return [e for e in events if e.type == "Warning" and e.reason == reason]


def test_an_unschedulable_pod_says_why_and_fails_with_that_reason_at_its_deadline(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    short_deadline: OperatorProcess,
    photo: bytes,
) -> None:
    key = f"{namespace.name}/samples/big.jpg"
    put(minio_settings, key, photo)
    mediajob(kube, namespace.name, "big", key, **unschedulable(kube))

    def waiting_says_why() -> dict | None:
        status = get_mj(kube, namespace.name, "big").get("status") or {}
        return status if "Insufficient cpu" in (status.get("message") or "") else None

    status = wait_until("the scheduler's reason in the status", waiting_says_why, timeout=30)
    assert status["phase"] == "Pending"
    assert status["message"].startswith("waiting for the conversion pod to start: 0/")
    assert condition({"status": status}, "Succeeded")["reason"] == "Unschedulable"
    wait_until("a Warning Event Unschedulable",
               lambda: warnings(namespace, "big", "Unschedulable"), timeout=30)  # fmt: skip
    mj = wait_finished(kube, namespace.name, "big", timeout=DEADLINE + 60)
    assert mj["status"]["phase"] == "Failed", (mj["status"], short_deadline.tail())
    assert condition(mj, "Succeeded")["reason"] == "Unschedulable"
    message = mj["status"]["message"]
    assert message.startswith(
        f"the conversion pod could not be scheduled within its {DEADLINE}s limit; nothing ran: "
    ), message
    assert "Insufficient cpu" in message
    assert "took longer" not in message
    assert "startTime" not in mj["status"]  # nothing ran
    # Said once while waiting, once at the end.
    assert len(warnings(namespace, "big", "Unschedulable")) == 2
