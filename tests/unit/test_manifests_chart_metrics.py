"""The chart's metrics side (issue 13): scrape annotations and ports of the operator and API
pods, the operator's metrics Service, and the optional ServiceMonitors, PrometheusRule and
Grafana dashboard ConfigMap (off by default, schema-checked). `helm template`, no cluster:
the Prometheus Operator's CRDs are not installed here."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.unit.test_manifests_chart import CHART, env_of, find, template, template_error

SCRAPE = {"prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path"}


def pod_template(documents: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return find(documents, "Deployment", name)["spec"]["template"]


def container(documents: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return pod_template(documents, name)["spec"]["containers"][0]


def kinds(documents: list[dict[str, Any]]) -> set[str]:
    return {d["kind"] for d in documents}


def test_operator_and_api_pods_say_where_their_metrics_are() -> None:
    documents = template()
    operator = pod_template(documents, "mediaflow-operator")
    assert {k: v for k, v in operator["metadata"]["annotations"].items() if k in SCRAPE} == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8081",
        "prometheus.io/path": "/metrics",
    }
    ports = {
        p["name"]: p["containerPort"] for p in container(documents, "mediaflow-operator")["ports"]
    }
    assert ports == {"healthz": 8080, "metrics": 8081}
    assert env_of(container(documents, "mediaflow-operator"))["MEDIAFLOW_METRICS_PORT"] == "8081"

    api = pod_template(documents, "mediaflow-api")
    annotations = api["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    api_ports = {
        p["name"]: p["containerPort"] for p in container(documents, "mediaflow-api")["ports"]
    }
    assert annotations["prometheus.io/port"] == str(api_ports["http"])
    # The labels the local Prometheus keeps and makes the job label from.
    for pod in (operator, api):
        assert pod["metadata"]["labels"]["app.kubernetes.io/part-of"] == "mediaflow"
    assert operator["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"
    assert api["metadata"]["labels"]["app.kubernetes.io/component"] == "api"


def test_the_operator_metrics_service_selects_every_replica() -> None:
    documents = template()
    service = find(documents, "Service", "mediaflow-operator-metrics")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8081, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = pod_template(documents, "mediaflow-operator")["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["metadata"]["labels"]["mediaflow.io/metrics-job"] == "mediaflow-operator"
    api = find(documents, "Service", "mediaflow-api")
    assert api["metadata"]["labels"]["mediaflow.io/metrics-job"] == "mediaflow-api"
    assert [p["name"] for p in api["spec"]["ports"]] == ["http"]


def test_monitoring_objects_are_off_by_default() -> None:
    documents = template()
    assert not {"ServiceMonitor", "PrometheusRule"} & kinds(documents)
    assert not [
        d
        for d in documents
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")
    ]


def test_metrics_port_zero_turns_the_endpoint_off() -> None:
    documents = template(
        "--set", "operator.metricsPort=0", "--set", "metrics.serviceMonitor.enabled=true"
    )
    operator = pod_template(documents, "mediaflow-operator")
    assert not SCRAPE & set(operator["metadata"]["annotations"])
    assert [p["name"] for p in container(documents, "mediaflow-operator")["ports"]] == ["healthz"]
    assert env_of(container(documents, "mediaflow-operator"))["MEDIAFLOW_METRICS_PORT"] == "0"
    assert not [d for d in documents if d["metadata"]["name"] == "mediaflow-operator-metrics"]
    monitors = [d["metadata"]["name"] for d in documents if d["kind"] == "ServiceMonitor"]
    assert monitors == ["mediaflow-api"]


def test_pod_annotations_can_be_left_to_service_monitors() -> None:
    documents = template("--set", "metrics.podAnnotations=false")
    for name in ("mediaflow-operator", "mediaflow-api"):
        assert not SCRAPE & set(pod_template(documents, name)["metadata"]["annotations"]), name
    # The endpoint itself stays.
    assert env_of(container(documents, "mediaflow-operator"))["MEDIAFLOW_METRICS_PORT"] == "8081"


def test_service_monitors_scrape_both_services_under_the_contract_job_names() -> None:
    documents = template(
        "--set", "metrics.serviceMonitor.enabled=true",
        "--set", "metrics.serviceMonitor.interval=15s",
        "--set", "metrics.serviceMonitor.labels.release=kube-prometheus",
    )  # fmt: skip
    services = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Service"}
    monitors = {d["metadata"]["name"]: d for d in documents if d["kind"] == "ServiceMonitor"}
    assert set(monitors) == {"mediaflow-operator", "mediaflow-api"}
    for name, monitor in monitors.items():
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
        spec = monitor["spec"]
        assert spec["namespaceSelector"] == {"matchNames": ["mediaflow"]}
        selected = [
            s for s in services.values()
            if spec["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
        ]  # fmt: skip
        assert len(selected) == 1, name
        service = selected[0]
        # The job label comes from the Service's label of the contract's job name.
        component = monitor["metadata"]["labels"]["app.kubernetes.io/component"]
        assert service["metadata"]["labels"][spec["jobLabel"]] == f"mediaflow-{component}"
        [endpoint] = spec["endpoints"]
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
        assert endpoint["path"] == "/metrics"
        assert endpoint["interval"] == "15s"
    assert (
        services["mediaflow-operator-metrics"]["metadata"]["labels"]["mediaflow.io/metrics-job"]
        == "mediaflow-operator"
    )
    # The operator's own `namespace` label (the MediaJob's) must win over the target's.
    assert monitors["mediaflow-operator"]["spec"]["endpoints"][0]["honorLabels"] is True
    assert monitors["mediaflow-api"]["spec"]["endpoints"][0]["honorLabels"] is False


def test_the_prometheus_rule_holds_the_one_rules_file() -> None:
    documents = template(
        "--set", "metrics.prometheusRule.enabled=true",
        "--set", "metrics.prometheusRule.labels.role=alert-rules",
    )  # fmt: skip
    rule = find(documents, "PrometheusRule", "mediaflow")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["role"] == "alert-rules"
    source = yaml.safe_load((CHART / "files/prometheus/alerts.yaml").read_text())
    assert rule["spec"]["groups"] == source["groups"]
    # Prometheus' own template syntax reaches the rule verbatim (not rendered by Helm).
    assert "{{ $labels.namespace }}" in json.dumps(rule["spec"])


def test_the_dashboard_config_map_holds_the_dashboard_file() -> None:
    documents = template("--set", "metrics.grafanaDashboard.enabled=true")
    config_map = find(documents, "ConfigMap", "mediaflow-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert (
        config_map["data"]["mediaflow.json"] == (CHART / "files/grafana/mediaflow.json").read_text()
    )
    json.loads(config_map["data"]["mediaflow.json"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "metrics.serviceMonitor.enabled=yes"], "enabled"),
        (["--set", "metrics.prometheusRule.enabled=1"], "enabled"),
        (["--set", "metrics.grafanaDashboard.enabled=on"], "enabled"),
        (["--set", "metrics.serviceMonitor.interval=often"], "interval"),
        (["--set", "metrics.scrape=true"], "scrape"),
        (["--set", "metrics.serviceMonitor.jobLabel=x"], "jobLabel"),
        (["--set", "operator.metricsPort=70000"], "metricsPort"),
        (["--set", "operator.metricsPort=-1"], "metricsPort"),
        (["--set", "operator.metricsPort=8080"], "must differ"),
    ],
)
def test_the_schema_refuses_bad_metrics_values(values: list[str], message: str) -> None:
    assert message in template_error(*values)
