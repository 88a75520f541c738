"""manifests/install.yaml is what `make manifests` renders from the chart today.

Needs helm: the one on PATH (.local/env), else the cached build of the pinned version
(hack/build-binaries.sh). Without it the test fails; it never skips.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "manifests/install.yaml"


def helm() -> str:
    """The helm binary the Makefile would use."""
    found = shutil.which("helm")
    if found:
        return found
    versions = dict(
        re.findall(r"^([A-Z_]+)=(\S+)$", (REPO / "hack/versions.env").read_text(), re.M)
    )
    cache = Path(os.environ.get("MEDIAFLOW_CACHE", Path.home() / ".cache/mediaflow"))
    path = cache / f"helm-{versions['HELM_VERSION']}/helm"
    assert path.exists(), f"no helm on PATH nor at {path}: run `make binaries`"
    return str(path)


def render() -> str:
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "print-manifests", f"HELM={helm()}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_install_yaml_is_what_the_chart_renders() -> None:
    assert INSTALL.read_text() == render(), "manifests/install.yaml is stale: run `make manifests`"


def test_install_yaml_holds_no_secret_and_no_test_hook() -> None:
    documents = [d for d in yaml.safe_load_all(INSTALL.read_text()) if d]
    kinds = {d["kind"] for d in documents}
    assert "Secret" not in kinds, "a committed key would be every installation's key"
    assert not any("helm.sh/hook" in (d["metadata"].get("annotations") or {}) for d in documents)
    assert {"Namespace", "CustomResourceDefinition", "Deployment", "NetworkPolicy"} <= kinds
    users_rights = {("Role", "mediaflow-api-users"), ("RoleBinding", "mediaflow-api-users")}
    assert all(
        d["metadata"].get("namespace") in (None, "mediaflow")
        for d in documents
        if (d["kind"], d["metadata"]["name"]) not in users_rights
    ), "everything namespaced lives in the mediaflow namespace, but the API's users' rights"
    users = [d for d in documents if d["metadata"].get("namespace") == "mediaflow-users"]
    assert {d["kind"] for d in users} == {"Role", "RoleBinding"}
