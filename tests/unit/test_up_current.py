"""`make up CLUSTER=current` decides how images reach the cluster from the kube-context.

hack/current-cluster.sh runs here with DRY_RUN=1 and stub kubectl and docker commands: it
prints what it would run (image builds, `kind load`, `docker push`, helm, port-forwards) and
the Helm values, and changes nothing. Only the containerd path can run for real on this machine
(tests/e2e/test_current_cluster.py); these check the kind, k3d and registry paths.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_manifests import helm

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "hack/current-cluster.sh"
VERSIONS = (REPO / "hack/versions.env").read_text()
MINIO_VERSION = re.findall(r"^MINIO_VERSION=(\S+)$", VERSIONS, re.M)[0]
STUB_KUBECTL = """#!/bin/sh
case "$*" in
*current-context*) [ -n "$STUB_CONTEXT" ] && echo "$STUB_CONTEXT" || exit 1 ;;
*"config view"*) echo "$STUB_SERVER" ;;
*) echo "unexpected: kubectl $*" >&2; exit 3 ;;
esac
"""
# `docker image inspect` fails: no locally made base image, as on a user's machine.
STUB_DOCKER = """#!/bin/sh
echo "unexpected: docker $*" >&2
exit 1
"""
SETTINGS = ("IMAGE_LOAD", "REGISTRY", "IMAGE", "BASE_IMAGE", "MINIO_IMAGE", "BUILD", "CONTEXT",
            "API_PORT", "STORAGE_PORT", "ENV_FILE", "UNINSTALL", "KUBECONFIG")  # fmt: skip


def plan(
    tmp_path: Path, context: str | None, server: str = "https://203.0.113.10:6443", **settings: str
) -> subprocess.CompletedProcess[str]:
    """The dry run of `up` against a stubbed context."""
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    for name, text in (("kubectl", STUB_KUBECTL), ("docker", STUB_DOCKER)):
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env |= {
        "PATH": f"{stubs}:{env['PATH']}",
        "DOCKER": str(stubs / "docker"),
        "HELM": "helm",
        "MEDIAFLOW_LOCAL_DIR": str(tmp_path / "local"),
        "STUB_CONTEXT": context or "",
        "STUB_SERVER": server,
        "DRY_RUN": "1",
        "RELEASE": "mf",
        "NAMESPACE": "mf-ns",
        **settings,
    }
    return subprocess.run(
        ["bash", str(SCRIPT), "up"], env=env, capture_output=True, text=True, check=False
    )


def commands(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [line[2:] for line in result.stderr.splitlines() if line.startswith("+ ")]


def values(result: subprocess.CompletedProcess[str]) -> dict:
    text = result.stdout.split("---", 2)[1].split("\n", 1)[1]
    return yaml.safe_load(text)


def test_kind_context_loads_images_with_kind(tmp_path: Path) -> None:
    result = plan(tmp_path, "kind-dev")
    run = commands(result)
    minio = f"mediaflow.local/minio:{MINIO_VERSION}"
    assert f"kind load docker-image {minio} --name dev" in run
    assert "kind load docker-image mediaflow.local/mediaflow:dev --name dev" in run
    # Elsewhere the image builds on the Dockerfile's default base, not the locally made one.
    assert any("BASE_IMAGE=debian:bookworm-slim" in c and "hack/image.sh" in c for c in run)
    assert not any("docker push" in c or "load-image.sh" in c for c in run)
    helm_cmd = next(c for c in run if " upgrade --install " in c)
    assert helm_cmd.startswith("helm --kube-context kind-dev upgrade --install mf ")
    assert "-n mf-ns" in helm_cmd
    assert "--wait" in helm_cmd
    chart = values(result)
    assert chart["image"] == {
        "repository": "mediaflow.local/mediaflow", "tag": "dev", "pullPolicy": "IfNotPresent"
    }  # fmt: skip
    assert chart["storage"]["mode"] == "bundled"
    assert chart["storage"]["bundled"]["image"]["repository"] == "mediaflow.local/minio"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", chart["storage"]["publicEndpoint"])
    forwards = [c for c in run if " port-forward " in c]
    assert len(forwards) == 2
    assert all(c.startswith("kubectl --context kind-dev -n mf-ns port-forward") for c in forwards)
    assert all("--address 127.0.0.1" in c for c in forwards)
    port = chart["storage"]["publicEndpoint"].rsplit(":", 1)[1]
    assert any(c.endswith(f"{port}:9000") for c in forwards), "MinIO forwarded where URLs point"


def test_k3d_context_imports_images_with_k3d(tmp_path: Path) -> None:
    run = commands(plan(tmp_path, "k3d-work"))
    assert "k3d image import mediaflow.local/mediaflow:dev --cluster work" in run


def test_registry_pushes_and_the_chart_pulls_from_it(tmp_path: Path) -> None:
    result = plan(tmp_path, "gke_proj_zone_c1", REGISTRY="registry.example.com:5000/team/")
    run = commands(result)
    registry = "registry.example.com:5000/team"
    target = f"{registry}/mediaflow:dev"
    assert any(c.endswith(f"docker tag mediaflow.local/mediaflow:dev {target}") for c in run)
    assert any(c.endswith(f"push {target}") for c in run)
    assert any(c.endswith(f"push {registry}/minio:{MINIO_VERSION}") for c in run)
    chart = values(result)
    assert chart["image"]["repository"] == f"{registry}/mediaflow"
    assert chart["image"]["pullPolicy"] == "Always", "a pushed tag changes: nodes must check"
    assert chart["storage"]["bundled"]["image"]["repository"] == f"{registry}/minio"


def test_unknown_cluster_without_registry_is_a_clear_error(tmp_path: Path) -> None:
    result = plan(tmp_path, "arn:aws:eks:eu-west-1:1:cluster/prod")
    assert result.returncode != 0
    assert "REGISTRY=" in result.stderr
    assert "IMAGE_LOAD=none" in result.stderr
    assert " upgrade --install " not in result.stderr


def test_no_current_context_is_a_clear_error(tmp_path: Path) -> None:
    result = plan(tmp_path, None)
    assert result.returncode != 0
    assert "no current kube-context" in result.stderr


def test_bad_image_load_is_refused(tmp_path: Path) -> None:
    result = plan(tmp_path, "kind-dev", IMAGE_LOAD="scp")
    assert result.returncode != 0
    assert "IMAGE_LOAD=scp" in result.stderr


def test_none_without_build_uses_the_images_as_given(tmp_path: Path) -> None:
    minio = "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
    result = plan(
        tmp_path,
        "docker-desktop",
        IMAGE_LOAD="none",
        BUILD="0",
        IMAGE="ghcr.io/example/mediaflow:1.0",
        MINIO_IMAGE=minio,
    )
    run = commands(result)
    assert not any(c.startswith(("docker", "kind", "k3d", "env ")) for c in run)
    chart = values(result)
    assert chart["image"]["repository"] == "ghcr.io/example/mediaflow"
    assert chart["image"]["tag"] == "1.0"
    assert chart["storage"]["bundled"]["image"] == {
        "repository": "quay.io/minio/minio",
        "tag": "RELEASE.2025-09-07T16-13-09Z",
        "pullPolicy": "IfNotPresent",
    }


def test_local_cluster_context_loads_into_its_containerd(tmp_path: Path) -> None:
    run = commands(plan(tmp_path, "mediaflow-local", server="https://10.244.0.1:6443"))
    assert any(c.endswith("hack/load-image.sh mediaflow.local/mediaflow:dev") for c in run)
    # Nothing can be pulled on that machine: the locally made base.
    assert any("BASE_IMAGE=mediaflow.local/debian:bookworm" in c for c in run)
    assert not any(c.startswith(("kind", "k3d")) or " push " in c for c in run)


@pytest.mark.parametrize("cluster", ["local", "current"])
def test_make_up_and_down_by_cluster(cluster: str) -> None:
    def dry(target: str) -> str:
        result = subprocess.run(
            ["make", "-n", target, f"CLUSTER={cluster}"], cwd=REPO, capture_output=True,
            text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    if cluster == "local":
        assert "hack/cluster-up.sh" in dry("up")
        assert "hack/helm-up.sh" in dry("up")
        assert "hack/cluster-down.sh" in dry("down")
    else:
        assert "hack/cluster-up.sh" not in dry("up")
        assert "current-cluster.sh up" in dry("up")
        down = dry("down")
        assert "hack/cluster-down.sh" not in down, "never stop someone else's cluster"
        assert "current-cluster.sh down" in down


def test_unknown_cluster_is_refused() -> None:
    result = subprocess.run(
        ["make", "-n", "up", "CLUSTER=mine"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "CLUSTER=mine" in result.stderr


def test_bundled_minio_command_fits_the_official_image() -> None:
    """quay.io/minio/minio has its binary at /usr/bin/minio (ours: /usr/local/bin): the chart
    runs `minio` from PATH, bypassing the image's entrypoint script, so both work."""
    out = subprocess.run(
        [helm(), "template", "mf", str(REPO / "charts/mediaflow"), "--show-only",
         "templates/minio.yaml", "--set", "storage.bundled.image.repository=quay.io/minio/minio",
         "--set", "storage.bundled.image.tag=RELEASE.2025-09-07T16-13-09Z"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    deployment = next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
    assert container["command"] == ["minio"]
    assert container["args"][:2] == ["server", "/data"]


def test_build_0_still_loads_the_existing_images(tmp_path: Path) -> None:
    run = commands(plan(tmp_path, "kind-dev", BUILD="0"))
    assert not any("hack/image.sh" in c or "hack/minio-image.sh" in c for c in run)
    assert "kind load docker-image mediaflow.local/mediaflow:dev --name dev" in run
