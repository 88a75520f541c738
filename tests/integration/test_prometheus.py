"""The local Prometheus of `make up` (hack/prometheus.sh), at PROMETHEUS_URL: the pinned build,
scraping the kube-apiserver with its own client certificate, discovering pods that carry the
chart's scrape annotations and labels and relabelling them to the contract's job names, and
evaluating every alert rule of the chart without error.

The pods here are stand-ins: real pods in a scratch namespace with the labels, annotations and
ports `helm template` renders for the operator and API pods, each serving a /metrics of its
own. tests/e2e/test_metrics_release.py checks the release's own pods."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.environment import restricted_namespace, wait_until
from tests.integration.prometheus import prometheus, query, scrape_target
from tests.unit.test_grafana_dashboard import expressions, resolve
from tests.unit.test_manifests import helm
from tests.unit.test_prometheus_rules import REPO, alert_rules

IMAGE = os.environ.get("MEDIAFLOW_IMAGE", "mediaflow.local/mediaflow:dev")
PROBE_RELEASE = "mf-probe"

# A /metrics server on the port the pod's annotation names; its series carry a `namespace`
# label of their own, as the operator's do.
SERVER = """
import http.server, sys
body = sys.argv[2].encode()
class Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/metrics":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", int(sys.argv[1])), Metrics).serve_forever()
"""


def chart_pod(component: str) -> dict[str, Any]:
    """The pod template `helm template` renders for the operator or the API."""
    out = subprocess.run(
        [helm(), "template", PROBE_RELEASE, "charts/mediaflow", "--namespace", "mediaflow",
         "--show-only", f"templates/{component}-deployment.yaml"],
        capture_output=True, text=True, check=True,
        cwd=REPO,
    ).stdout  # fmt: skip
    return yaml.safe_load(out)["spec"]["template"]


def stand_in(component: str, *, annotated: bool = True) -> client.V1Pod:
    """A pod with the chart's labels, scrape annotations and ports for COMPONENT."""
    template = chart_pod(component)
    annotations = {
        k: v
        for k, v in template["metadata"]["annotations"].items()
        if k.startswith("prometheus.io/")
    }
    assert annotations["prometheus.io/scrape"] == "true"
    port = annotations["prometheus.io/port"]
    name = f"{component}-stand-in" if annotated else f"{component}-unannotated"
    body = f'mediaflow_test_probe{{namespace="from-the-metric",component="{component}"}} 1\n'
    ports = template["spec"]["containers"][0]["ports"]
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name=name,
            labels=template["metadata"]["labels"],
            annotations=annotations if annotated else {},
        ),
        spec=client.V1PodSpec(
            automount_service_account_token=False,
            enable_service_links=False,
            termination_grace_period_seconds=1,
            security_context=client.V1PodSecurityContext(
                run_as_non_root=True, seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault")
            ),
            containers=[
                client.V1Container(
                    name="metrics",
                    image=IMAGE,
                    image_pull_policy="IfNotPresent",
                    command=["python3", "-c", SERVER, port, body],
                    ports=[
                        client.V1ContainerPort(name=p["name"], container_port=p["containerPort"])
                        for p in ports
                    ],
                    resources=client.V1ResourceRequirements(
                        requests={"cpu": "10m", "memory": "32Mi"}, limits={"memory": "64Mi"}
                    ),
                    security_context=client.V1SecurityContext(
                        allow_privilege_escalation=False,
                        capabilities=client.V1Capabilities(drop=["ALL"]),
                        read_only_root_filesystem=True,
                    ),
                )
            ],
        ),
    )


def pod_ips(core: client.CoreV1Api, namespace: str, pods: list[client.V1Pod]) -> dict[str, str]:
    """Each pod's IP once all of them run; empty before."""
    ips = {}
    for pod in pods:
        status = core.read_namespaced_pod(pod.metadata.name, namespace).status
        if status.phase != "Running":
            return {}
        ips[pod.metadata.name] = status.pod_ip
    return ips


@pytest.fixture(scope="module")
def stand_ins(kube: client.ApiClient) -> Iterator[tuple[str, dict[str, str]]]:
    """Operator and API stand-ins (and an unannotated one) Running in a scratch namespace."""
    for namespace in restricted_namespace(kube, "mf-prom"):
        pods = [stand_in("operator"), stand_in("api"), stand_in("api", annotated=False)]
        for pod in pods:
            namespace.core.create_namespaced_pod(namespace.name, pod)
        ips = wait_until(
            "the stand-in pods to run",
            lambda namespace=namespace, pods=pods: pod_ips(namespace.core, namespace.name, pods),
            timeout=120,
        )
        yield namespace.name, ips


def test_prometheus_is_the_pinned_build_and_ready() -> None:
    versions = dict(
        line.split("=", 1)
        for line in (REPO / "hack/versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    minor, patch = versions["PROMETHEUS_VERSION"].removeprefix("v0.").split(".")
    assert prometheus("status/buildinfo")["version"] == f"3.{int(minor) - 300}.{patch}"
    flags = prometheus("status/flags")
    assert flags["web.listen-address"].startswith("127.0.0.1:")


def test_it_scrapes_the_kube_apiserver_with_its_own_identity() -> None:
    wait_until("up{job=kube-apiserver} == 1", lambda: query('up{job="kube-apiserver"} == 1'), 30)
    series = query('count(apiserver_request_total{job="kube-apiserver"})')
    assert series
    assert float(series[0]["value"][1]) > 10
    # Its certificate's user, not the admin's: the API server counts requests by user agent
    # and the RBAC binding is its own.
    bindings = subprocess.run(
        ["kubectl", "get", "clusterrolebinding", "system:prometheus", "-o", "json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert json.loads(bindings)["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:prometheus"}
    ]


def test_annotated_pods_become_targets_under_the_contract_job_names(
    stand_ins: tuple[str, dict[str, str]],
) -> None:
    namespace, ips = stand_ins
    ports = {
        "operator": chart_pod("operator")["metadata"]["annotations"]["prometheus.io/port"],
        "api": chart_pod("api")["metadata"]["annotations"]["prometheus.io/port"],
    }

    def targets() -> list[dict[str, Any]]:
        active = prometheus("targets", state="active")["activeTargets"]
        found = [t for t in active if t["labels"].get("kubernetes_namespace") == namespace]
        return found if len(found) >= 2 and all(t["health"] == "up" for t in found) else []

    found = wait_until("the stand-ins scraped", targets, timeout=60)
    by_pod = {t["labels"]["kubernetes_pod"]: t for t in found}
    # One target per pod (not one per container port), the unannotated pod none.
    assert sorted(by_pod) == ["api-stand-in", "operator-stand-in"]
    assert len(found) == 2
    for component in ("operator", "api"):
        target = by_pod[f"{component}-stand-in"]
        assert target["labels"]["job"] == f"mediaflow-{component}"
        assert target["labels"]["release"] == PROBE_RELEASE
        assert (
            target["scrapeUrl"]
            == f"http://{ips[f'{component}-stand-in']}:{ports[component]}/metrics"
        )

    # The scraped series: the contract's job label, and the metric's own `namespace` label
    # kept (not renamed exported_namespace by a target label).
    def series() -> list[dict[str, Any]]:
        return query(f'mediaflow_test_probe{{kubernetes_namespace="{namespace}"}}')

    samples = wait_until("the stand-ins' series", lambda: len(series()) == 2 and series(), 30)
    labels = sorted((s["metric"]["job"], s["metric"]["namespace"]) for s in samples)
    assert labels == [
        ("mediaflow-api", "from-the-metric"),
        ("mediaflow-operator", "from-the-metric"),
    ]
    assert not [s for s in samples if "exported_namespace" in s["metric"]]
    up = query(f'up{{kubernetes_namespace="{namespace}"}}')
    assert sorted((s["metric"]["job"], s["value"][1]) for s in up) == [
        ("mediaflow-api", "1"),
        ("mediaflow-operator", "1"),
    ]


def test_every_alert_rule_is_loaded_and_evaluates_without_error() -> None:
    expected = {rule["alert"] for rule in alert_rules()}

    def evaluated() -> list[dict[str, Any]]:
        groups = prometheus("rules", type="alert")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        done = all(not r["lastEvaluation"].startswith("0001-") for r in rules)
        return rules if done and rules else []

    rules = wait_until("every rule evaluated once", evaluated, timeout=30)
    assert {r["name"] for r in rules} == expected
    for rule in rules:
        assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))
    groups = prometheus("rules", type="alert")["groups"]
    # The chart's file itself (of the checkout that started Prometheus), not a copy.
    assert all(g["file"].endswith("/charts/mediaflow/files/prometheus/alerts.yaml") for g in groups)
    assert {g["interval"] for g in groups} == {5}


def test_every_dashboard_expression_is_accepted_by_prometheus() -> None:
    for expr in expressions():
        prometheus("query", query=resolve(expr))  # fails on a bad_data error


def test_a_local_process_can_register_itself_as_a_target() -> None:
    """What an integration test's own operator or API process uses (scrape_target)."""
    body = b"mediaflow_test_local 7\n"

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{server.server_address[1]}"
    job = f"mediaflow-test-{uuid.uuid4().hex[:6]}"
    try:
        with scrape_target(address, job=job, lane="prom"):
            sample = wait_until(
                "the local process scraped",
                lambda: query(f'mediaflow_test_local{{job="{job}"}}'),
                timeout=30,
            )
            assert sample[0]["metric"]["instance"] == address
            assert sample[0]["metric"]["lane"] == "prom"
            assert sample[0]["value"][1] == "7"
        # Unregistered: the target goes away.
        wait_until(
            "the target dropped",
            lambda: (
                not [
                    t
                    for t in prometheus("targets", state="active")["activeTargets"]
                    if t["labels"]["job"] == job
                ]
            ),
            timeout=30,
        )
    finally:
        server.shutdown()
