"""The operator keeps each MediaJob's `mediaflow.io/phase` label equal to its status.phase
(the API's job list selects by it), against the real cluster, MinIO and worker image."""

from __future__ import annotations

from urllib.parse import urlsplit

from kubernetes import client

from tests.environment import MinioSettings, ScratchNamespace, wait_until
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_mediajob import (
    GROUP,
    PLURAL,
    REPO,
    VERSION,
    TricklingServer,
    apply_sample,
    create_mediajob,
    custom,
    get_mj,
    inputs,  # noqa: F401 - a fixture
    start_slow_mediajob,
    wait_finished,
)

LABEL = "mediaflow.io/phase"


def labelled(kube: client.ApiClient, ns: str, name: str, phase: str) -> dict:
    """Wait for the label to say `phase` (it follows the status write by one request)."""

    def says() -> dict | None:
        mj = get_mj(kube, ns, name)
        return mj if (mj["metadata"].get("labels") or {}).get(LABEL) == phase else None

    return wait_until(f"MediaJob {ns}/{name} labelled {phase}", says, timeout=30)


def missing_input(kube: client.ApiClient, namespace: ScratchNamespace, name: str) -> None:
    spec = {
        "operation": "ImageConvert",
        "input": {"object": {"key": f"{namespace.name}/uploads/nothing-here.png"}},
        "imageConvert": {"format": "png"},
    }
    create_mediajob(kube, namespace, name, spec)


def test_the_phase_label_follows_every_phase(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    inputs: dict,  # noqa: F811 - the fixture imported above
) -> None:
    # Made with kubectl's shape: no labels at all until the operator writes one.
    mj = apply_sample(
        kube, namespace, minio_settings, REPO / "manifests/samples/image-convert.yaml", inputs
    )
    assert LABEL not in (mj["metadata"].get("labels") or {})
    done = wait_finished(kube, namespace.name, mj["metadata"]["name"])
    assert done["status"]["phase"] == "Succeeded", operator.tail()
    done = labelled(kube, namespace.name, mj["metadata"]["name"], "Succeeded")
    # No bookkeeping of Kopf's on the object (the reconciler keeps none).
    assert not [a for a in done["metadata"].get("annotations") or {} if a.startswith("operator.")]

    missing_input(kube, namespace, "missing")  # refused before any Job
    assert wait_finished(kube, namespace.name, "missing", timeout=60)["status"]["phase"] == "Failed"
    labelled(kube, namespace.name, "missing", "Failed")

    server = TricklingServer(urlsplit(minio_settings.internal_endpoint).hostname)
    try:
        start_slow_mediajob(kube, namespace, server, "slow")  # Pending, then Running
        labelled(kube, namespace.name, "slow", "Running")
        custom(kube).patch_namespaced_custom_object(
            GROUP, VERSION, namespace.name, PLURAL, "slow",
            {"metadata": {"annotations": {"mediaflow.io/cancel": "true"}}},
        )  # fmt: skip
        assert wait_finished(kube, namespace.name, "slow", timeout=60)["status"]["phase"] == (
            "Cancelled"
        )
        labelled(kube, namespace.name, "slow", "Cancelled")
    finally:
        server.close()
    # Selectable by phase, which a status field is not.
    selected = custom(kube).list_namespaced_custom_object(
        GROUP, VERSION, namespace.name, PLURAL, label_selector=f"{LABEL} in (Failed,Cancelled)"
    )["items"]
    assert sorted(m["metadata"]["name"] for m in selected) == ["missing", "slow"]


def test_mediajobs_made_before_the_label_get_it_when_the_operator_resumes(
    kube: client.ApiClient, namespace: ScratchNamespace, operator: OperatorProcess
) -> None:
    missing_input(kube, namespace, "older")
    assert wait_finished(kube, namespace.name, "older", timeout=60)["status"]["phase"] == "Failed"
    labelled(kube, namespace.name, "older", "Failed")
    operator.stop()
    try:
        # As an operator before the label left it: handled, finished, no phase label.
        custom(kube).patch_namespaced_custom_object(
            GROUP, VERSION, namespace.name, PLURAL, "older",
            {"metadata": {"labels": {LABEL: None}}},
        )  # fmt: skip
        assert LABEL not in (get_mj(kube, namespace.name, "older")["metadata"].get("labels") or {})
    finally:
        operator.restart()
    labelled(kube, namespace.name, "older", "Failed")
