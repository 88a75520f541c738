"""The Grafana dashboard the chart ships (charts/mediaflow/files/grafana/mediaflow.json): valid
JSON in Grafana's format, the four views the issue asks for, and every PromQL expression
parsed by promtool (the pinned build; the tests that run it skip until `make binaries` made it).
tests/integration/test_prometheus.py also runs every expression against the real Prometheus."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.unit.test_prometheus_rules import DASHBOARD, run_promtool

# Grafana's variables, as a query would see them (multi-value variables become regexes).
VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "30s",
    "$__range": "6h",
    "$namespace": ".*",
    "$operation": ".*",
}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def expressions() -> list[str]:
    return [t["expr"] for p in panels() for t in p["targets"]]


def resolve(expr: str) -> str:
    """The expression as Prometheus receives it from Grafana."""
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    assert "$" not in expr.replace("$1", ""), f"unknown variable in {expr}"
    return expr


def test_the_dashboard_is_grafana_json() -> None:
    board = dashboard()
    assert board["uid"] == "mediaflow"
    assert board["title"] == "MediaFlow"
    assert isinstance(board["schemaVersion"], int)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        assert panel["description"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    rows = {p["title"] for p in dashboard()["panels"] if p["type"] == "row"}
    assert {"Throughput", "Latency", "Failures", "Cost per namespace"} <= rows
    text = "\n".join(expressions())
    assert "rate(mediaflow_mediajob_outcomes_total" in text  # throughput
    for family in ("duration", "queue_wait", "run"):  # latency percentiles
        for q in ("0.5", "0.9", "0.99"):
            series = f"mediaflow_mediajob_{family}_seconds_bucket"
            assert f"histogram_quantile({q}, sum by (le, operation) (rate({series}" in text
    failures = re.escape("sum by (reason) (rate(mediaflow_mediajob_outcomes_total{")
    assert re.search(failures + r'[^}]*outcome="failed"', text)
    assert "sum by (namespace) (increase(mediaflow_worker_cpu_seconds_total" in text  # cost


def test_every_expression_parses() -> None:
    """promtool parses each expression (as the expression of a recording rule)."""
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:expr{i}", "expr": resolve(e)}
                    for i, e in enumerate(expressions())
                ],
            }
        ]
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        yaml.safe_dump(rules, file)
        file.flush()
        result = run_promtool("check", "rules", file.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(expressions())} rules found" in result.stdout


def test_a_broken_expression_would_be_caught() -> None:
    """The check above can fail: promtool refuses an expression with a PromQL error."""
    rules = {
        "groups": [{"name": "d", "rules": [{"record": "r", "expr": "sum by (le (rate(x[1m]))"}]}]
    }
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        yaml.safe_dump(rules, file)
        file.flush()
        result = run_promtool("check", "rules", file.name)
    assert result.returncode != 0


def test_legends_name_only_labels_the_expression_keeps() -> None:
    for panel in panels():
        for target in panel["targets"]:
            for label in re.findall(r"\{\{(\w+)\}\}", target["legendFormat"]):
                assert re.search(rf"\b{label}\b", target["expr"]), (panel["title"], label)


def test_the_dashboard_file_is_what_the_chart_embeds() -> None:
    template = (Path(DASHBOARD).parents[2] / "templates/grafana-dashboard.yaml").read_text()
    assert '.Files.Get "files/grafana/mediaflow.json"' in template
