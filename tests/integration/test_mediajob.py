"""MediaJobs against the real cluster, MinIO and worker image, with the operator running."""

from __future__ import annotations

import http.server
import io
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client

from mediaflow_core.mediajob import MediaJobSpec
from mediaflow_core.naming import EXTENSIONS, MediaJobRef
from mediaflow_operator.builders import build_job
from mediaflow_operator.config import OperatorSettings
from tests.environment import MinioSettings, ScratchNamespace, unique_name, wait_until
from tests.integration.operator_process import OperatorProcess
from tests.media import ffprobe, make_clip, make_photo

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "manifests/samples").glob("*.yaml"))
GROUP, VERSION, PLURAL = "mediaflow.io", "v1alpha1", "mediajobs"

# What each sample's result must be (inputs: a 320x240 photo, a 2 s 320x240 clip).
EXPECTED = {
    "image-convert": {"codec": "webp", "width": 320, "height": 240},
    # result: the first rendition (w320-webp); every rendition: tests/integration/test_renditions.py
    "image-renditions": {"codec": "webp", "width": 320, "height": 240},
    "image-resize": {"codec": "png", "width": 160, "height": 120},
    "video-convert": {"codec": "vp9", "width": 320, "height": 240, "container": "matroska"},
    "video-rotate": {"codec": "h264", "width": 240, "height": 320},
    "video-resize": {"codec": "h264", "width": 160, "height": 120},
    "video-trim": {"codec": "h264", "duration": (0.9, 1.2)},
    "video-thumbnail": {"codec": "png", "width": 320, "height": 240},
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    return {
        "photo.jpg": make_photo(folder / "photo.jpg"),
        "clip.mp4": make_clip(folder / "clip.mp4"),
    }


def custom(kube: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube)


def apply_sample(
    kube: client.ApiClient,
    ns: ScratchNamespace,
    minio: MinioSettings,
    path: Path,
    inputs: dict,
    **spec_changes: object,
) -> dict:
    """Create a sample in the scratch namespace, its input uploaded under that namespace."""
    body = yaml.safe_load(path.read_text())
    body["spec"].update(spec_changes)
    body["metadata"]["namespace"] = ns.name
    source = body["spec"]["input"]["object"]
    filename = source["key"].rsplit("/", 1)[-1]
    source["key"] = f"{ns.name}/samples/{filename}"
    minio.client().fput_object(minio.bucket, source["key"], str(inputs[filename]))
    return custom(kube).create_namespaced_custom_object(GROUP, VERSION, ns.name, PLURAL, body)


def create_mediajob(kube: client.ApiClient, ns: ScratchNamespace, name: str, spec: dict) -> dict:
    """Create a MediaJob in the scratch namespace."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MediaJob",
        "metadata": {"name": name},
        "spec": spec,
    }
    return custom(kube).create_namespaced_custom_object(GROUP, VERSION, ns.name, PLURAL, body)


def wait_running(kube: client.ApiClient, ns: str, name: str) -> dict:
    def running() -> dict | None:
        mj = get_mj(kube, ns, name)
        return mj if (mj.get("status") or {}).get("phase") == "Running" else None

    return wait_until(f"MediaJob {ns}/{name} to run", running, timeout=120)


def get_mj(kube: client.ApiClient, ns: str, name: str) -> dict:
    return custom(kube).get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)


def wait_finished(kube: client.ApiClient, ns: str, name: str, timeout: float = 300) -> dict:
    def finished() -> dict | None:
        mj = get_mj(kube, ns, name)
        phase = (mj.get("status") or {}).get("phase")
        return mj if phase in {"Succeeded", "Failed", "Cancelled"} else None

    return wait_until(f"MediaJob {ns}/{name} to finish", finished, timeout=timeout)


def condition(mj: dict, type_: str) -> dict:
    return next(c for c in mj["status"]["conditions"] if c["type"] == type_)


def job_pods(ns: ScratchNamespace, name: str) -> list:
    return ns.core.list_namespaced_pod(
        ns.name, label_selector=f"mediaflow.io/mediajob={name}"
    ).items


def pods_created(ns: ScratchNamespace, job_name: str) -> list[str]:
    """The pods a Job's controller made, from its Events: they outlive the Job and its pods,
    which go once the MediaJob's result is recorded."""
    events = ns.core.list_namespaced_event(
        ns.name, field_selector=f"involvedObject.kind=Job,involvedObject.name={job_name}"
    ).items
    return sorted({e.message for e in events if e.reason == "SuccessfulCreate"})


def gone(ns: ScratchNamespace, name: str) -> bool:
    """Nothing of a finished MediaJob's Job is left: the Job, its pods, its Secret."""
    selector = f"mediaflow.io/mediajob={name}"
    return not (
        ns.batch.list_namespaced_job(ns.name, label_selector=selector).items
        or job_pods(ns, name)
        or ns.core.list_namespaced_secret(ns.name, label_selector=selector).items
    )


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_sample_succeeds_and_its_url_downloads_the_requested_media(
    sample: Path,
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    inputs: dict,
    tmp_path: Path,
) -> None:
    mj = apply_sample(kube, namespace, minio_settings, sample, inputs)
    name = mj["metadata"]["name"]
    # The way a user waits for it.
    subprocess.run(
        [
            "kubectl",
            "wait",
            "-n",
            namespace.name,
            "--for=condition=Succeeded",
            f"mj/{name}",
            "--timeout=300s",
        ],
        check=False,
        capture_output=True,
    )
    mj = wait_finished(kube, namespace.name, name)
    status = mj["status"]
    assert status["phase"] == "Succeeded", (status, operator.tail())
    assert condition(mj, "Succeeded")["status"] == "True"
    assert condition(mj, "Accepted")["observedGeneration"] == mj["metadata"]["generation"]
    result = status["result"]
    assert result["key"].startswith(f"{namespace.name}/results/{mj['metadata']['uid']}/")
    # The URL is signed for the public endpoint: it downloads from this machine as is.
    assert result["url"].startswith(minio_settings.endpoint)
    output = tmp_path / "result"
    with urllib.request.urlopen(result["url"], timeout=30) as response:  # noqa: S310
        output.write_bytes(response.read())
        disposition = response.headers["Content-Disposition"]
    assert output.stat().st_size == result["size"]
    # Saved under the MediaJob's name (and a rendition's, with renditions) with the extension
    # of what it really is.
    extension = EXTENSIONS[result["contentType"]]
    stem = f"{name}-{status['renditions'][0]['name']}" if "renditions" in status else name
    assert disposition == f'attachment; filename="{stem}.{extension}"'
    probe = ffprobe(output)
    expected = EXPECTED[sample.stem]
    stream = probe["streams"][0]
    assert stream["codec_name"] == expected["codec"], probe
    if "width" in expected:
        assert (stream["width"], stream["height"]) == (expected["width"], expected["height"])
        assert (result.get("width"), result.get("height")) == (
            expected["width"],
            expected["height"],
        )
    if "container" in expected:
        assert expected["container"] in probe["format"]["format_name"]
    if "duration" in expected:
        low, high = expected["duration"]
        assert low <= float(probe["format"]["duration"]) <= high, probe["format"]
    # One pod, no retries; and once the result is recorded, the Job, its pod and its
    # Secret go: the status holds what users need.
    assert len(pods_created(namespace, status["jobName"])) == 1
    wait_until("the finished MediaJob's Job, pod and Secret to go",
               lambda: gone(namespace, name), timeout=60)  # fmt: skip


def test_kubectl_get_shows_the_columns(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    inputs: dict,
) -> None:
    mj = apply_sample(
        kube, namespace, minio_settings, REPO / "manifests/samples/image-convert.yaml", inputs
    )
    wait_finished(kube, namespace.name, mj["metadata"]["name"])
    table = subprocess.run(
        ["kubectl", "get", "mj", "-n", namespace.name], check=True, capture_output=True, text=True
    ).stdout
    header, row = table.splitlines()[:2]
    assert header.split() == ["NAME", "OPERATION", "PHASE", "PROGRESS", "ITEMS", "DURATION", "AGE"]
    assert row.split()[:4] == ["image-convert", "ImageConvert", "Succeeded", "100"]


def hostile_job(
    kube: client.ApiClient, ns: ScratchNamespace, minio: MinioSettings, data: bytes, filename: str
) -> dict:
    key = f"{ns.name}/uploads/{filename}"
    minio.client().put_object(minio.bucket, key, io.BytesIO(data), len(data))
    return create_mediajob(
        kube,
        ns,
        unique_name("hostile"),
        {
            "operation": "VideoConvert",
            "input": {"object": {"key": key}},
            "videoConvert": {"container": "mp4"},
        },
    )


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("notes.mp4", b"just some text, not a video\n" * 10),
        (
            "playlist.mp4",
            b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
        ),
    ],
    ids=["text", "hls-playlist"],
)
def test_hostile_input_fails_once_with_a_clear_reason(
    filename: str,
    data: bytes,
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
) -> None:
    mj = hostile_job(kube, namespace, minio_settings, data, filename)
    name = mj["metadata"]["name"]
    mj = wait_finished(kube, namespace.name, name)
    assert mj["status"]["phase"] == "Failed"
    assert condition(mj, "Succeeded")["reason"] == "InvalidInput"
    assert mj["status"]["message"]
    # The pod's final exit code settles it at once: no retries.
    wait_until("the Job controller's events", lambda: pods_created(namespace,
               mj["status"]["jobName"]), timeout=30)  # fmt: skip
    assert len(pods_created(namespace, mj["status"]["jobName"])) == 1

    def warned() -> bool:
        events = namespace.core.list_namespaced_event(
            namespace.name, field_selector=f"involvedObject.name={name}"
        ).items
        return any(e.reason == "InvalidInput" and e.type == "Warning" for e in events)

    wait_until("a Warning event saying InvalidInput", warned, timeout=30)


def test_input_outside_the_namespace_is_refused_without_a_job(
    kube: client.ApiClient, namespace: ScratchNamespace, operator: OperatorProcess
) -> None:
    create_mediajob(
        kube,
        namespace,
        "sneaky",
        {
            "operation": "ImageConvert",
            "input": {"object": {"key": "someone-else/secret.png"}},
            "imageConvert": {"format": "png"},
        },
    )
    mj = wait_finished(kube, namespace.name, "sneaky", timeout=60)
    assert mj["status"]["phase"] == "Failed"
    assert condition(mj, "Accepted") == {**condition(mj, "Accepted"), "status": "False"}
    assert condition(mj, "Accepted")["reason"] == "InputNotAllowed"
    assert namespace.batch.list_namespaced_job(namespace.name).items == []


def test_deleting_a_mediajob_leaves_nothing_behind(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    inputs: dict,
) -> None:
    mj = apply_sample(
        kube, namespace, minio_settings, REPO / "manifests/samples/image-resize.yaml", inputs
    )
    name, uid = mj["metadata"]["name"], mj["metadata"]["uid"]
    wait_finished(kube, namespace.name, name)
    prefix = f"{namespace.name}/results/{uid}/"
    host = minio_settings.client()
    assert list(host.list_objects(minio_settings.bucket, prefix=prefix, recursive=True))
    custom(kube).delete_namespaced_custom_object(GROUP, VERSION, namespace.name, PLURAL, name)
    wait_until(
        "the MediaJob, its Job and its pods to be gone",
        lambda: (
            not custom(kube).list_namespaced_custom_object(GROUP, VERSION, namespace.name, PLURAL)[
                "items"
            ]
            and not namespace.batch.list_namespaced_job(namespace.name).items
            and not job_pods(namespace, name)
        ),
        timeout=90,
    )
    assert not list(host.list_objects(minio_settings.bucket, prefix=prefix, recursive=True))


def test_a_job_left_by_an_operator_that_died_is_adopted_and_given_its_secret(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    inputs: dict,
) -> None:
    """What an operator that died right after creating the Job leaves: the MediaJob without
    a status, its Job, no Secret of URLs (the pod waits for it). The next operator adopts
    the Job (exactly one), makes the Secret, and the conversion succeeds."""
    operator.stop()
    try:
        mj = apply_sample(
            kube, namespace, minio_settings, REPO / "manifests/samples/image-convert.yaml", inputs
        )
        name = mj["metadata"]["name"]
        spec = MediaJobSpec.model_validate(mj["spec"])
        settings = OperatorSettings()  # what the test operator reads: .local/env
        size = (
            minio_settings.client().stat_object(minio_settings.bucket, spec.input.object.key).size
        )
        job = build_job(MediaJobRef.from_body(mj), spec, settings, input_size=size)
        namespace.batch.create_namespaced_job(namespace.name, job)
        assert not url_secrets(namespace)
    finally:
        operator.restart()
    mj = wait_finished(kube, namespace.name, name)
    assert mj["status"]["phase"] == "Succeeded", (mj["status"], operator.tail())
    assert mj["status"]["jobName"] == job["metadata"]["name"]
    assert len(pods_created(namespace, job["metadata"]["name"])) == 1
    # Adopted, not made again: the operator's log says so, and nothing is left behind.
    assert "exists; adopting it" in operator.tail(2000)
    wait_until("the Job, its pod and its Secret to go", lambda: gone(namespace, name),
               timeout=60)  # fmt: skip


def url_secrets(namespace: ScratchNamespace) -> list:
    return namespace.core.list_namespaced_secret(
        namespace.name, label_selector="app.kubernetes.io/managed-by=mediaflow-operator"
    ).items


def test_finished_mediajob_expires_after_its_ttl(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    inputs: dict,
) -> None:
    path = REPO / "manifests/samples/image-convert.yaml"
    mj = apply_sample(kube, namespace, minio_settings, path, inputs, ttlSecondsAfterFinished=1)
    uid = mj["metadata"]["uid"]
    wait_until(
        "the MediaJob to expire",
        lambda: (
            not custom(kube).list_namespaced_custom_object(GROUP, VERSION, namespace.name, PLURAL)[
                "items"
            ]
        ),
        timeout=120,
    )
    prefix = f"{namespace.name}/results/{uid}/"
    assert not list(
        minio_settings.client().list_objects(minio_settings.bucket, prefix=prefix, recursive=True)
    )


class TricklingServer:
    """An HTTP server on the pods' side of the bridge whose body arrives a little at a time,
    so that a worker stays busy downloading until the test is done with it."""

    def __init__(self, host: str) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(10 * 1024 * 1024))
                self.end_headers()
                try:
                    for _ in range(600):
                        self.wfile.write(b"\0" * 1024)
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/slow.mp4"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_slow_mediajob(
    kube: client.ApiClient, namespace: ScratchNamespace, server: TricklingServer, name: str
) -> dict:
    """A MediaJob that stays Running: its input trickles in from the server."""
    spec = {
        "operation": "VideoConvert",
        "input": {"url": server.url},
        "videoConvert": {"container": "mp4"},
    }
    create_mediajob(kube, namespace, name, spec)
    return wait_running(kube, namespace.name, name)


def test_a_running_mediajob_can_be_cancelled(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
) -> None:
    node_ip = urlsplit(minio_settings.internal_endpoint).hostname
    server = TricklingServer(node_ip)
    try:
        start_slow_mediajob(kube, namespace, server, "to-cancel")
        custom(kube).patch_namespaced_custom_object(
            GROUP, VERSION, namespace.name, PLURAL, "to-cancel",
            {"metadata": {"annotations": {"mediaflow.io/cancel": "true"}}},
        )  # fmt: skip
        mj = wait_finished(kube, namespace.name, "to-cancel", timeout=60)
        assert mj["status"]["phase"] == "Cancelled"
        assert condition(mj, "Succeeded")["reason"] == "Cancelled"
        wait_until(
            "the Job and its pod to be gone",
            lambda: (
                not namespace.batch.list_namespaced_job(namespace.name).items
                and not job_pods(namespace, "to-cancel")
            ),
            timeout=90,
        )
        prefix = f"{namespace.name}/results/{mj['metadata']['uid']}/"
        host = minio_settings.client()
        assert not list(host.list_objects(minio_settings.bucket, prefix=prefix, recursive=True))
        # Cancelled is final: the MediaJob stays Cancelled.
        time.sleep(4)
        assert get_mj(kube, namespace.name, "to-cancel")["status"]["phase"] == "Cancelled"
    finally:
        server.close()


def test_video_progress_reaches_status_while_running(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    clip = make_clip(tmp_path / "long.mp4", size="640x360", seconds=30)
    key = f"{namespace.name}/uploads/long.mp4"
    minio_settings.client().fput_object(minio_settings.bucket, key, str(clip))
    create_mediajob(
        kube,
        namespace,
        "long",
        {
            "operation": "VideoConvert",
            "input": {"object": {"key": key}},
            "videoConvert": {"container": "mp4", "codec": "h264", "preset": "veryslow"},
        },
    )
    seen: set[int] = set()

    def watch() -> bool:
        status = get_mj(kube, namespace.name, "long").get("status") or {}
        if status.get("phase") == "Running" and status.get("progress") is not None:
            seen.add(status["progress"])
        return status.get("phase") in {"Succeeded", "Failed"}

    wait_until("the long conversion to finish", watch, timeout=600, interval=0.5)
    mj = get_mj(kube, namespace.name, "long")
    assert mj["status"]["phase"] == "Succeeded", mj["status"]
    assert mj["status"]["progress"] == 100
    assert any(0 < p < 100 for p in seen), f"no intermediate progress seen: {sorted(seen)}"


def test_missing_input_object_fails_with_input_not_found_and_no_job(
    kube: client.ApiClient, namespace: ScratchNamespace, operator: OperatorProcess
) -> None:
    create_mediajob(
        kube,
        namespace,
        "missing",
        {
            "operation": "ImageConvert",
            "input": {"object": {"key": f"{namespace.name}/uploads/nothing-here.png"}},
            "imageConvert": {"format": "png"},
        },
    )
    mj = wait_finished(kube, namespace.name, "missing", timeout=60)
    assert mj["status"]["phase"] == "Failed"
    assert condition(mj, "Succeeded")["reason"] == "InputNotFound"
    assert "nothing-here.png" in mj["status"]["message"]
    assert namespace.batch.list_namespaced_job(namespace.name).items == []


def test_a_mediajob_whose_job_is_deleted_by_hand_ends_failed(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
) -> None:
    server = TricklingServer(urlsplit(minio_settings.internal_endpoint).hostname)
    try:
        start_slow_mediajob(kube, namespace, server, "orphan")
        job = get_mj(kube, namespace.name, "orphan")["status"]["jobName"]
        namespace.batch.delete_namespaced_job(job, namespace.name, propagation_policy="Background")
        mj = wait_finished(kube, namespace.name, "orphan", timeout=60)
        assert mj["status"]["phase"] == "Failed"
        assert condition(mj, "Succeeded")["reason"] == "JobDeleted"
    finally:
        server.close()
