"""Issue 10, the operator's part, against the real cluster, MinIO and worker image:
`mediaflow.io/delete-input` deletes only the MediaJob's own upload (item 1), presigned URLs
reach the pod only through its Job's Secret (item 7), system namespaces are refused (item
10), and names that cannot be label values are refused at admission (item 12)."""

from __future__ import annotations

import io
import subprocess
import threading
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.utils.quantity import parse_quantity

from tests.environment import MinioSettings, ScratchNamespace, restricted_namespace, wait_until
from tests.integration.conftest import CRD
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_mediajob import (
    GROUP,
    PLURAL,
    VERSION,
    condition,
    custom,
    get_mj,
    job_pods,
    wait_finished,
)
from tests.media import make_photo

ANNOTATIONS = {"mediaflow.io/delete-input": "true"}
SIGNATURE = "X-Amz-Signature"


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_photo(tmp_path_factory.mktemp("photo") / "photo.jpg").read_bytes()


def put(minio: MinioSettings, key: str, data: bytes) -> None:
    minio.client().put_object(minio.bucket, key, io.BytesIO(data), len(data))


def exists(minio: MinioSettings, key: str) -> bool:
    return any(o.object_name == key for o in minio.client().list_objects(minio.bucket, prefix=key))


def mediajob(
    kube: client.ApiClient,
    namespace: str,
    name: str,
    key: str,
    *,
    annotations: dict[str, str] | None = None,
    **spec: object,
) -> dict:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MediaJob",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "operation": "ImageConvert",
            "input": {"object": {"key": key}},
            "imageConvert": {"format": "webp"},
            **spec,
        },
    }
    return custom(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def gone(kube: client.ApiClient, namespace: str, name: str) -> bool:
    try:
        get_mj(kube, namespace, name)
    except ApiException as error:
        return error.status == 404
    return False


def delete_mj(kube: client.ApiClient, namespace: str, name: str) -> None:
    custom(kube).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    wait_until(f"MediaJob {name} to be gone", lambda: gone(kube, namespace, name), timeout=90)


def events(ns: ScratchNamespace, name: str, reason: str) -> list[client.CoreV1Event]:
    found = ns.core.list_namespaced_event(ns.name, field_selector=f"involvedObject.name={name}")
    return [e for e in found.items if e.reason == reason]


def wait_input_kept(ns: ScratchNamespace, name: str, key: str) -> None:
    """The Warning that says the input was kept, and why."""
    expected = (
        f"mediaflow.io/delete-input: kept input {key!r}: only an upload made for this "
        f"MediaJob (under '{ns.name}/uploads/{name}/') may be deleted"
    )

    def warned() -> bool:
        return any(
            e.type == "Warning" and e.message == expected for e in events(ns, name, "InputKept")
        )

    wait_until(f"a Warning InputKept on {name}", warned, timeout=30)


def node_cpu(kube: client.ApiClient) -> float:
    nodes = client.CoreV1Api(kube).list_node().items
    return max(float(parse_quantity(n.status.allocatable["cpu"])) for n in nodes)


def unschedulable(kube: client.ApiClient) -> dict:
    """Resources no node has: the MediaJob stays Pending with its Job and pod made, for as
    long as a test needs (the operator's default limit allows 4 CPUs)."""
    assert node_cpu(kube) < 4, "this test needs a node with fewer than 4 CPUs"
    return {"resources": {"cpu": "4", "memory": "128Mi"}}


def wait_pending_with_job(kube: client.ApiClient, ns: ScratchNamespace, name: str) -> str:
    def pod_made() -> str | None:
        status = get_mj(kube, ns.name, name).get("status") or {}
        return status.get("jobName") if job_pods(ns, name) else None

    return wait_until(f"{name}'s Job and pod", pod_made, timeout=60)


# ------------------------------------------------------------ item 1: delete-input


def test_ttl_expiry_keeps_a_readable_input_the_mediajob_does_not_own(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    photo: bytes,
) -> None:
    """A namespace's shared input, which the MediaJob may read: it converts, expires at once
    (`ttlSecondsAfterFinished: 0`), and the input stays."""
    key = f"{namespace.name}/samples/shared.jpg"
    put(minio_settings, key, photo)
    mediajob(kube, namespace.name, "expires", key, annotations=ANNOTATIONS,
             ttlSecondsAfterFinished=0)  # fmt: skip
    wait_until("the MediaJob to expire", lambda: gone(kube, namespace.name, "expires"), 180)
    assert exists(minio_settings, key), operator.tail()
    wait_input_kept(namespace, "expires", key)


def test_cancel_keeps_another_mediajobs_upload(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    photo: bytes,
) -> None:
    victim = f"{namespace.name}/uploads/{uuid.uuid4()}/input"
    put(minio_settings, victim, photo)
    mediajob(kube, namespace.name, "cancelled", victim, annotations=ANNOTATIONS,
             **unschedulable(kube))  # fmt: skip
    wait_pending_with_job(kube, namespace, "cancelled")
    custom(kube).patch_namespaced_custom_object(
        GROUP, VERSION, namespace.name, PLURAL, "cancelled",
        {"metadata": {"annotations": {"mediaflow.io/cancel": "true"}}},
    )  # fmt: skip
    mj = wait_finished(kube, namespace.name, "cancelled", timeout=60)
    assert mj["status"]["phase"] == "Cancelled"
    wait_until("the cancelled Job to be gone",
               lambda: not job_pods(namespace, "cancelled"), timeout=60)  # fmt: skip
    assert exists(minio_settings, victim)
    wait_input_kept(namespace, "cancelled", victim)


def test_delete_keeps_foreign_inputs_and_deletes_only_its_own_upload(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    photo: bytes,
) -> None:
    """Three MediaJobs with the annotation, deleted: one names another MediaJob's upload (it
    may read it), one a key of another namespace shaped like that namespace's own upload (it
    is refused at once, Failed, yet its finalizer runs), one its own upload."""
    other = f"{namespace.name}/uploads/someone-else/input"
    # Another namespace's key, as its own MediaJob named `foreign` would have it.
    elsewhere = f"{namespace.name}x/uploads/foreign/input"
    own = f"{namespace.name}/uploads/own/input"
    for key in (other, elsewhere, own):
        put(minio_settings, key, photo)
    try:
        mediajob(kube, namespace.name, "reader", other, annotations=ANNOTATIONS)
        mediajob(kube, namespace.name, "foreign", elsewhere, annotations=ANNOTATIONS)
        mediajob(kube, namespace.name, "own", own, annotations=ANNOTATIONS)
        for name in ("reader", "own"):
            assert wait_finished(kube, namespace.name, name)["status"]["phase"] == "Succeeded"
        refused = wait_finished(kube, namespace.name, "foreign", timeout=60)
        assert condition(refused, "Accepted")["reason"] == "InputNotAllowed"
        for name in ("reader", "foreign", "own"):
            delete_mj(kube, namespace.name, name)
        assert exists(minio_settings, other)
        assert exists(minio_settings, elsewhere)
        assert not exists(minio_settings, own), "the MediaJob's own upload was not deleted"
        wait_input_kept(namespace, "reader", other)
        wait_input_kept(namespace, "foreign", elsewhere)
        assert not events(namespace, "own", "InputKept")
    finally:
        for key in (other, elsewhere):
            minio_settings.client().remove_object(minio_settings.bucket, key)


# ------------------------------------------------------------ item 7: the URLs' Secret


def secret_or_none(ns: ScratchNamespace, name: str) -> client.V1Secret | None:
    try:
        return ns.core.read_namespaced_secret(name, ns.name)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def test_presigned_urls_reach_the_pod_only_through_its_jobs_secret(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    photo: bytes,
) -> None:
    key = f"{namespace.name}/samples/waiting.jpg"
    put(minio_settings, key, photo)
    mediajob(kube, namespace.name, "waiting", key, **unschedulable(kube))
    job_name = wait_pending_with_job(kube, namespace, "waiting")
    job = namespace.batch.read_namespaced_job(job_name, namespace.name)
    pod = job_pods(namespace, "waiting")[0]
    # What the `view` role shows (Jobs, pods) carries no URL.
    for shown in (job, pod):
        text = str(client.ApiClient().sanitize_for_serialization(shown))
        assert SIGNATURE not in text
        assert minio_settings.internal_endpoint not in text
    volumes = {v.name: v for v in job.spec.template.spec.volumes}
    assert volumes["urls"].secret.secret_name == job_name
    secret = namespace.core.read_namespaced_secret(job_name, namespace.name)
    assert [(o.kind, o.name, o.uid, o.controller) for o in secret.metadata.owner_references] == [
        ("Job", job_name, job.metadata.uid, True)
    ]
    assert secret.metadata.labels == {
        "app.kubernetes.io/managed-by": "mediaflow-operator",
        "mediaflow.io/mediajob": "waiting",
    }
    assert secret.immutable is True
    assert sorted(secret.data) == ["input-url", "output-url"]
    # Deleting the MediaJob deletes the Job, and the garbage collector its Secret.
    delete_mj(kube, namespace.name, "waiting")
    wait_until("the URLs' Secret to be gone", lambda: secret_or_none(namespace, job_name) is None)


class PodRecorder:
    """Every pod of a namespace as last seen, by a watch from before the MediaJob exists:
    a finished MediaJob's Job and pod are deleted at once, the test reads them here."""

    def __init__(self, ns: ScratchNamespace) -> None:
        self.pods: dict[str, client.V1Pod] = {}
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(ns,), daemon=True)
        self._thread.start()

    def _run(self, ns: ScratchNamespace) -> None:
        try:
            for event in self._watch.stream(ns.core.list_namespaced_pod, ns.name,
                                            timeout_seconds=300):  # fmt: skip
                self.pods[event["object"].metadata.name] = event["object"]
        except Exception:  # stopped while reading: what it saw is kept
            return

    def stop(self) -> None:
        self._watch.stop()


def test_a_conversion_reads_its_urls_from_the_secret_which_goes_with_its_job(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    photo: bytes,
) -> None:
    key = f"{namespace.name}/samples/converted.jpg"
    put(minio_settings, key, photo)
    recorder = PodRecorder(namespace)
    try:
        mediajob(kube, namespace.name, "converted", key)
        mj = wait_finished(kube, namespace.name, "converted")
    finally:
        recorder.stop()
    assert mj["status"]["phase"] == "Succeeded", (mj["status"], operator.tail())
    with urllib.request.urlopen(mj["status"]["result"]["url"], timeout=30) as response:  # noqa: S310
        assert response.read(12)[8:12] == b"WEBP"
    job_name = mj["status"]["jobName"]
    (pod,) = [p for p in recorder.pods.values() if p.metadata.labels.get("job-name") == job_name]
    assert [(v.name, v.secret.secret_name) for v in pod.spec.volumes if v.secret] == [
        ("urls", job_name)
    ]
    assert SIGNATURE not in str(client.ApiClient().sanitize_for_serialization(pod))
    # No pod needs the URLs any more: the Job goes once the result is recorded, and its
    # Secret (owned by it) with it.
    wait_until("the finished Job's Secret to be deleted",
               lambda: secret_or_none(namespace, job_name) is None, timeout=30)  # fmt: skip


# ------------------------------------------------------------ item 10: excluded namespaces


@pytest.fixture
def excluded_namespace(kube: client.ApiClient, operator: OperatorProcess) -> Iterator[str]:
    """A scratch namespace the test operator excludes as it excludes kube-system."""
    for scratch in restricted_namespace(kube, "mf-test"):
        saved = dict(operator.extra_env)
        operator.extra_env["MEDIAFLOW_EXCLUDED_NAMESPACES"] = (
            f"kube-system,kube-public,kube-node-lease,{scratch.name}"
        )
        operator.restart()
        try:
            yield scratch.name
        finally:
            operator.extra_env.clear()
            operator.extra_env.update(saved)
            operator.restart()


def test_mediajobs_of_an_excluded_namespace_are_refused_without_a_job(
    kube: client.ApiClient, excluded_namespace: str, minio_settings: MinioSettings, photo: bytes
) -> None:
    key = f"{excluded_namespace}/samples/photo.jpg"
    put(minio_settings, key, photo)
    mediajob(kube, excluded_namespace, "system", key)
    mj = wait_finished(kube, excluded_namespace, "system", timeout=60)
    assert mj["status"]["phase"] == "Failed"
    accepted = condition(mj, "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "NamespaceNotServed")
    assert accepted["message"] == (
        f"MediaJobs in namespace {excluded_namespace!r} are not run: the operator excludes "
        f"kube-system, kube-public, kube-node-lease, {excluded_namespace} "
        "(MEDIAFLOW_EXCLUDED_NAMESPACES)"
    )
    batch = client.BatchV1Api(kube)
    assert batch.list_namespaced_job(excluded_namespace).items == []
    secrets = client.CoreV1Api(kube).list_namespaced_secret(
        excluded_namespace, label_selector="app.kubernetes.io/managed-by=mediaflow-operator"
    )
    assert secrets.items == []


# ------------------------------------------------------------ item 12: names


def test_a_name_over_63_characters_is_refused_at_admission(
    kube: client.ApiClient, namespace: ScratchNamespace
) -> None:
    # The CRD is cluster-wide: make sure it is this tree's (another checkout may have
    # applied its own since the session started).
    subprocess.run(
        ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(CRD)],
        check=True,
        capture_output=True,
    )
    name = "n" * 64
    with pytest.raises(ApiException) as error:
        mediajob(kube, namespace.name, name, f"{namespace.name}/samples/photo.jpg")
    assert error.value.status == 422
    assert (
        "metadata.name must be at most 63 characters: it is the value of the label "
        "mediaflow.io/mediajob on the MediaJob's Job and pods" in error.value.body
    )
    # 63 is fine.
    mediajob(kube, namespace.name, "n" * 63, f"{namespace.name}/samples/none.jpg")
    assert get_mj(kube, namespace.name, "n" * 63)


def test_a_secret_planted_under_the_jobs_secret_name_is_never_used(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    photo: bytes,
) -> None:
    """Someone who may create Secrets plants one named like the Job's Secret, with URLs of
    their own. The operator never writes this MediaJob's URLs into it, deletes the Job (a
    pod started meanwhile would only fetch and write where the planter said, nothing of this
    MediaJob's) and fails the MediaJob (SecretConflict); the planted Secret is left alone.
    (Its own resources give it a Job of its own: a warm pod's Secret has a random name.)"""
    key = f"{namespace.name}/samples/planted.jpg"
    put(minio_settings, key, photo)
    operator.stop()  # so that the Secret can be planted between the MediaJob and its Job
    try:
        own = {"resources": {"cpu": "500m"}}
        uid = mediajob(kube, namespace.name, "planted", key, **own)["metadata"]["uid"]
        planted = f"planted-{uid.replace('-', '')[:8]}"
        namespace.core.create_namespaced_secret(
            namespace.name,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=planted),
                string_data={"input-url": "http://attacker/in", "output-url": "http://a/out"},
            ),
        )
    finally:
        operator.restart()
    mj = wait_finished(kube, namespace.name, "planted", timeout=60)
    assert mj["status"]["phase"] == "Failed"
    accepted = condition(mj, "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "SecretConflict")
    assert accepted["message"] == (
        f"Secret {planted}, the name of this MediaJob's Job's Secret, exists and does not "
        "belong to its Job; the Job was deleted"
    )
    wait_until("the Job to be gone",
               lambda: not namespace.batch.list_namespaced_job(namespace.name).items)  # fmt: skip
    assert namespace.core.read_namespaced_secret(planted, namespace.name).metadata.uid
