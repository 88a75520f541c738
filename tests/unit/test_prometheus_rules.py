"""MediaFlow's alert rules (charts/mediaflow/files/prometheus/alerts.yaml): valid for promtool,
each unit-tested by `promtool test rules` with a case that fires it and one that does not, each
explained in docs/operations.md.

promtool is the pinned build of hack/build-binaries.sh (`make binaries`; `make test` builds it
through `make up`). Only the tests that run it skip when it has not been built yet.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ALERTS = REPO / "charts/mediaflow/files/prometheus/alerts.yaml"
ALERT_TESTS = REPO / "tests/unit/prometheus/alerts_test.yaml"
DASHBOARD = REPO / "charts/mediaflow/files/grafana/mediaflow.json"
OPERATIONS = REPO / "docs/operations.md"
METRIC = re.compile(r"\b(mediaflow_[a-z0-9_]+)")


def promtool() -> str:
    """The pinned promtool, or skip: it is built by `make binaries` (and so by `make test`)."""
    text = (REPO / "hack/versions.env").read_text()
    versions = dict(re.findall(r"^([A-Z_]+)=(\S+)$", text, re.M))
    cache = Path(os.environ.get("MEDIAFLOW_CACHE", Path.home() / ".cache/mediaflow"))
    path = cache / f"prometheus-{versions['PROMETHEUS_VERSION']}/promtool"
    if not path.exists():
        pytest.skip(f"promtool is not built ({path}): run `make binaries`")
    return str(path)


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, check=False, cwd=REPO, timeout=120
    )


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def metric_names(text: str) -> set[str]:
    """The metric families named in PromQL text (histogram series folded into their family)."""
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in METRIC.findall(text)}


def test_the_rules_pass_promtool_check() -> None:
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    firing: dict[str, int] = defaultdict(int)
    quiet: dict[str, int] = defaultdict(int)
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    assert tests["rule_files"] == ["../../../charts/mediaflow/files/prometheus/alerts.yaml"]
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet)[check["alertname"]] += 1
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)), "alert names must be unique"
    for name in names:
        assert firing[name] >= 1, f"{name}: no promtool case where it fires"
        assert quiet[name] >= 1, f"{name}: no promtool case where it stays quiet"
    assert set(firing) | set(quiet) <= set(names), "a test names an alert that does not exist"


def test_promtool_unit_tests_pass() -> None:
    result = run_promtool("test", "rules", str(ALERT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_can_fail() -> None:
    """The cases do test the rules: with one threshold changed, promtool reports a failure."""
    changed = ALERTS.read_text().replace(
        'mediaflow_mediajob_oldest_pending_seconds{job="mediaflow-operator"}) > 600',
        'mediaflow_mediajob_oldest_pending_seconds{job="mediaflow-operator"}) > 6000',
    )
    assert changed != ALERTS.read_text()
    scratch = REPO / "tests/unit/prometheus/.alerts-mutated.yaml"
    cases = ALERT_TESTS.read_text().replace(
        "../../../charts/mediaflow/files/prometheus/alerts.yaml", scratch.name
    )
    scratch_tests = scratch.with_name(".alerts-mutated-test.yaml")
    try:
        scratch.write_text(changed)
        scratch_tests.write_text(cases)
        result = run_promtool("test", "rules", str(scratch_tests))
    finally:
        scratch.unlink(missing_ok=True)
        scratch_tests.unlink(missing_ok=True)
    assert result.returncode != 0
    assert "MediaflowJobsStuckPending" in result.stdout + result.stderr


def test_every_alert_says_what_it_means_and_where_its_runbook_is() -> None:
    docs = OPERATIONS.read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", docs, re.M)
    }
    for rule in alert_rules():
        name, annotations = rule["alert"], rule["annotations"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert annotations["summary"], name
        assert annotations["description"], name
        anchor = f"docs/operations.md#{name.lower()}"
        assert annotations["runbook_url"] == anchor, name
        assert name.lower() in headings, f"docs/operations.md has no section {name}"


def test_rules_select_the_contract_job_labels() -> None:
    """`job` values the local Prometheus and the ServiceMonitors set, never a release name."""
    jobs = set(re.findall(r'job=~?"([^"]+)"', ALERTS.read_text()))
    assert jobs == {"mediaflow-operator", "mediaflow-api"}


def test_every_metric_the_rules_and_dashboard_use_is_documented() -> None:
    documented = metric_names(OPERATIONS.read_text())
    used = metric_names(ALERTS.read_text()) | metric_names(DASHBOARD.read_text())
    assert used - documented == set(), "metrics used but not in docs/operations.md"
