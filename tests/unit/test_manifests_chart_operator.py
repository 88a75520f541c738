"""The chart's operator side (issue 10): system namespaces excluded, least-privilege rights on
worker Secrets, pods restarted when the Secrets they read change; (issue 11) replicas with
leader election. `helm template`, no cluster."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pytest

from mediaflow_operator.config import LeaderElectionSettings
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


def test_the_operator_may_create_and_get_secrets_and_nothing_more() -> None:
    """Each Job's presigned URLs are a Secret the operator makes and checks; it goes with its
    Job (the garbage collector). The operator never lists, watches, changes or deletes Secrets
    (and, namespaced, only in the namespaces it serves)."""
    secrets = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "get"]}
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


def secret_content(name: str, data: dict[str, str]) -> str:
    """What _secrets.tpl hashes for one Secret: Go's JSON of {"name", "data"} (sorted keys)."""
    return json.dumps({"name": name, "data": data}, sort_keys=True, separators=(",", ":"))


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def secrets_checksums(documents: list[dict[str, Any]]) -> dict[str, str]:
    return {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]["checksum/secrets"]
        for d in documents
        if d["kind"] == "Deployment" and d["metadata"]["name"] != "mediaflow-minio"
    }


def test_pods_carry_the_checksum_of_the_secret_values_they_read() -> None:
    """Issue 10, item 13: the operator and API pods restart when a Secret they read changes.
    Generated values (new in every `helm template`, which cannot look the old ones up) are
    hashed as rendered: a changed value, a changed annotation."""
    first, second = template(), template()
    for documents in (first, second):
        jwt = find(documents, "Secret", "mediaflow-jwt")["data"]
        minio = find(documents, "Secret", "mediaflow-minio")["data"]
        storage = secret_content("mediaflow-minio", minio)
        assert secrets_checksums(documents) == {
            "mediaflow-operator": checksum(storage),
            "mediaflow-api": checksum(f"{secret_content('mediaflow-jwt', jwt)}\n{storage}"),
        }
    assert find(first, "Secret", "mediaflow-jwt") != find(second, "Secret", "mediaflow-jwt")
    before, after = secrets_checksums(first), secrets_checksums(second)
    assert before["mediaflow-operator"] != after["mediaflow-operator"]
    assert before["mediaflow-api"] != after["mediaflow-api"]


def test_existing_secrets_give_the_same_checksum_for_the_same_values() -> None:
    """With `existingSecret` (GitOps) `helm template` sees no values: the checksum is stable,
    render after render, and follows the Secrets' names; `helm upgrade` against a cluster
    looks them up and hashes their data too."""
    own = ["--set", "api.jwt.existingSecret=jwt", "--set", "storage.bundled.existingSecret=s3"]
    first, second = template(*own), template(*own)
    assert not [d for d in first if d["kind"] == "Secret"]
    assert secrets_checksums(first) == secrets_checksums(second)
    storage = secret_content("s3", {})
    assert secrets_checksums(first) == {
        "mediaflow-operator": checksum(storage),
        "mediaflow-api": checksum(f"{secret_content('jwt', {})}\n{storage}"),
    }
    renamed = template("--set", "api.jwt.existingSecret=jwt2", "--set", own[3])
    assert secrets_checksums(renamed)["mediaflow-api"] != secrets_checksums(first)["mediaflow-api"]
    assert secrets_checksums(renamed)["mediaflow-operator"] == checksum(storage)


def test_the_worker_policy_excepts_every_ipv4_range_the_worker_refuses() -> None:
    """Two layers, one list: the NetworkPolicy's `internet` rule excepts what the worker's
    URL guard refuses (the IANA special-purpose registry, issue 10 item 9)."""
    from mediaflow_worker.transfer import NON_PUBLIC

    policy = find(template(), "NetworkPolicy", "mediaflow-worker")
    blocks = [
        p["ipBlock"] for rule in policy["spec"]["egress"] for p in rule["to"] if "ipBlock" in p
    ]
    (internet,) = [b for b in blocks if b["cidr"] == "0.0.0.0/0"]
    assert {net for net in NON_PUBLIC if ":" not in net} == set(internet["except"])


def test_operator_replicas_elect_a_leader_on_a_lease_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 11 item 8: several operator pods, one leader (mediaflow_operator/leader.py)."""
    documents = template(namespace="media")
    deployment = find(documents, "Deployment", "mediaflow-operator")
    env = env_of(operator_container(documents))
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["MEDIAFLOW_LEADER_ELECTION"] == "true"
    assert env["MEDIAFLOW_LEADER_ELECTION_NAMESPACE"] == "media"
    assert env["MEDIAFLOW_LEADER_ELECTION_LEASE_NAME"] == "mediaflow-operator"
    for key in [k for k in os.environ if k.startswith("MEDIAFLOW_LEADER_ELECTION")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("MEDIAFLOW_LEADER_ELECTION"):
            monkeypatch.setenv(key, value)
    settings = LeaderElectionSettings()
    assert settings.enabled
    assert (settings.namespace, settings.lease_name) == ("media", "mediaflow-operator")

    # Its rights on Leases: only in the release namespace, and only on its own Lease but for
    # create (which RBAC cannot restrict by name).
    role = find(documents, "Role", "mediaflow-operator-leader")
    assert role["metadata"]["namespace"] == "media"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["mediaflow-operator"],
            "verbs": ["get", "update"],
        },
    ]
    binding = find(documents, "RoleBinding", "mediaflow-operator-leader")
    assert binding["subjects"][0]["name"] == "mediaflow-operator"
    assert not any(
        "leases" in rule["resources"]
        for d in documents
        if d["kind"] in ("Role", "ClusterRole") and d is not role
        for rule in d["rules"]
    )

    # The standby preferably on another node; an `affinity` value replaces that.
    pod = deployment["spec"]["template"]["spec"]
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert (
        term[0]["podAffinityTerm"]["labelSelector"]["matchLabels"]
        == (deployment["spec"]["selector"]["matchLabels"])
    )
    mine = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "pool", "operator": "In", "values": ["ops"]}]}]}}}  # fmt: skip
    given = template("--set-json", f"affinity={json.dumps(mine)}")
    pod = find(given, "Deployment", "mediaflow-operator")["spec"]["template"]["spec"]
    assert pod["affinity"] == mine

    assert (
        find(template("--set", "operator.replicas=1"), "Deployment", "mediaflow-operator")["spec"][
            "replicas"
        ]
        == 1
    )
    assert "operator/replicas" in template_error("--set", "operator.replicas=0")
