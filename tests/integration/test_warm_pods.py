"""Warm pods against the real cluster, MinIO and worker image: one owner's photos share one
sandboxed pod fed through its mailbox; owners never share; a broken photo fails alone; an
idle warm pod ends and leaves nothing behind. (The decisions: tests/unit/operator/
test_warm.py; the worker's loop: tests/unit/worker/test_session.py.)"""

from __future__ import annotations

import io
import subprocess
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client

from mediaflow_core import constants as c
from mediaflow_core.naming import cancel_item_annotation, upload_item_key
from mediaflow_core.session import session_prefix
from tests.environment import MinioSettings, ScratchNamespace, unique_name, wait_until
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_mediajob import condition, pods_created, wait_finished
from tests.media import ffprobe, make_photo

pytestmark = pytest.mark.integration


def photo_spec(key: str, **options: object) -> dict:
    return {
        "operation": "ImageConvert",
        "input": {"object": {"key": key}},
        "imageConvert": {"format": "webp", **options},
    }


@pytest.fixture
def photo(namespace: ScratchNamespace, minio_settings: MinioSettings, tmp_path: Path) -> str:
    key = f"{namespace.name}/inputs/photo.jpg"
    path = make_photo(tmp_path / "photo.jpg")
    minio_settings.client().fput_object(minio_settings.bucket, key, str(path))
    return key


def create(kube: client.ApiClient, ns: ScratchNamespace, spec: dict, owner: str = "") -> str:
    name = unique_name("warm")
    body = {
        "apiVersion": f"{c.GROUP}/{c.VERSION}",
        "kind": c.KIND,
        "metadata": {"name": name, "labels": {c.LABEL_OWNER: owner} if owner else {}},
        "spec": spec,
    }
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        c.GROUP, c.VERSION, ns.name, c.PLURAL, body
    )
    return name


def warm_job_gone(ns: ScratchNamespace, minio: MinioSettings, job: str) -> bool:
    jobs = ns.batch.list_namespaced_job(ns.name, label_selector=f"{c.LABEL_SESSION}={job}")
    pods = ns.core.list_namespaced_pod(ns.name, label_selector=f"{c.LABEL_SESSION}={job}")
    mailbox = list(
        minio.client().list_objects(
            minio.bucket, prefix=session_prefix(ns.name, job), recursive=True
        )
    )
    return not (jobs.items or pods.items or mailbox)


def test_one_owners_photos_share_one_warm_pod_that_ends_when_idle(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    photo: str,
    tmp_path: Path,
) -> None:
    first = create(kube, namespace, photo_spec(photo))
    first_done = wait_finished(kube, namespace.name, first, timeout=120)
    # The next ones arrive while the pod is warm: no new pod for them.
    later = [create(kube, namespace, photo_spec(photo, quality=q)) for q in (50, 70)]
    done = [first_done] + [wait_finished(kube, namespace.name, n, timeout=120) for n in later]
    for mj in done:
        assert mj["status"]["phase"] == "Succeeded", (mj["status"], operator.tail())
        assert condition(mj, "Accepted")["reason"] == "WarmPod"
    jobs = {mj["status"]["jobName"] for mj in done}
    assert len(jobs) == 1, jobs
    job = jobs.pop()
    assert sorted(mj["status"]["sessionSlot"] for mj in done) == [0, 1, 2]
    assert len(pods_created(namespace, job)) == 1  # one pod served all three
    # Every result is real WebP of the photo's size, at its own URL.
    for n, mj in enumerate(done):
        result = mj["status"]["result"]
        assert result["key"] == f"{namespace.name}/results/{mj['metadata']['uid']}/output"
        out = tmp_path / f"result{n}.webp"
        with urllib.request.urlopen(result["url"], timeout=30) as response:  # noqa: S310
            out.write_bytes(response.read())
        stream = ffprobe(out)["streams"][0]
        assert stream["codec_name"] == "webp"
        assert (stream["width"], stream["height"]) == (result["width"], result["height"])
    assert done[1]["status"]["result"]["size"] != done[2]["status"]["result"]["size"]
    # Idle (10 s in the tests' operator), the pod ends; its Job, pod and mailbox go.
    wait_until("the idle warm pod to end and leave nothing", lambda: warm_job_gone(
        namespace, minio_settings, job), timeout=120)  # fmt: skip


def test_owners_never_share_a_warm_pod_and_a_broken_photo_fails_alone(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    photo: str,
) -> None:
    broken = f"{namespace.name}/inputs/broken.jpg"
    data = b"\xff\xd8\xff\xe0" + b"\0" * 200  # a JPEG's first bytes, then nothing of one

    minio_settings.client().put_object(minio_settings.bucket, broken, io.BytesIO(data), len(data))
    alice = [
        create(kube, namespace, photo_spec(photo), owner="alice"),
        create(kube, namespace, photo_spec(broken), owner="alice"),
        create(kube, namespace, photo_spec(photo), owner="alice"),
    ]
    bob = create(kube, namespace, photo_spec(photo), owner="bob")
    done = [wait_finished(kube, namespace.name, n, timeout=120) for n in alice]
    bobs = wait_finished(kube, namespace.name, bob, timeout=120)
    assert [mj["status"]["phase"] for mj in done] == ["Succeeded", "Failed", "Succeeded"]
    assert condition(done[1], "Succeeded")["reason"] == "InvalidInput"
    assert done[1]["status"]["message"]
    assert len({mj["status"]["jobName"] for mj in done}) == 1  # the pod stayed warm
    assert bobs["status"]["phase"] == "Succeeded"
    assert bobs["status"]["jobName"] != done[0]["status"]["jobName"]
    # Each warm pod's Job says whose it is.
    for mj, owner in ((done[0], "alice"), (bobs, "bob")):
        job = namespace.batch.read_namespaced_job(mj["status"]["jobName"], namespace.name)
        assert job.metadata.labels[c.LABEL_OWNER] == owner
        spec = job.spec.template.spec
        assert spec.automount_service_account_token is False
        assert spec.containers[0].security_context.read_only_root_filesystem is True


def test_a_mediajob_with_its_own_resources_gets_a_pod_of_its_own(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    operator: OperatorProcess,
    photo: str,
) -> None:
    name = create(kube, namespace, {**photo_spec(photo), "resources": {"cpu": "250m"}})
    mj = wait_finished(kube, namespace.name, name, timeout=120)
    assert mj["status"]["phase"] == "Succeeded"
    assert "sessionSlot" not in mj["status"]
    assert condition(mj, "Accepted")["reason"] == "JobCreated"


def test_a_mediajob_of_many_photos_converts_each_in_one_pod_and_a_broken_one_fails_alone(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    photo: str,
    tmp_path: Path,
) -> None:
    broken = f"{namespace.name}/inputs/broken.png"
    data = b"\x89PNG\r\n\x1a\n" + b"\0" * 100
    minio_settings.client().put_object(minio_settings.bucket, broken, io.BytesIO(data), len(data))
    keys = [photo, broken, photo, f"{namespace.name}/inputs/missing.jpg", photo]
    spec = {
        "operation": "ImageResize",
        "inputs": [{"object": {"key": k}} for k in keys],
        "imageResize": {"width": 100, "format": "webp"},
    }
    name = create(kube, namespace, spec)
    mj = wait_finished(kube, namespace.name, name, timeout=120)
    status = mj["status"]
    assert status["phase"] == "Succeeded", (status, operator.tail())
    assert condition(mj, "Succeeded")["reason"] == "SomeItemsFailed"
    assert status["itemsDone"] == "5/5"
    items = status["items"]
    assert [i["phase"] for i in items] == [
        "Succeeded",
        "Failed",
        "Succeeded",
        "Failed",
        "Succeeded",
    ]
    assert (items[1]["reason"], items[3]["reason"]) == ("InvalidInput", "InputNotFound")
    assert len({i["jobName"] for i in items if i["phase"] == "Succeeded"}) == 1
    assert len(pods_created(namespace, items[0]["jobName"])) == 1
    for n in (0, 2, 4):
        result = items[n]["result"]
        assert result["key"] == (
            f"{namespace.name}/results/{mj['metadata']['uid']}/items/{n:03d}/output"
        )
        out = tmp_path / f"item{n}.webp"
        with urllib.request.urlopen(result["url"], timeout=30) as response:  # noqa: S310
            out.write_bytes(response.read())
        stream = ffprobe(out)["streams"][0]
        assert (stream["codec_name"], stream["width"]) == ("webp", 100)
    # kubectl get shows the items done of all.
    table = subprocess.run(
        ["kubectl", "get", "mj", name, "-n", namespace.name], check=True, capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    header, row = table.splitlines()[:2]
    assert header.split()[:5] == ["NAME", "OPERATION", "PHASE", "PROGRESS", "ITEMS"]
    assert row.split()[1:5] == ["ImageResize", "Succeeded", "100", "5/5"]
    # Deleting it deletes every item's result.
    client.CustomObjectsApi(kube).delete_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace.name, c.PLURAL, name
    )
    prefix = f"{namespace.name}/results/{mj['metadata']['uid']}/"
    wait_until("every item's result to go", lambda: not list(
        minio_settings.client().list_objects(minio_settings.bucket, prefix=prefix, recursive=True)
    ), timeout=60)  # fmt: skip


def test_the_api_server_refuses_inputs_with_a_video_operation_or_with_input(
    kube: client.ApiClient, namespace: ScratchNamespace, operator: OperatorProcess
) -> None:
    one = {"object": {"key": f"{namespace.name}/inputs/a.mp4"}}
    video = {"operation": "VideoThumbnail", "inputs": [one],
             "videoThumbnail": {"timestamp": "00:00:01"}}  # fmt: skip
    both = {"operation": "ImageConvert", "input": one, "inputs": [one],
            "imageConvert": {"format": "webp"}}  # fmt: skip
    for spec, message in (
        (video, "inputs is for image operations"),
        (both, "set exactly one of input and inputs"),
    ):
        with pytest.raises(client.ApiException) as refused:
            create(kube, namespace, spec)
        assert refused.value.status == 422
        assert message in refused.value.body


def test_one_input_of_a_batch_is_cancelled_alone_and_its_files_go_while_the_others_succeed(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    """A MediaJob like the API's for a batch request (each file its own upload under the
    MediaJob's upload prefix, delete-input): input 4 cancelled as it is created (before it
    is placed, or just after), input 1 once queued in the warm pod (which has yet to start),
    input 3 after the MediaJob finished."""
    minio, bucket = minio_settings.client(), minio_settings.bucket
    name = unique_name("batch")
    path = make_photo(tmp_path / "photo.jpg")
    keys = [upload_item_key(namespace.name, name, f"job-{n}") for n in range(5)]
    for key in keys:
        minio.fput_object(bucket, key, str(path))
    body = {
        "apiVersion": f"{c.GROUP}/{c.VERSION}",
        "kind": c.KIND,
        "metadata": {"name": name, "annotations": {c.ANNOTATION_DELETE_INPUT: "true"}},
        "spec": {
            "operation": "ImageConvert",
            "inputs": [{"object": {"key": k}} for k in keys],
            "imageConvert": {"format": "webp"},
        },
    }
    custom = client.CustomObjectsApi(kube)
    custom.create_namespaced_custom_object(c.GROUP, c.VERSION, namespace.name, c.PLURAL, body)

    def get() -> dict:
        return custom.get_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace.name, c.PLURAL, name
        )

    def cancel(index: int) -> None:  # as kubectl annotate (and the API) does it
        patch = {"metadata": {"annotations": {cancel_item_annotation(index): "true"}}}
        custom.patch_namespaced_custom_object(
            c.GROUP, c.VERSION, namespace.name, c.PLURAL, name, patch
        )

    def stored(prefix: str) -> list[str]:
        return [o.object_name for o in minio.list_objects(bucket, prefix=prefix, recursive=True)]

    cancel(4)
    queued = wait_until("the inputs to be queued", lambda: (
        (get().get("status") or {}).get("items")
    ), timeout=20)  # fmt: skip
    assert (queued[1]["phase"], queued[1]["jobName"]) == ("Pending", queued[0]["jobName"])
    cancel(1)
    mj = wait_finished(kube, namespace.name, name, timeout=60)
    uid = mj["metadata"]["uid"]
    results = f"{namespace.name}/results/{uid}/"
    status = mj["status"]
    assert status["phase"] == "Succeeded", (status, operator.tail())
    assert condition(mj, "Succeeded")["reason"] == "Completed"
    phases = ["Succeeded", "Cancelled", "Succeeded", "Succeeded", "Cancelled"]
    assert [i["phase"] for i in status["items"]] == phases
    assert status["items"][1]["jobName"] == queued[1]["jobName"]  # placed, then cancelled
    for n in (1, 4):
        assert status["items"][n]["reason"] == "Cancelled"
        assert "result" not in status["items"][n]
    assert status["itemsDone"] == "5/5"
    assert status["message"] == "3 of 5 items succeeded; 2 cancelled"
    # Their inputs and any result are gone (a result the pod made anyway goes when its log
    # reports it); the others' stay.
    wait_until("the cancelled inputs' files to go", lambda: not any(
        stored(f"{results}items/{n:03d}/") or stored(keys[n]) for n in (1, 4)
    ), timeout=20)  # fmt: skip
    for n in (0, 2, 3):
        assert stored(keys[n]) == [keys[n]]
        assert stored(f"{results}items/{n:03d}/") == [status["items"][n]["result"]["key"]]

    # After the MediaJob finished: input 3's result and upload go, it says Cancelled, the
    # MediaJob stays Succeeded.
    cancel(3)
    mj = wait_until("input 3 to say Cancelled", lambda: (
        (found := get())["status"]["items"][3]["phase"] == "Cancelled" and found
    ), timeout=20)  # fmt: skip
    assert mj["status"]["phase"] == "Succeeded"
    assert mj["status"]["message"] == "2 of 5 items succeeded; 3 cancelled"
    assert not stored(f"{results}items/003/")
    assert not stored(keys[3])
    for n in (0, 2):
        result = mj["status"]["items"][n]["result"]
        with urllib.request.urlopen(result["url"], timeout=30) as response:  # noqa: S310
            (tmp_path / f"item{n}.webp").write_bytes(response.read())
        assert ffprobe(tmp_path / f"item{n}.webp")["streams"][0]["codec_name"] == "webp"
        assert stored(keys[n]) == [keys[n]]
    events = namespace.core.list_namespaced_event(
        namespace.name, field_selector=f"involvedObject.name={name}"
    ).items
    cancelled = sorted(e.message.split(" ")[1] for e in events if e.reason == "ItemCancelled")
    assert cancelled == ["1", "3", "4"]

    # Deleting the MediaJob deletes the rest.
    custom.delete_namespaced_custom_object(c.GROUP, c.VERSION, namespace.name, c.PLURAL, name)
    wait_until("every result and upload to go", lambda: not (
        stored(results) or stored(f"{namespace.name}/uploads/{name}/")
    ), timeout=20)  # fmt: skip
