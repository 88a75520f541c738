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


def operator_roles(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    roles = [
        d for d in documents if d["kind"] == kind and d["metadata"]["name"].endswith("-operator")
    ]
    assert roles, kind
    return roles


def test_the_operator_may_create_get_and_delete_secrets_and_nothing_more() -> None:
    """Each Job's presigned URLs are a Secret the operator makes, checks and deletes; it never
    lists, watches or changes Secrets (and, namespaced, only in the namespaces it serves)."""
    secrets = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "get", "delete"]}
    for args, kind, count in (
        (["--set", "operator.watch.namespaces={team-a}"], "Role", 2),
        (["--set", "operator.watch.allNamespaces=true"], "ClusterRole", 1),
    ):
        roles = operator_roles(template(*args), kind)
        assert len(roles) == count
        for role in roles:
            assert [r for r in role["rules"] if "secrets" in r["resources"]] == [secrets]
    roles = operator_roles(template("--set", "operator.watch.namespaces={team-a}"), "Role")
    assert {r["metadata"]["namespace"] for r in roles} == {"mediaflow", "team-a"}
    observe = find(template(), "ClusterRole", "mediaflow-mediaflow-operator-observe")
    assert not any("secrets" in r["resources"] for r in observe["rules"])
