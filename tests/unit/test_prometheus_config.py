"""The local Prometheus' configuration (`hack/prometheus.sh config`): valid for promtool, every
5 s, the chart's rules file itself, the API server over TLS with its own certificate, and the
chart's pods under the contract's job names. tests/integration/test_prometheus.py proves the
same against the running Prometheus."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from typing import Any

import yaml

from tests.unit.test_prometheus_rules import ALERTS, REPO, run_promtool


def config() -> dict[str, Any]:
    out = subprocess.run(
        ["bash", str(REPO / "hack/prometheus.sh"), "config"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MEDIAFLOW_LOCAL_DIR": "/tmp/mediaflow-local"},
    ).stdout
    return yaml.safe_load(out)


def scrape(name: str) -> dict[str, Any]:
    [job] = [j for j in config()["scrape_configs"] if j["job_name"] == name]
    return job


def test_the_configuration_passes_promtool() -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as file:
        yaml.safe_dump(config(), file)
        file.flush()
        result = run_promtool("check", "config", "--syntax-only", file.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_scrapes_every_5_seconds_and_loads_the_charts_rules() -> None:
    settings = config()
    assert settings["global"]["scrape_interval"] == "5s"
    assert settings["global"]["evaluation_interval"] == "5s"
    assert settings["rule_files"] == [str(ALERTS)]


def test_the_api_server_is_scraped_with_a_certificate_of_its_own() -> None:
    job = scrape("kube-apiserver")
    assert job["scheme"] == "https"
    pki = "/tmp/mediaflow-local/state/pki"
    assert job["tls_config"] == {
        "ca_file": f"{pki}/ca.crt",
        "cert_file": f"{pki}/prometheus.crt",
        "key_file": f"{pki}/prometheus.key",
    }
    assert job["static_configs"] == [{"targets": ["10.244.0.1:6443"]}]


def test_the_charts_pods_get_the_contract_job_names() -> None:
    job = scrape("mediaflow")
    assert job["kubernetes_sd_configs"] == [
        {"role": "pod", "kubeconfig_file": "/tmp/mediaflow-local/state/pki/prometheus.kubeconfig"}
    ]
    relabel = job["relabel_configs"]
    by_target = {r["target_label"]: r for r in relabel if "target_label" in r}
    assert by_target["job"]["replacement"] == "mediaflow-$1"
    assert by_target["job"]["source_labels"] == [
        "__meta_kubernetes_pod_label_app_kubernetes_io_component"
    ]
    assert by_target["__address__"]["replacement"] == "$1:$2"
    assert re.fullmatch(by_target["__address__"]["regex"], "10.244.0.9;8081")
    # The operator's series have a `namespace` label (the MediaJob's): no target label may
    # take that name, nor `pod`, nor `instance`'s value.
    assert {"namespace", "pod"}.isdisjoint(by_target)
    keep = [r for r in relabel if r.get("action") == "keep"]
    annotation = "__meta_kubernetes_pod_annotation_prometheus_io_scrape"
    assert any(r["source_labels"] == [annotation] and r["regex"] == "true" for r in keep)


def test_cluster_up_starts_it_and_cluster_down_stops_it() -> None:
    up = (REPO / "hack/cluster-up.sh").read_text()
    main = up[up.index("main() {") :]
    # After write_env, which rewrites .local/env: `up` adds PROMETHEUS_URL to the new one.
    assert main.index("write_env") < main.index('bash "$HACK_DIR/prometheus.sh" up')
    down = (REPO / "hack/cluster-down.sh").read_text()
    assert 'bash "$HACK_DIR/prometheus.sh" down' in down


def test_processes_of_this_machine_can_register_as_targets() -> None:
    job = scrape("local-processes")
    assert job["file_sd_configs"] == [
        {
            "files": ["/tmp/mediaflow-local/state/prometheus/targets/*.json"],
            "refresh_interval": "5s",
        }
    ]
