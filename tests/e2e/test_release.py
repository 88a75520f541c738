"""The release `make up` installed: API and operator as pods, used the ways users use them."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.conftest import NAMESPACE, RELEASE, REPO, run
from tests.environment import MinioSettings, unique_name
from tests.media import ffprobe, make_photo

SAMPLE = REPO / "manifests/samples/image-convert.yaml"


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_photo(tmp_path_factory.mktemp("e2e") / "photo.jpg")


def download(url: str, path: Path) -> Path:
    """Fetch a presigned URL as a user on this machine would."""
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, f"{url}: HTTP {response.status_code} {response.text[:300]}"
    path.write_bytes(response.content)
    return path


def test_operator_and_api_run_as_pods_of_the_release(release: str) -> None:
    pods = yaml.safe_load(
        run(
            [
                "kubectl",
                "-n",
                release,
                "get",
                "pods",
                "-l",
                f"app.kubernetes.io/instance={RELEASE}",
                "-o",
                "yaml",
            ]
        )
    )["items"]
    components = {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in pods}
    assert {"operator", "api"} <= components
    for pod in pods:
        if pod["status"]["phase"] != "Running":
            continue
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert all(c["securityContext"]["readOnlyRootFilesystem"] for c in spec["containers"])


def test_upload_job_download_through_the_api_service(
    release: str, api_url: str, photo: Path, tmp_path: Path
) -> None:
    with httpx.Client(base_url=api_url, timeout=60) as api:
        email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
        registered = api.post(
            "/api/v1/auth/register", json={"email": email, "password": uuid.uuid4().hex}
        )
        assert registered.status_code == 201, registered.text
        token = registered.json()["data"]["tokens"]["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"

        with photo.open("rb") as file:
            upload = api.post(
                "/api/v1/image/convert/webp", files={"file": ("photo.jpg", file, "image/jpeg")}
            )
        assert upload.status_code == 202, upload.text
        job_id = upload.json()["data"]["job_id"]

        deadline = time.monotonic() + 180
        while True:
            job = api.get(f"/api/v1/jobs/{job_id}").json()["data"]
            if job["status"] in {"completed", "failed", "cancelled"}:
                break
            assert time.monotonic() < deadline, f"job still {job['status']}"
            time.sleep(1)
        assert job["status"] == "completed", job

        # The MediaJob lives in the release namespace and was handled by the release's operator.
        mediajobs = yaml.safe_load(run(["kubectl", "-n", release, "get", "mj", "-o", "yaml"]))
        assert any((m.get("status") or {}).get("phase") == "Succeeded" for m in mediajobs["items"])
        stream = ffprobe(download(job["result_url"], tmp_path / "result.webp"))["streams"][0]
        assert stream["codec_name"] == "webp"
        assert (stream["width"], stream["height"]) == (320, 240)
        assert api.delete(f"/api/v1/jobs/{job_id}").status_code in {200, 204}


def test_a_batch_through_the_release_and_one_files_delete(
    release: str, api_url: str, photo: Path, tmp_path: Path
) -> None:
    """A batch request is one MediaJob of the release; deleting one file's job is a patch of
    it, which the API's Role allows; the other file completes."""
    with httpx.Client(base_url=api_url, timeout=60) as api:
        email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
        registered = api.post(
            "/api/v1/auth/register", json={"email": email, "password": uuid.uuid4().hex}
        )
        assert registered.status_code == 201, registered.text
        token = registered.json()["data"]["tokens"]["access_token"]
        api.headers["Authorization"] = f"Bearer {token}"
        data = photo.read_bytes()
        files = [("files", (name, data, "image/jpeg")) for name in ("kept.jpg", "dropped.jpg")]
        upload = api.post("/api/v1/image/batch/convert/webp", files=files)
        assert upload.status_code == 202, upload.text
        kept, dropped = (job["job_id"] for job in upload.json()["data"]["jobs"])
        assert api.delete(f"/api/v1/jobs/{dropped}").status_code == 204
        assert api.get(f"/api/v1/jobs/{dropped}").status_code == 404
        deadline = time.monotonic() + 180
        while (job := api.get(f"/api/v1/jobs/{kept}").json()["data"])["status"] in {
            "pending",
            "processing",
        }:
            assert time.monotonic() < deadline, f"job still {job['status']}"
            time.sleep(0.5)
        assert job["status"] == "completed", job
        stream = ffprobe(download(job["result_url"], tmp_path / "kept.webp"))["streams"][0]
        assert stream["codec_name"] == "webp"
        assert api.delete(f"/api/v1/jobs/{kept}").status_code == 204


def test_kubectl_apply_sample_wait_and_download(
    release: str, minio_settings: MinioSettings, photo: Path, tmp_path: Path
) -> None:
    # The sample, moved into the release namespace: MediaJobs read only under <namespace>/.
    body = yaml.safe_load(SAMPLE.read_text())
    name = unique_name("e2e-sample")
    body["metadata"] = {"name": name, "namespace": release}
    key = f"{release}/samples/{name}/photo.jpg"
    body["spec"]["input"]["object"]["key"] = key
    minio_settings.client().fput_object(minio_settings.bucket, key, str(photo))
    try:
        run(["kubectl", "apply", "-f", "-"], stdin=yaml.safe_dump(body))
        run(
            [
                "kubectl",
                "-n",
                release,
                "wait",
                "--for=condition=Succeeded",
                f"mj/{name}",
                "--timeout=180s",
            ],
            timeout=200,
        )
        url = run(
            ["kubectl", "-n", release, "get", "mj", name, "-o", "jsonpath={.status.result.url}"]
        )
        stream = ffprobe(download(url, tmp_path / "sample.webp"))["streams"][0]
        assert stream["codec_name"] == "webp"
        table = run(["kubectl", "-n", release, "get", "mj", name])
        assert "Succeeded" in table
    finally:
        run(["kubectl", "-n", release, "delete", "mj", name, "--ignore-not-found", "--timeout=60s"])
        minio_settings.client().remove_object(minio_settings.bucket, key)


def test_helm_test_passes(release: str) -> None:
    out = run(["helm", "test", RELEASE, "-n", NAMESPACE, "--timeout", "5m"], timeout=330)
    assert "Phase:          Succeeded" in out
