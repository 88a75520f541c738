"""Renditions against the real cluster, MinIO and worker image: one MediaJob asks for WebP
and AVIF (and PNG, JPEG) at several widths of each input; every rendition's object decodes
with the right format and size, downloads under its own name, and a hostile input fails
once. The API server's CEL rules refuse what the models refuse, with the same words.
(The plan and the tools: tests/unit/worker/test_renditions.py; the operator's decisions:
tests/unit/operator/test_renditions.py.)"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from kubernetes import client

from mediaflow_core import constants as c
from mediaflow_core.naming import EXTENSIONS
from tests.environment import MinioSettings, ScratchNamespace, unique_name
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_mediajob import pods_created, wait_finished
from tests.media import ffprobe, make_photo

pytestmark = pytest.mark.integration

RENDITIONS = [
    {"name": "w320-webp", "format": "webp", "width": 320},
    {"name": "w160-webp", "format": "webp", "width": 160, "quality": 60},
    {"name": "w320-avif", "format": "avif", "width": 320},
    {"name": "w160-avif", "format": "avif", "width": 160},
    {"name": "h60-png", "format": "png", "height": 60},
    {"name": "w9999-jpeg", "format": "jpeg", "width": 9999},
]
# From a 640x480 photo: fitted inside the bounds, never enlarged.
EXPECTED = {
    "w320-webp": ("webp", "image/webp", 320, 240),
    "w160-webp": ("webp", "image/webp", 160, 120),
    "w320-avif": ("av1", "image/avif", 320, 240),
    "w160-avif": ("av1", "image/avif", 160, 120),
    "h60-png": ("png", "image/png", 80, 60),
    "w9999-jpeg": ("mjpeg", "image/jpeg", 640, 480),
}


def create(kube: client.ApiClient, ns: ScratchNamespace, spec: dict) -> str:
    name = unique_name("set")
    body = {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": name},
        "spec": spec,
    }
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        c.GROUP, c.VERSION, ns.name, c.PLURAL, body
    )
    return name


@pytest.fixture
def photo(namespace: ScratchNamespace, minio_settings: MinioSettings, tmp_path: Path) -> str:
    key = f"{namespace.name}/inputs/photo.jpg"
    path = make_photo(tmp_path / "photo.jpg", "640x480")
    minio_settings.client().fput_object(minio_settings.bucket, key, str(path))
    return key


def check_renditions(renditions: list[dict], prefix: str, stem: str, tmp_path: Path) -> None:
    """Every rendition is under `prefix`, downloads as `<stem>-<name>.<ext>` with its type,
    and decodes with the expected codec and size."""
    assert [r["name"] for r in renditions] == [r["name"] for r in RENDITIONS]
    for rendition in renditions:
        codec, content_type, width, height = EXPECTED[rendition["name"]]
        assert rendition["key"] == f"{prefix}renditions/{rendition['name']}"
        assert (rendition["contentType"], rendition["width"], rendition["height"]) == (
            content_type,
            width,
            height,
        )
        path = tmp_path / f"{stem}-{rendition['name']}"
        with urllib.request.urlopen(rendition["url"], timeout=30) as response:  # noqa: S310
            path.write_bytes(response.read())
            disposition = response.headers["Content-Disposition"]
        name = f"{stem}-{rendition['name']}.{EXTENSIONS[content_type]}"
        assert disposition == f'attachment; filename="{name}"'
        assert path.stat().st_size == rendition["size"]
        stream = ffprobe(path)["streams"][0]
        assert (stream["codec_name"], stream["width"], stream["height"]) == (codec, width, height)


def test_one_input_gets_every_rendition_and_the_first_as_its_result(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    photo: str,
    tmp_path: Path,
) -> None:
    name = create(
        kube,
        namespace,
        {
            "operation": "ImageConvert",
            "input": {"object": {"key": photo}},
            "renditions": RENDITIONS,
        },
    )
    mj = wait_finished(kube, namespace.name, name, timeout=120)
    status = mj["status"]
    assert status["phase"] == "Succeeded", (status, operator.tail())
    prefix = f"{namespace.name}/results/{mj['metadata']['uid']}/"
    check_renditions(status["renditions"], prefix, name, tmp_path)
    first = dict(status["renditions"][0])
    first.pop("name")
    assert status["result"] == first
    # Exactly the renditions' objects are under the result prefix.
    stored = minio_settings.client().list_objects(minio_settings.bucket, prefix, recursive=True)
    assert sorted(o.object_name for o in stored) == sorted(r["key"] for r in status["renditions"])


def test_each_of_many_inputs_gets_every_rendition(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    photo: str,
    tmp_path: Path,
) -> None:
    spec = {
        "operation": "ImageConvert",
        "inputs": [{"object": {"key": photo}}, {"object": {"key": photo}}],
        "renditions": RENDITIONS,
    }
    name = create(kube, namespace, spec)
    mj = wait_finished(kube, namespace.name, name, timeout=120)
    status = mj["status"]
    assert status["phase"] == "Succeeded", (status, operator.tail())
    assert status["itemsDone"] == "2/2"
    for item in status["items"]:
        prefix = f"{namespace.name}/results/{mj['metadata']['uid']}/items/{item['index']:03d}/"
        check_renditions(item["renditions"], prefix, f"{name}-{item['index']}", tmp_path)
        assert item["result"]["key"] == item["renditions"][0]["key"]


def test_a_hostile_input_fails_once_with_invalid_input(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    key = f"{namespace.name}/inputs/bomb.png"
    # A PNG whose header claims 60000x60000: refused from the header, before any decode.
    from tests.unit.worker.conftest import png_bomb

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(60000, 60000))
    minio_settings.client().fput_object(minio_settings.bucket, key, str(bomb))
    # Resources of its own: a Job of its own, whose pods can be counted.
    spec = {
        "operation": "ImageConvert",
        "input": {"object": {"key": key}},
        "renditions": RENDITIONS,
        "resources": {"cpu": "500m"},
    }
    name = create(kube, namespace, spec)
    mj = wait_finished(kube, namespace.name, name, timeout=120)
    status = mj["status"]
    assert status["phase"] == "Failed", status
    succeeded = next(x for x in status["conditions"] if x["type"] == "Succeeded")
    assert succeeded["reason"] == "InvalidInput"
    assert "megapixel" in status["message"] or "pixels" in status["message"]
    assert len(pods_created(namespace, status["jobName"])) == 1
    assert "renditions" not in status


@pytest.mark.parametrize(
    ("renditions", "extra", "message"),
    [
        (
            [{"name": "a", "format": "webp"}, {"name": "a", "format": "avif"}],
            {},
            "rendition names must be unique",
        ),
        (
            [{"name": "a", "format": "webp"}],
            {"imageConvert": {"format": "png"}},
            "set at most one of imageConvert and renditions",
        ),
        (None, {}, "operation ImageConvert needs spec.imageConvert or spec.renditions"),
        ([{"name": "A", "format": "webp"}], {}, "should match"),
        ([{"name": f"r{i}", "format": "webp"} for i in range(13)], {}, "must have at most 12"),
        (
            [{"name": f"r{i}", "format": "webp"} for i in range(4)],
            {"input": None, "inputs": [{"object": {"key": "x/y"}}] * 100},
            "inputs times renditions must be at most 300",
        ),
    ],
)
def test_the_api_server_refuses_what_the_models_refuse(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    operator: OperatorProcess,
    renditions: list | None,
    extra: dict,
    message: str,
) -> None:
    spec = {"operation": "ImageConvert", "input": {"object": {"key": "x/y"}}, **extra}
    spec = {k: v for k, v in spec.items() if v is not None}
    if renditions is not None:
        spec["renditions"] = renditions
    with pytest.raises(client.ApiException) as error:
        create(kube, namespace, spec)
    assert error.value.status == 422
    assert message in error.value.body
