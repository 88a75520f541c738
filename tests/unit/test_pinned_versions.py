"""The versions hack/ builds agree with one another: versions.env and the Go module that
builds Kubernetes and etcd must not drift apart, and every pin is built and cached."""

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


def test_every_pinned_version_is_built_and_cached_under_its_version() -> None:
    """Each NAME_VERSION in versions.env names a cache folder in lib.sh that
    build-binaries.sh fills: a pin nothing builds, or a binary built at no pin, is a mistake."""
    lib = (REPO / "hack/lib.sh").read_text()
    build = (REPO / "hack/build-binaries.sh").read_text()
    versions = {k: v for k, v in read_versions().items() if k.endswith("_VERSION")}
    assert "KUBE_ROUTER_VERSION" in versions
    for key in versions:
        name = key.removesuffix("_VERSION")
        folder = re.search(rf"^{name}_BIN=\$MEDIAFLOW_CACHE/[a-z-]+-\${key}$", lib, re.M)
        assert folder, f"hack/lib.sh has no {name}_BIN folder named after {key}"
        assert re.search(rf'install_atomically "\${name}_BIN" build_', build), (
            f"hack/build-binaries.sh never builds {name}_BIN"
        )


def test_kube_router_is_built_from_its_module_at_the_pin() -> None:
    build = (REPO / "hack/build-binaries.sh").read_text()
    assert re.search(r"^v2\.\d+\.\d+$", read_versions()["KUBE_ROUTER_VERSION"])
    assert (
        '"github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"' in build
    )


def test_kwok_is_built_from_its_module_at_the_pin_and_only_on_demand() -> None:
    """The scale simulation builds KWOK itself; `make up` (`all`) must not wait for it."""
    build = (REPO / "hack/build-binaries.sh").read_text()
    assert re.search(r"^v0\.\d+\.\d+$", read_versions()["KWOK_VERSION"])
    assert '"sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"' in build
    everything = re.search(r"^\tall\)\n(.*?)^\t\t;;$", build, re.M | re.S)
    assert everything, "build-binaries.sh has no `all` case"
    assert "KUBE_BIN" in everything[1]
    assert "KWOK_BIN" not in everything[1]
    assert re.search(r'^\tkwok\) install_atomically "\$KWOK_BIN" build_kwok ;;$', build, re.M)
