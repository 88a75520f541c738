"""Presets against the real stack (issue 15): a MediaJob naming a MediaPreset or a
ClusterMediaPreset runs with its options; a preset edited right after the MediaJob was
accepted changes nothing of its result; a missing preset fails it with PresetNotFound and an
Event; the API's `preset=` upload and GET /api/v1/presets. (Pure decisions:
tests/unit/operator/test_presets.py, tests/unit/api/test_presets.py.)"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.environment import MinioSettings, ScratchNamespace, unique_name, wait_until
from tests.integration.api_process import ApiProcess
from tests.integration.test_api_jobs import User, cleanup  # noqa: F401 - fixture
from tests.integration.test_api_uploads import post, wait_completed
from tests.integration.test_mediajob import condition, create_mediajob, get_mj, wait_finished
from tests.media import ffprobe, make_clip, make_photo

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "mediaflow.io", "v1alpha1"
# The MediaJob CRD again too: on a cluster shared with other branches, another session may
# have applied one without spec.preset since the operator fixture applied this tree's.
PRESET_CRDS = [REPO / "crds/mediajobs.yaml", REPO / "crds/mediapresets.yaml",
               REPO / "crds/clustermediapresets.yaml"]  # fmt: skip


@pytest.fixture(scope="module")
def preset_crds(operator: object) -> None:
    """The preset CRDs (and the MediaJob's) from crds/."""
    for crd in PRESET_CRDS:
        subprocess.run(
            ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(crd)],
            check=True,
            capture_output=True,
        )
    for name in ("mediapresets.mediaflow.io", "clustermediapresets.mediaflow.io"):
        subprocess.run(
            ["kubectl", "wait", "--for=condition=Established", f"crd/{name}"],
            check=True,
            capture_output=True,
        )


@pytest.fixture
def cluster_presets(kube: client.ApiClient) -> Iterator[list[str]]:
    """Names of ClusterMediaPresets a test makes: deleted afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        try:
            custom(kube).delete_cluster_custom_object(GROUP, VERSION, "clustermediapresets", name)
        except ApiException as error:
            if error.status != 404:
                raise


def custom(kube: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube)


def put_preset(
    kube: client.ApiClient, kind: str, name: str, spec: dict[str, Any], namespace: str | None
) -> dict[str, Any]:
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name},
            "spec": spec}  # fmt: skip
    if namespace is None:
        return custom(kube).create_cluster_custom_object(
            GROUP, VERSION, "clustermediapresets", body
        )
    return custom(kube).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "mediapresets", body
    )


def upload(minio: MinioSettings, ns: str, path: Path) -> dict[str, Any]:
    key = f"{ns}/samples/{path.name}"
    minio.client().fput_object(minio.bucket, key, str(path))
    return {"object": {"key": key}}


def download(result: dict[str, Any], path: Path) -> dict[str, Any]:
    response = httpx.get(result["url"], timeout=60)
    assert response.status_code == 200
    path.write_bytes(response.content)
    return ffprobe(path)


def test_a_mediajob_naming_a_preset_runs_with_its_options(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    preset_crds: None,
    tmp_path: Path,
) -> None:
    renditions = [
        {"name": "w160-webp", "format": "webp", "width": 160},
        {"name": "w80-avif", "format": "avif", "width": 80, "quality": 50},
    ]
    put_preset(kube, "MediaPreset", "thumbs", {"operation": "ImageConvert",
               "renditions": renditions}, namespace.name)  # fmt: skip
    source = upload(minio_settings, namespace.name, make_photo(tmp_path / "photo.jpg"))
    create_mediajob(kube, namespace, "thumbs", {"operation": "ImageConvert", "input": source,
                                                "preset": {"name": "thumbs"}})  # fmt: skip
    mj = wait_finished(kube, namespace.name, "thumbs")
    status = mj["status"]
    assert status["phase"] == "Succeeded", status
    assert status["preset"]["kind"] == "MediaPreset"
    assert status["preset"]["namespace"] == namespace.name
    assert status["resolved"]["renditions"][1]["format"] == "avif"
    made = {r["name"]: r for r in status["renditions"]}
    assert set(made) == {"w160-webp", "w80-avif"}
    webp = download(made["w160-webp"], tmp_path / "a.webp")["streams"][0]
    avif = download(made["w80-avif"], tmp_path / "a.avif")["streams"][0]
    assert (webp["codec_name"], webp["width"], webp["height"]) == ("webp", 160, 120)
    assert (avif["width"], avif["height"]) == (80, 60)


def test_a_preset_edited_after_acceptance_does_not_change_the_result(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    preset_crds: None,
    cluster_presets: list[str],
    tmp_path: Path,
) -> None:
    name = unique_name("mf-test-h264")
    cluster_presets.append(name)
    old = {"operation": "VideoConvert", "videoConvert": {"container": "mp4", "codec": "h264",
                                                          "preset": "ultrafast"}}  # fmt: skip
    created = put_preset(kube, "ClusterMediaPreset", name, old, None)
    source = upload(minio_settings, namespace.name, make_clip(tmp_path / "clip.mp4"))
    create_mediajob(kube, namespace, "clip", {"operation": "VideoConvert", "input": source,
                    "preset": {"kind": "ClusterMediaPreset", "name": name}})  # fmt: skip

    def accepted() -> dict | None:
        mj = get_mj(kube, namespace.name, "clip")
        conditions = (mj.get("status") or {}).get("conditions") or []
        return mj if any(c["type"] == "Accepted" for c in conditions) else None

    mj = wait_until("the MediaJob to be accepted", accepted, timeout=60, interval=0.2)
    assert condition(mj, "Accepted")["status"] == "True", mj["status"]
    # Right after Accepted: the preset now says VP9 in WebM, smaller.
    created["spec"] = {"operation": "VideoConvert", "videoConvert": {"container": "webm",
                                                                      "codec": "vp9"}}  # fmt: skip
    edited = custom(kube).replace_cluster_custom_object(
        GROUP, VERSION, "clustermediapresets", name, created
    )
    phase_at_edit = get_mj(kube, namespace.name, "clip")["status"]["phase"]
    assert phase_at_edit in ("Pending", "Running"), "the edit came too late to prove anything"
    mj = wait_finished(kube, namespace.name, "clip")
    status = mj["status"]
    assert status["phase"] == "Succeeded", status
    assert status["preset"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert status["preset"]["resourceVersion"] != edited["metadata"]["resourceVersion"]
    assert status["resolved"]["videoConvert"]["container"] == "mp4"
    probe = download(status["result"], tmp_path / "out")
    assert probe["streams"][0]["codec_name"] == "h264"
    assert "mp4" in probe["format"]["format_name"]


def test_a_missing_preset_fails_with_its_reason_and_an_event(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    preset_crds: None,
    tmp_path: Path,
) -> None:
    source = upload(minio_settings, namespace.name, make_photo(tmp_path / "photo.jpg"))
    create_mediajob(kube, namespace, "nothing", {"operation": "ImageConvert", "input": source,
                                                 "preset": {"name": "no-such"}})  # fmt: skip
    mj = wait_finished(kube, namespace.name, "nothing", timeout=60)
    accepted = condition(mj, "Accepted")
    assert (mj["status"]["phase"], accepted["status"], accepted["reason"]) == (
        "Failed",
        "False",
        "PresetNotFound",
    )
    assert accepted["message"] == f"MediaPreset {namespace.name}/no-such not found"

    def event() -> list:
        events = namespace.core.list_namespaced_event(
            namespace.name, field_selector="involvedObject.name=nothing"
        ).items
        return [e for e in events if e.reason == "PresetNotFound" and e.type == "Warning"]

    wait_until("the PresetNotFound Event", event, timeout=30)
    assert namespace.batch.list_namespaced_job(namespace.name).items == []


@pytest.fixture(scope="module")
def erin(auth_api: ApiProcess, cleanup: None) -> User:  # noqa: F811 - the fixture
    return User(auth_api)


def test_an_upload_naming_a_preset_and_the_list_of_presets(
    kube: client.ApiClient,
    api_namespace: str,
    erin: User,
    preset_crds: None,
    tmp_path: Path,
) -> None:
    name = unique_name("small-webp")
    put_preset(kube, "MediaPreset", name, {"operation": "ImageConvert", "description": "tiny",
               "imageConvert": {"format": "webp", "quality": 20}}, api_namespace)  # fmt: skip
    listed = httpx.get(f"{erin.api.url}/api/v1/presets", headers=erin.headers, timeout=30)
    assert listed.status_code == 200, listed.text
    mine = next(p for p in listed.json()["data"]["items"] if p["name"] == name)
    assert (mine["kind"], mine["operation"], mine["description"]) == (
        "MediaPreset",
        "ImageConvert",
        "tiny",
    )
    assert mine["options"]["imageConvert"]["quality"] == 20
    assert "/image/convert/webp" in mine["endpoints"]
    assert httpx.get(f"{erin.api.url}/api/v1/presets", timeout=30).status_code == 401

    photo = make_photo(tmp_path / "photo.jpg")
    with photo.open("rb") as stream:
        refused = post(erin, "/image/convert/avif", data={"preset": name},
                       files={"file": (photo.name, stream)})  # fmt: skip
    assert refused.status_code == 422, refused.text
    assert f"preset {name!r} converts to webp; /image/convert/avif converts to avif" in (
        refused.text
    )
    with photo.open("rb") as stream:
        missing = post(erin, "/image/convert/webp", data={"preset": "no-such-preset"},
                       files={"file": (photo.name, stream)})  # fmt: skip
    assert missing.status_code == 422
    assert "no preset named 'no-such-preset'" in missing.text

    with photo.open("rb") as stream:
        response = post(erin, "/image/convert/webp", data={"preset": name},
                        files={"file": (photo.name, stream)})  # fmt: skip
    assert response.status_code == 202, response.text
    job_id = response.json()["data"]["job_id"]
    job = wait_completed(erin, job_id)
    mj = custom(kube).get_namespaced_custom_object(
        GROUP, VERSION, api_namespace, "mediajobs", job_id
    )
    assert mj["spec"]["preset"] == {"name": name, "kind": "MediaPreset"}
    assert "imageConvert" not in mj["spec"]
    assert mj["status"]["resolved"]["imageConvert"]["quality"] == 20
    result = httpx.get(job["result_url"], timeout=60)
    assert result.headers["content-type"] == "image/webp"
