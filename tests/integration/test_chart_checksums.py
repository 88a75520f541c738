"""Issue 10, item 13, with Helm looking Secrets up in the real cluster (`helm template
--dry-run=server`, as `helm upgrade` and Flux's helm-controller render): the operator and API
pod templates' `checksum/secrets` follows the values of the Secrets they read."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.environment import ScratchNamespace
from tests.unit.test_manifests import helm

CHART = Path(__file__).resolve().parents[2] / "charts/mediaflow"
PODS = ("mediaflow-operator", "mediaflow-api")


def render(namespace: str, *args: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [helm(), "template", "mediaflow", str(CHART), "--namespace", namespace,
         "--dry-run=server", *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def checksums(documents: list[dict[str, Any]]) -> dict[str, str]:
    return {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]["checksum/secrets"]
        for d in documents
        if d["kind"] == "Deployment" and d["metadata"]["name"] in PODS
    }


def put_secret(ns: ScratchNamespace, name: str, **values: str) -> None:
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name),
        data={k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
    )
    try:
        ns.core.replace_namespaced_secret(name, ns.name, body)
    except client.ApiException as error:
        if error.status != 404:
            raise
        ns.core.create_namespaced_secret(ns.name, body)


def test_existing_secrets_changed_in_the_cluster_change_the_checksums(
    namespace: ScratchNamespace,
) -> None:
    own = ("--set", "api.jwt.existingSecret=jwt", "--set", "storage.bundled.existingSecret=s3")
    put_secret(namespace, "jwt", signingKey="k" * 40)
    put_secret(namespace, "s3", accessKey="access", secretKey="secret-1")
    first = checksums(render(namespace.name, *own))
    assert checksums(render(namespace.name, *own)) == first  # same values, same checksums

    put_secret(namespace, "s3", accessKey="access", secretKey="secret-2")
    rotated = checksums(render(namespace.name, *own))
    assert rotated["mediaflow-operator"] != first["mediaflow-operator"]
    assert rotated["mediaflow-api"] != first["mediaflow-api"]

    put_secret(namespace, "jwt", signingKey="j" * 40)
    rekeyed = checksums(render(namespace.name, *own))
    assert rekeyed["mediaflow-operator"] == rotated["mediaflow-operator"]  # reads no JWT key
    assert rekeyed["mediaflow-api"] != rotated["mediaflow-api"]


def test_generated_secrets_kept_by_lookup_keep_their_checksums(
    namespace: ScratchNamespace,
) -> None:
    """An upgrade finds the Secrets an earlier install generated: it renders them unchanged,
    and the pods' checksums with them (no restart)."""
    put_secret(namespace, "mediaflow-jwt", signingKey="g" * 64)
    put_secret(namespace, "mediaflow-minio", accessKey="mfgenerated", secretKey="s" * 48)
    first, second = render(namespace.name), render(namespace.name)
    for documents in (first, second):
        jwt = next(d for d in documents if d["kind"] == "Secret" and "signingKey" in d["data"])
        assert base64.b64decode(jwt["data"]["signingKey"]).decode() == "g" * 64
    assert checksums(first) == checksums(second)
    put_secret(namespace, "mediaflow-minio", accessKey="mfgenerated", secretKey="t" * 48)
    assert (
        checksums(render(namespace.name))["mediaflow-operator"]
        != checksums(first)["mediaflow-operator"]
    )
