"""A second release with the bundled MinIO, in a scratch namespace: the previous chart version
installs and passes `helm test`; an upgrade to this chart keeps its generated secrets and its
MediaJobs working; uninstall leaves no workload."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from minio import Minio

from tests.e2e.conftest import CHART, REPO, run
from tests.environment import restricted_namespace, wait_until
from tests.media import make_photo

RELEASE = "mf-scratch"
# The previous chart version and the commit it is taken from (the last landed release before
# the security work of issue 10). It is installed with the image built from the same commit:
# a chart and its image go together (0.2.0's operator lacks the RBAC 0.3.0's image needs).
PREVIOUS_CHART = ("0.2.0", "93216492199ae80d36e0a09d2151b7f1abd1ec44")
PREVIOUS_IMAGE_TAG = f"chart-{PREVIOUS_CHART[0]}"
MINIO = f"{RELEASE}-mediaflow-minio"
# What a release may leave in its namespace: the CRD's objects are kept, as Helm does.
WORKLOAD_KINDS = (
    "deployments,replicasets,statefulsets,daemonsets,jobs,pods,services,configmaps,secrets,"
    "serviceaccounts,roles,rolebindings,networkpolicies,persistentvolumeclaims,ingresses"
)


@pytest.fixture(scope="module")
def scratch(kube: client.ApiClient, release: str) -> Iterator[str]:
    """A `restricted` namespace neither the release's nor the tests' operator watches."""
    for namespace in restricted_namespace(kube, "mf-e2e"):
        try:
            yield namespace.name
        finally:
            # MediaJobs whose operator is gone keep their finalizer; let the namespace go.
            names = run(["kubectl", "-n", namespace.name, "get", "mj", "-o", "name"]).split()
            for name in names:
                run(
                    ["kubectl", "-n", namespace.name, "patch", name, "--type=merge", "-p",
                     '{"metadata":{"finalizers":null}}']
                )  # fmt: skip
            run(["helm", "uninstall", RELEASE, "-n", namespace.name, "--ignore-not-found"])
            # The chart keeps the users' namespace on uninstall (users are data).
            run(["kubectl", "delete", "namespace", f"{namespace.name}-users", "--ignore-not-found",
                 "--wait=false"])  # fmt: skip


@pytest.fixture
def minio_volume(scratch: str) -> Iterator[list[str]]:
    """A PersistentVolume for the bundled MinIO's claim (this cluster has no provisioner): a
    directory on this machine, which is the node. Yields the `helm --set` arguments."""
    folder = Path(f"/var/tmp/{scratch}-minio")
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)  # hostPath ignores fsGroup: MinIO runs as UID 10001
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{scratch}-minio"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": f"{scratch}-minio",
            "hostPath": {"path": str(folder), "type": "Directory"},
        },
    }
    run(["kubectl", "apply", "-f", "-"], stdin=yaml.safe_dump(volume))
    try:
        yield [
            "--set", "storage.bundled.persistence.enabled=true",
            "--set", "storage.bundled.persistence.size=1Gi",
            "--set", f"storage.bundled.persistence.storageClass={scratch}-minio",
        ]  # fmt: skip
    finally:
        run(["kubectl", "delete", "pv", f"{scratch}-minio", "--ignore-not-found", "--wait=false"])
        shutil.rmtree(folder, ignore_errors=True)


def previous_release(folder: Path) -> Path:
    """PREVIOUS_CHART's tree, from this repository's history, unpacked under `folder`, its image
    built and loaded into the cluster as PREVIOUS_IMAGE_TAG; returns its chart."""
    version, commit = PREVIOUS_CHART
    if subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO).returncode:
        # A shallow clone: the history is where it was cloned from.
        run(["git", "-C", str(REPO), "fetch", "--quiet", "--unshallow"])
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit], cwd=REPO, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    chart = folder / "charts/mediaflow"
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["version"] == version
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["version"] != version
    repository = yaml.safe_load((CHART / "values.yaml").read_text())["image"]["repository"]
    env = {
        **os.environ,
        "MEDIAFLOW_IMAGE": f"{repository}:{PREVIOUS_IMAGE_TAG}",
        "BUILD_CONTEXT": str(folder),
    }
    built = subprocess.run(
        ["bash", str(REPO / "hack/image.sh")], env=env, capture_output=True, text=True,
        timeout=900, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return chart


def secret_data(namespace: str, name: str) -> dict[str, str]:
    return json.loads(run(["kubectl", "-n", namespace, "get", "secret", name, "-o", "json"]))[
        "data"
    ]


def bundled_minio(namespace: str) -> Minio:
    """A client of the release's MinIO, through its Service's cluster IP (reachable here)."""
    keys = {k: base64.b64decode(v).decode() for k, v in secret_data(namespace, MINIO).items()}
    ip = run(["kubectl", "-n", namespace, "get", "svc", MINIO, "-o", "jsonpath={.spec.clusterIP}"])
    return Minio(f"{ip}:9000", keys["accessKey"], keys["secretKey"], secure=False)


def convert(namespace: str, name: str, key: str) -> dict:
    """The image-convert sample as `name` in `namespace`, reading `key`; once Succeeded."""
    body = yaml.safe_load((REPO / "manifests/samples/image-convert.yaml").read_text())
    body["metadata"] = {"name": name, "namespace": namespace}
    body["spec"]["input"]["object"]["key"] = key
    run(["kubectl", "apply", "-f", "-"], stdin=yaml.safe_dump(body))
    run(
        ["kubectl", "-n", namespace, "wait", "--for=condition=Succeeded", f"mj/{name}",
         "--timeout=120s"],
        timeout=150,
    )  # fmt: skip
    return json.loads(run(["kubectl", "-n", namespace, "get", "mj", name, "-o", "json"]))


def leftovers(namespace: str) -> list[str]:
    """Objects of ours still in the namespace: not the namespace's own defaults, nor the
    API's users (Secrets labelled mediaflow.io/user) or their webhook signing secrets, which
    are data kept like MediaJobs."""
    names = run(
        ["kubectl", "-n", namespace, "get", WORKLOAD_KINDS, "-o", "name", "-l",
         "mediaflow.io/user!=true"]
    ).split()  # fmt: skip
    defaults = {"configmap/kube-root-ca.crt", "serviceaccount/default"}
    # The users' webhook signing secrets (issue 15): data kept like the users, so that a
    # reinstall signs as before (the operator makes it; the chart's README says to delete it).
    data = {f"secret/{RELEASE}-mediaflow-webhook-keys"}
    return [name for name in names if name not in defaults | data]


def cluster_objects() -> list[str]:
    out = run(
        ["kubectl", "get", "clusterroles,clusterrolebindings", "-o", "name", "-l",
         f"app.kubernetes.io/instance={RELEASE}"]
    )  # fmt: skip
    return out.split()


def test_bundled_release_installs_tests_upgrades_and_uninstalls_cleanly(
    scratch: str, minio_volume: list[str], tmp_path: Path
) -> None:
    # Chart defaults, but for one fact of this cluster: its CoreDNS runs on the host, which the
    # worker policy's DNS podSelector cannot match (make up CLUSTER=current finds the same).
    # Without it workers resolve MinIO's name only until kube-router enforces the policy.
    dns = run(["kubectl", "-n", "kube-system", "get", "endpointslices", "-l",
               "kubernetes.io/service-name=kube-dns", "-o",
               "jsonpath={.items[0].endpoints[0].addresses[0]}"]).strip()  # fmt: skip
    host_dns = f"worker.networkPolicy.dns.ipBlocks={{{dns}/32}}"

    # MinIO on a volume, so that an upgrade that replaced its pod would keep the objects (the
    # check below asserts it is not replaced).
    def install(chart: Path) -> list[str]:
        return ["helm", "upgrade", "--install", RELEASE, str(chart), "-n", scratch, "--wait",
                "--timeout", "4m", "--set", host_dns, *minio_volume]  # fmt: skip

    previous = previous_release(tmp_path / "previous")
    run([*install(previous), "--set", f"image.tag={PREVIOUS_IMAGE_TAG}"], timeout=270)
    assert f"mediaflow-{PREVIOUS_CHART[0]}" in run(["helm", "list", "-n", scratch])
    assert len(cluster_objects()) == 2, "the operator's observe ClusterRole and its binding"
    jwt = secret_data(scratch, f"{RELEASE}-mediaflow-jwt")
    minio = secret_data(scratch, MINIO)

    # The whole flow against the bundled MinIO (the bucket made by the API's init container).
    out = run(["helm", "test", RELEASE, "-n", scratch, "--timeout", "4m"], timeout=270)
    assert "Phase:          Succeeded" in out

    # A MediaJob made with kubectl before an upgrade.
    storage = bundled_minio(scratch)
    key = f"{scratch}/samples/photo.jpg"
    storage.fput_object("mediaflow", key, str(make_photo(tmp_path / "photo.jpg")))
    before = convert(scratch, "before-upgrade", key)

    # The upgrade to this chart replaces the operator pod, keeps the generated signing key and
    # MinIO credentials, and existing MediaJobs keep working: their results stay, a new one runs.
    def pods(component: str) -> str:
        return run(["kubectl", "-n", scratch, "get", "pods", "-o", "name", "-l",
                    f"app.kubernetes.io/component={component}"])  # fmt: skip

    operator_pods = pods("operator")
    upgraded = run([*install(CHART)], timeout=270)
    assert pods("operator") != operator_pods
    # The user `helm test` registered is a Secret in the release namespace, where 0.2.0 kept
    # users: the notes say it cannot sign in until moved, and how to move it.
    assert "1 user(s) of an earlier release are Secrets in" in upgraded, upgraded
    assert f"kubectl apply -n {scratch}-users" in upgraded
    # From now on the MinIO pod outlives upgrades that do not change it: by default its data is
    # in an emptyDir, lost with the pod.
    operator_pods, minio_pods = pods("operator"), pods("minio")
    run([*install(CHART), "--set", "operator.progressIntervalSeconds=4"], timeout=270)
    assert pods("minio") == minio_pods
    assert f"mediaflow-{PREVIOUS_CHART[0]}" not in run(["helm", "list", "-n", scratch])
    assert pods("operator") != operator_pods
    assert secret_data(scratch, f"{RELEASE}-mediaflow-jwt") == jwt
    assert secret_data(scratch, MINIO) == minio
    storage.stat_object("mediaflow", before["status"]["result"]["key"])
    # Every replaced operator pod gone first. The first upgrade scales the 0.2.0 operator's
    # ReplicaSet (one replica, Kopf without leader election) up while it rolls out, and a
    # 0.2.0 pod that gets its SIGTERM while still starting never sees it (PID 1 of its
    # container, no handler yet): it handles MediaJobs until its grace period ends (30 s),
    # beside the new leader. A MediaJob made then got a one-shot Job from it and a warm pod
    # from the leader, and stuck (seen 2026-12-03 in the containerd log: that pod stopped 30 s
    # after the rollout). Operators of this version remember an early SIGTERM (stopping.py).
    wait_until(
        "the replaced operator pod to be gone",
        lambda: not [
            p for p in json.loads(run(["kubectl", "-n", scratch, "get", "pods", "-o", "json", "-l",
                                       "app.kubernetes.io/component=operator"]))["items"]
            if p["metadata"].get("deletionTimestamp")
        ] or None,
        timeout=120,
    )  # fmt: skip
    after = convert(scratch, "after-upgrade", key)
    assert after["status"]["result"]["size"] > 0

    # As the README says: MediaJobs first (their operator deletes their Jobs), then the release.
    run(["kubectl", "-n", scratch, "delete", "mj", "--all", "--timeout=120s"], timeout=150)
    results = list(storage.list_objects("mediaflow", prefix=f"{scratch}/results/", recursive=True))
    assert results == [], "the operator deleted the results of the deleted MediaJobs"
    run(["helm", "uninstall", RELEASE, "-n", scratch, "--wait", "--timeout", "2m"], timeout=150)
    try:
        wait_until(
            f"nothing of {RELEASE} left in {scratch}",
            lambda: not leftovers(scratch) and not cluster_objects(),
            timeout=90,
            interval=2,
        )
    except TimeoutError:
        assert leftovers(scratch) + cluster_objects() == []
    # The CRD stays.
    run(["kubectl", "get", "crd", "mediajobs.mediaflow.io"])
