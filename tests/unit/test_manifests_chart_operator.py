"""The chart's operator side (issue 10): system namespaces excluded, least-privilege rights on
worker Secrets, pods restarted when the Secrets they read change. `helm template`, no cluster."""

from __future__ import annotations

from typing import Any

from tests.unit.test_manifests_chart import env_of, find, template, template_error

SYSTEM = "kube-system,kube-public,kube-node-lease"


def operator_container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = find(documents, "Deployment", "mediaflow-operator")
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_system_namespaces_are_excluded_by_default() -> None:
    for args in ([], ["--set", "operator.watch.allNamespaces=true"]):
        env = env_of(operator_container(template(*args)))
        assert env["MEDIAFLOW_EXCLUDED_NAMESPACES"] == SYSTEM
    env = env_of(
        operator_container(template("--set", "operator.watch.excludeNamespaces={kube-*,ops}"))
    )
    assert env["MEDIAFLOW_EXCLUDED_NAMESPACES"] == "kube-*,ops"


def test_an_excluded_namespace_cannot_be_watched() -> None:
    error = template_error("--set", "operator.watch.namespaces={team-a,kube-system}")
    assert "namespace kube-system is in operator.watch.excludeNamespaces" in error
    error = template_error("--namespace", "kube-system")
    assert "namespace kube-system is in operator.watch.excludeNamespaces" in error
