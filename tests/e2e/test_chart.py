"""The chart lints, and renders objects the API server accepts for several value sets."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import CHART, run

# Each set is rendered into the release namespace and checked by a server-side dry run.
VALUE_SETS = {
    "defaults": [],
    "external-storage": [
        "storage.mode=external",
        "storage.external.endpoint=https://s3.example.com",
        "storage.external.existingSecret=s3",
        "storage.external.createBucket=true",
        "storage.publicEndpoint=https://files.example.com",
        "worker.networkPolicy.storageIpBlocks={10.1.2.3/32}",
    ],
    "ingress-nodeport-persistence": [
        "api.ingress.enabled=true",
        "api.ingress.tlsSecretName=mediaflow-tls",
        "api.ingress.annotations.example\\.com/body-size=3g",
        "api.service.type=NodePort",
        "api.replicas=2",
        "storage.bundled.persistence.enabled=true",
        "storage.bundled.persistence.storageClass=fast",
        "storage.bundled.service.type=NodePort",
    ],
    "more-namespaces": [
        "operator.watch.namespaces={default}",
        "worker.networkPolicy.podCIDR=10.244.0.0/16",
        "worker.networkPolicy.serviceCIDR=10.96.0.0/16",
        "worker.networkPolicy.extraExcept={198.18.0.0/15}",
    ],
    "all-namespaces-no-policy": [
        "operator.watch.allNamespaces=true",
        "worker.networkPolicy.enabled=false",
        "api.jwt.existingSecret=jwt",
        "storage.bundled.existingSecret=minio",
        "operator.verbose=true",
        "api.corsOrigins={https://app.example.com}",
    ],
}


def test_helm_lint_passes() -> None:
    out = run(["helm", "lint", "--strict", str(CHART)])
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_rendered_objects_pass_a_server_side_dry_run(release: str, values: list[str]) -> None:
    args = [arg for value in values for arg in ("--set", value)]
    rendered = run(["helm", "template", "mf-dry-run", str(CHART), "--namespace", release, *args])
    out = run(["kubectl", "apply", "--dry-run=server", "-f", "-"], stdin=rendered)
    assert "deployment.apps/mf-dry-run-mediaflow-operator created (server dry run)" in out
