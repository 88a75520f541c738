"""The versions hack/ builds agree with one another: versions.env and the Go module that
builds Kubernetes and etcd must not drift apart."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def read_versions() -> dict[str, str]:
    text = (REPO / "hack/versions.env").read_text()
    return dict(re.findall(r"^([A-Z_]+)=(\S+)$", text, flags=re.MULTILINE))


def read_go_mod() -> str:
    return (REPO / "hack/tools/kubernetes/go.mod").read_text()


def test_kubernetes_module_builds_the_pinned_release() -> None:
    versions = read_versions()
    go_mod = read_go_mod()
    assert re.search(rf"^\tk8s\.io/kubernetes {re.escape(versions['KUBE_VERSION'])}$", go_mod, re.M)
    assert re.search(
        rf"^\tgo\.etcd\.io/etcd/server/v3 {re.escape(versions['ETCD_VERSION'])}$", go_mod, re.M
    )


def test_every_staging_module_is_replaced_by_the_matching_published_release() -> None:
    kube = read_versions()["KUBE_VERSION"]  # v1.MINOR.PATCH
    staging = "v0." + kube.removeprefix("v1.")
    replaces = re.findall(r"^\t(k8s\.io/[a-z-]+) => (k8s\.io/[a-z-]+) (\S+)$", read_go_mod(), re.M)
    assert len(replaces) >= 30, "k8s.io/kubernetes has about 31 staging modules"
    for module, target, version in replaces:
        assert module == target
        assert version == staging, f"{module} is replaced by {version}, expected {staging}"
