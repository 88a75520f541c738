"""The release of `make up` as the local Prometheus sees it: its operator replicas and API pods
discovered through the chart's annotations, under the contract's job names, and (once they
serve /metrics) scraped, with the series the alert rules and the dashboard read."""

from __future__ import annotations

import json
from typing import Any

import httpx
from kubernetes import client

from tests.e2e.conftest import RELEASE, run
from tests.environment import wait_until
from tests.integration.prometheus import prometheus, query


def release_pods(namespace: str, component: str) -> set[str]:
    out = run(
        ["kubectl", "-n", namespace, "get", "pods", "-o", "json", "-l",
         f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"]
    )  # fmt: skip
    return {
        p["metadata"]["name"]
        for p in json.loads(out)["items"]
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    }


def release_targets(namespace: str) -> list[dict[str, Any]]:
    active = prometheus("targets", state="active")["activeTargets"]
    return [
        t
        for t in active
        if t["labels"].get("kubernetes_namespace") == namespace
        and t["labels"].get("release") == RELEASE
    ]


def test_the_release_pods_are_targets_under_the_contract_job_names(
    kube: client.ApiClient, release: str
) -> None:
    expected = {
        "mediaflow-operator": release_pods(release, "operator"),
        "mediaflow-api": release_pods(release, "api"),
    }
    assert len(expected["mediaflow-operator"]) >= 1
    assert len(expected["mediaflow-api"]) >= 1

    def discovered() -> dict[str, set[str]] | None:
        found: dict[str, set[str]] = {}
        for target in release_targets(release):
            found.setdefault(target["labels"]["job"], set()).add(target["labels"]["kubernetes_pod"])
        return found if found == expected else None

    wait_until(f"targets {expected}", discovered, timeout=60)
    # Each target has an `up` series once scraped (1 or 0 alike here).
    for job, pods in expected.items():
        series = wait_until(
            f"up of {job}",
            lambda job=job, pods=pods: (
                result
                if len(result := query(f'up{{job="{job}", kubernetes_namespace="{release}"}}'))
                == len(pods)
                else None
            ),
            timeout=30,
        )
        assert {s["metric"]["kubernetes_pod"] for s in series} == pods


def test_the_release_serves_the_contract_metrics(release: str, api_url: str) -> None:
    """Needs the exporters of issue 13 (operator on :8081, API on its port) in the image."""
    selector = f'kubernetes_namespace="{release}"'
    # A request series exists once a request was served (probes and scrapes are not counted):
    # one refused request through the Service makes sure of it.
    assert httpx.get(f"{api_url}/api/v1/jobs", timeout=30).status_code == 401
    wait_until(
        "every target of the release up",
        lambda: (targets := release_targets(release)) and all(t["health"] == "up" for t in targets),
        timeout=60,
    )
    leaders = query(f"sum(mediaflow_operator_leader{{{selector}}})")
    assert leaders
    assert leaders[0]["value"][1] == "1", "exactly one operator replica leads"
    assert query(f"mediaflow_operator_last_reconcile_timestamp_seconds{{{selector}}}")
    wait_until(
        "the request counted in Prometheus",
        lambda: query(f'mediaflow_api_requests_total{{{selector}, job="mediaflow-api"}}'),
        timeout=30,
    )
    assert query(f'mediaflow_storage_up{{{selector}, job="mediaflow-api"}} == 1')
    firing = {a["labels"]["alertname"] for a in prometheus("alerts")["alerts"]}
    assert not {"MediaflowOperatorDown", "MediaflowAPIDown", "MediaflowOperatorNoLeader"} & firing
