"""The upload endpoints against the real API process, cluster, operator, worker and MinIO.

Every endpoint is used the way the previous service's clients use it (multipart form, its
field names); each job must complete and its result URL must download a file of the right
format and size. Bad requests must get the right 4xx and leave no object and no MediaJob.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import magic
import pytest
from kubernetes import client

from tests.environment import MinioSettings, restricted_namespace, wait_until
from tests.integration.api_process import ApiProcess
from tests.integration.test_api_jobs import PASSWORD, User, cleanup, problem  # noqa: F401 - fixture
from tests.integration.test_mediajob import GROUP, PLURAL, VERSION, custom
from tests.media import ffprobe, make_clip, make_photo

pytestmark = pytest.mark.integration

# endpoint, form fields, file kind, then what the result must be:
# (MIME type, width, height) with None for "not checked".
CASES: dict[str, tuple[str, dict[str, str], str, tuple[str, int | None, int | None]]] = {
    "webp": ("/image/convert/webp", {"quality": "70"}, "photo", ("image/webp", 320, 240)),
    "webp-lossless": (
        "/image/convert/webp",
        {"lossless": "true"},
        "photo",
        ("image/webp", 320, 240),
    ),
    "avif": ("/image/convert/avif", {}, "photo", ("image/avif", 320, 240)),
    "format-png": (
        "/image/convert/format",
        {"output_format": "png"},
        "photo",
        ("image/png", 320, 240),
    ),
    "format-tif": (
        "/image/convert/format",
        {"output_format": "TIF"},
        "photo",
        ("image/tiff", 320, 240),
    ),
    "resize-cover": (
        "/image/resize",
        {"width": "100", "height": "100"},
        "photo",
        ("image/jpeg", 100, 100),
    ),
    "video-webm": (
        "/video/convert",
        {"output_format": "webm", "crf": "40", "preset": "ultrafast"},
        "clip",
        ("video/webm", 320, 240),
    ),
    "video-libx264": (
        "/video/convert",
        {"output_format": "mp4", "codec": "libx264", "preset": "ultrafast"},
        "clip",
        ("video/mp4", 320, 240),
    ),
    "rotate": ("/video/rotate", {"degrees": "90"}, "clip", ("video/mp4", 240, 320)),
    "video-resize": ("/video/resize", {"width": "160"}, "clip", ("video/mp4", 160, 120)),
    "trim": (
        "/video/trim",
        {"start_time": "00:00:00.500", "end_time": "00:00:01.500"},
        "clip",
        ("video/mp4", 320, 240),
    ),
    # The previous service's defaults: a WebP of the frame at 00:00:01.
    "thumbnail": ("/video/thumbnail", {}, "clip", ("image/webp", 320, 240)),
    "thumbnail-png": ("/video/thumbnail", {"format": "png"}, "clip", ("image/png", 320, 240)),
}
BATCHES: dict[str, tuple[str, dict[str, str], tuple[str, int, int]]] = {
    "batch-webp": ("/image/batch/convert/webp", {"quality": "60"}, ("image/webp", 320, 240)),
    "batch-avif": ("/image/batch/convert/avif", {"quality": "40"}, ("image/avif", 320, 240)),
    "batch-format": (
        "/image/batch/convert/format",
        {"output_format": "bmp"},
        ("image/bmp", 320, 240),
    ),
}


def post(user: User, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{user.api.url}/api/v1{path}", headers=user.headers, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("uploads")
    return {
        "photo": make_photo(folder / "holiday photo.jpg"),
        "clip": make_clip(folder / "clip.mov"),
        "text": _write(folder / "notes.jpg", b"just some text and not a picture\n" * 50),
    }


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def carol(auth_api: ApiProcess, cleanup: None) -> User:  # noqa: F811 - the fixture
    """A user who registered, then logged in the way the previous service's clients do
    (an OAuth2 password form), and uploads with that access token."""
    user = User(auth_api)
    response = httpx.post(
        f"{auth_api.url}/api/v1/auth/login",
        data={"username": user.email, "password": PASSWORD},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"  # noqa: S105 - the OAuth2 token type
    user.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return user


@pytest.fixture(scope="module")
def submitted(carol: User, media: dict[str, Path]) -> dict[str, str]:
    """Every endpoint's job id, all submitted first so that the cluster runs them together."""
    jobs = {}
    for name, (path, fields, kind, _) in CASES.items():
        source = media[kind]
        with source.open("rb") as stream:
            response = post(carol, path, data=fields, files={"file": (source.name, stream)})
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["success"] is True
        assert body["data"]["status"] == "pending"
        assert response.headers["location"] == f"/api/v1/jobs/{body['data']['job_id']}"
        jobs[name] = body["data"]["job_id"]
    for name, (path, fields, _) in BATCHES.items():
        photo = media["photo"].read_bytes()
        files = [("files", ("one.jpg", photo)), ("files", ("two.jpg", photo))]
        response = post(carol, path, data=fields, files=files)
        assert response.status_code == 202, response.text
        data = response.json()["data"]
        assert data["total"] == 2
        assert [(j["filename"], j["status"]) for j in data["jobs"]] == [
            ("one.jpg", "pending"),
            ("two.jpg", "pending"),
        ]
        for index, job in enumerate(data["jobs"]):
            jobs[f"{name}-{index}"] = job["job_id"]
    return jobs


def wait_completed(user: User, job_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        job = user.get(f"/{job_id}").json()["data"]
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    job = wait_until(f"job {job_id} to finish", finished, timeout=300, interval=1)
    assert job["status"] == "completed", job
    return job


def check_result(
    job: dict[str, Any], expected: tuple[str, int | None, int | None], tmp: Path
) -> None:
    response = httpx.get(job["result_url"], timeout=60)
    assert response.status_code == 200
    content_type, width, height = expected
    assert response.headers["content-type"] == content_type
    result = tmp / "result"
    result.write_bytes(response.content)
    sniffed = magic.from_buffer(response.content[:65536], mime=True)
    assert sniffed.split("/")[0] == content_type.split("/")[0], sniffed
    stream = ffprobe(result)["streams"][0]
    assert (stream["width"], stream["height"]) == (width, height)


@pytest.mark.parametrize("name", list(CASES))
def test_every_endpoint_completes_with_the_right_result(
    carol: User, submitted: dict[str, str], name: str, tmp_path: Path
) -> None:
    job = wait_completed(carol, submitted[name])
    assert job["progress"] == 100
    check_result(job, CASES[name][3], tmp_path)
    if name == "trim":
        result = tmp_path / "result"
        assert abs(float(ffprobe(result)["format"]["duration"]) - 1.0) < 0.15
    if name == "thumbnail":  # the whole WebP decodes, as previous clients' viewers need
        decoded = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(tmp_path / "result"), "-f", "null", "-"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (decoded.returncode, decoded.stderr) == (0, "")


@pytest.mark.parametrize("name", list(BATCHES))
def test_batch_endpoints_make_one_job_per_file(
    carol: User, submitted: dict[str, str], name: str, tmp_path: Path
) -> None:
    for index in range(2):
        job = wait_completed(carol, submitted[f"{name}-{index}"])
        check_result(job, BATCHES[name][2], tmp_path)


def test_jobs_carry_the_previous_services_job_types(carol: User, submitted: dict[str, str]) -> None:
    types = {
        name: carol.get(f"/{job_id}").json()["data"]["job_type"]
        for name, job_id in submitted.items()
    }
    assert types["webp"] == types["batch-webp-0"] == "image_convert_webp"
    assert types["avif"] == "image_convert_avif"
    assert types["format-png"] == types["batch-format-1"] == "image_convert_format"
    assert types["resize-cover"] == "image_resize"
    assert types["thumbnail"] == "video_thumbnail"
    listed = carol.get("", job_type="image_convert_avif", page_size=100).json()["data"]
    assert listed["total"] == 3  # avif + two batch-avif


def test_a_batch_is_one_mediajob_whose_files_keep_their_own_jobs(
    auth_api: ApiProcess,
    api_namespace: str,
    cleanup: None,  # noqa: F811 - the fixture (with the operator, which it needs)
    kube: client.ApiClient,
    minio_settings: MinioSettings,
    media: dict[str, Path],
    tmp_path: Path,
) -> None:
    """One MediaJob for the request; each file its own job: status, result named after it,
    error, list entry, filters, and a delete of that file alone (its files go, the others
    go on); the last file's delete deletes the MediaJob."""
    user = User(auth_api)
    photo = media["photo"].read_bytes()
    broken = b"\xff\xd8\xff\xe0" + b"\0" * 200  # a JPEG's first bytes, then nothing of one
    names = ["good.jpg", "broken.jpg", "second.jpg", "dropped.jpg"]
    files = [("files", (n, broken if n == "broken.jpg" else photo)) for n in names]
    response = post(user, "/image/batch/convert/webp", data={"quality": "70"}, files=files)
    assert response.status_code == 202, response.text
    ids = {job["filename"]: job["job_id"] for job in response.json()["data"]["jobs"]}
    namespace = api_namespace
    (mediajob,) = custom(kube).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, label_selector=f"mediaflow.io/owner={user.id}"
    )["items"]
    name = mediajob["metadata"]["name"]
    assert name.startswith("batch-")
    assert len(mediajob["spec"]["inputs"]) == 4
    # One file's job deleted at once: gone for its owner, its upload deleted.
    dropped = mediajob["spec"]["inputs"][3]["object"]["key"]
    assert ids["dropped.jpg"] in dropped
    assert user.delete(f"/{ids['dropped.jpg']}").status_code == 204
    assert user.get(f"/{ids['dropped.jpg']}").status_code == 404
    assert user.delete(f"/{ids['dropped.jpg']}").status_code == 404
    good = wait_completed(user, ids["good.jpg"])
    check_result(good, ("image/webp", 320, 240), tmp_path)
    download = httpx.get(good["result_url"], timeout=30)
    assert 'filename="good.webp"' in download.headers["content-disposition"]
    second = wait_completed(user, ids["second.jpg"])
    assert second["result_url"] != good["result_url"]

    def failed() -> dict[str, Any] | None:
        job = user.get(f"/{ids['broken.jpg']}").json()["data"]
        return job if job["status"] == "failed" else None

    assert wait_until("the broken file's job to fail", failed, timeout=120, interval=0.5)["error"]
    listed = user.get("", page_size=10).json()["data"]
    assert listed["total"] == 3
    assert {job["id"] for job in listed["items"]} == {
        ids["good.jpg"], ids["broken.jpg"], ids["second.jpg"],
    }  # fmt: skip
    completed = user.get("", status="completed").json()["data"]
    assert {job["id"] for job in completed["items"]} == {ids["good.jpg"], ids["second.jpg"]}
    assert [job["id"] for job in user.get("", status="failed").json()["data"]["items"]] == [
        ids["broken.jpg"]
    ]
    assert user.get("", status="processing").json()["data"]["total"] == 0
    mc = minio_settings.client()

    def stored(key: str) -> bool:
        return any(mc.list_objects(minio_settings.bucket, prefix=key))

    wait_until("the dropped file's upload to go", lambda: not stored(dropped), timeout=30)
    result_prefix = f"{namespace}/results/{mediajob['metadata']['uid']}/"
    assert not stored(f"{result_prefix}items/003/")
    assert stored(f"{result_prefix}items/000/")
    # The others' deletes: the last one deletes the MediaJob, and with it every file.
    for filename in ("good.jpg", "broken.jpg", "second.jpg"):
        assert user.delete(f"/{ids[filename]}").status_code == 204
        assert user.get(f"/{ids[filename]}").status_code == 404
    assert user.get("").json()["data"]["total"] == 0

    def mediajob_gone() -> bool:
        found = custom(kube).list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, field_selector=f"metadata.name={name}"
        )["items"]
        return not found

    wait_until("the batch's MediaJob to go", mediajob_gone, timeout=60)
    assert not stored(result_prefix)
    assert not stored(f"{namespace}/uploads/{name}/")


# --- bad requests: the right 4xx, and nothing left behind -------------------------------


class Leftovers:
    """What an upload request left: objects under the namespace's uploads/, MediaJobs."""

    def __init__(self, kube: client.ApiClient, namespace: str, minio: MinioSettings) -> None:
        self.kube, self.namespace, self.minio = kube, namespace, minio
        self.before = self.snapshot()

    def snapshot(self) -> tuple[set[str], set[str], set[str]]:
        mc = self.minio.client()
        prefix = f"{self.namespace}/uploads/"
        objects = {
            o.object_name for o in mc.list_objects(self.minio.bucket, prefix, recursive=True)
        }
        # Incomplete multipart uploads too (MinIO's client has no public call for them).
        uploads = mc._list_multipart_uploads(self.minio.bucket, prefix=prefix)
        pending = {u.object_name for u in uploads.uploads}
        mediajobs = {
            mj["metadata"]["name"]
            for mj in custom(self.kube).list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL
            )["items"]
        }
        return objects, pending, mediajobs

    def new(self) -> tuple[set[str], set[str], set[str]]:
        now = self.snapshot()
        return tuple(after - before for after, before in zip(now, self.before, strict=True))  # type: ignore[return-value]


@pytest.fixture
def leftovers(
    kube: client.ApiClient, api_namespace: str, minio_settings: MinioSettings
) -> Iterator[Leftovers]:
    tracker = Leftovers(kube, api_namespace, minio_settings)
    yield tracker
    assert tracker.new() == (set(), set(), set())


@pytest.fixture(scope="module")
def dave(auth_api: ApiProcess) -> User:
    return User(auth_api)


def test_a_text_file_named_jpg_is_refused(
    dave: User, media: dict[str, Path], leftovers: Leftovers
) -> None:
    with media["text"].open("rb") as stream:
        body = problem(post(dave, "/image/convert/webp", files={"file": stream}), 415)
    assert "text/plain" in body["detail"]
    assert "notes.jpg" in body["detail"]


def test_a_video_is_refused_by_an_image_endpoint(
    dave: User, media: dict[str, Path], leftovers: Leftovers
) -> None:
    with media["clip"].open("rb") as stream:
        problem(post(dave, "/image/resize", data={"width": "10"}, files={"file": stream}), 415)
    with media["photo"].open("rb") as stream:
        problem(post(dave, "/video/thumbnail", files={"file": stream}), 415)


def refused_fields(
    user: User, media: dict[str, Path], path: str, fields: dict[str, str]
) -> dict[str, Any]:
    """The 422 problem for uploading the endpoint's kind of file with `fields`."""
    kind = "clip" if path.startswith("/video") else "photo"
    with media[kind].open("rb") as stream:
        return problem(post(user, path, data=fields, files={"file": stream}), 422)


@pytest.mark.parametrize(
    ("path", "fields", "field"),
    [
        ("/image/convert/webp", {"quality": "0"}, "quality"),
        ("/image/convert/webp", {"lossless": "maybe"}, "lossless"),
        ("/image/convert/format", {"output_format": "heic"}, "output_format"),
        ("/image/convert/format", {}, "output_format"),  # required
        ("/image/resize", {"width": "-5"}, "width"),
        ("/image/resize", {"fit": "stretch"}, "fit"),
        ("/video/rotate", {"degrees": "45"}, "degrees"),
        ("/video/convert", {"codec": "divx"}, "codec"),
        ("/video/trim", {"start_time": "10s", "end_time": "00:00:02"}, "start_time"),
    ],
)
def test_invalid_fields_are_refused_before_anything_is_stored(
    dave: User,
    media: dict[str, Path],
    leftovers: Leftovers,
    path: str,
    fields: dict[str, str],
    field: str,
) -> None:
    body = refused_fields(dave, media, path, fields)
    assert field in [error["field"] for error in body["errors"]], body
    assert field in body["detail"]


@pytest.mark.parametrize(
    ("path", "fields", "message"),
    [
        ("/video/convert", {"output_format": "mp4", "codec": "vp9"}, "vp9 cannot go in mp4"),
        ("/video/convert", {"codec": "h264", "crf": "60"}, "crf for h264"),
        ("/video/trim", {"start_time": "00:00:02", "end_time": "00:00:01"}, "must be after start"),
        ("/image/resize", {}, "width and height"),
    ],
)
def test_invalid_combinations_are_refused(
    dave: User,
    media: dict[str, Path],
    leftovers: Leftovers,
    path: str,
    fields: dict[str, str],
    message: str,
) -> None:
    assert message in refused_fields(dave, media, path, fields)["detail"]


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> bytes:
    """A multipart body with the parts in this order: (name, filename or None, content)."""
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def test_a_field_after_the_file_is_checked_and_the_file_deleted(
    dave: User, media: dict[str, Path], leftovers: Leftovers
) -> None:
    body = multipart([("file", "p.jpg", media["photo"].read_bytes()), ("quality", None, b"101")])
    headers = {**dave.headers, "content-type": "multipart/form-data; boundary=b0undary"}
    response = httpx.post(
        f"{dave.api.url}/api/v1/image/convert/webp", content=body, headers=headers
    )
    assert problem(response, 422)["errors"][0]["field"] == "quality"


def test_malformed_and_missing_bodies(
    dave: User, media: dict[str, Path], leftovers: Leftovers
) -> None:
    url = f"{dave.api.url}/api/v1/image/convert/webp"
    headers = {**dave.headers, "content-type": "multipart/form-data; boundary=b0undary"}
    truncated = multipart([("file", "p.jpg", media["photo"].read_bytes())])[:-40]
    assert (
        "multipart" in problem(httpx.post(url, content=truncated, headers=headers), 400)["detail"]
    )
    only_fields = multipart([("quality", None, b"80")])
    assert (
        problem(httpx.post(url, content=only_fields, headers=headers), 422)["errors"][0]["field"]
        == "file"
    )
    empty = multipart([("file", "empty.jpg", b"")])
    assert "empty" in problem(httpx.post(url, content=empty, headers=headers), 422)["detail"]
    problem(httpx.post(url, json={"quality": 80}, headers=dave.headers), 415)
    problem(httpx.post(url, files={"file": media["photo"].read_bytes()}), 401)


def test_batches_are_all_or_nothing(
    dave: User, media: dict[str, Path], leftovers: Leftovers
) -> None:
    photo = media["photo"].read_bytes()
    files = [("files", ("ok.jpg", photo)), ("files", ("bad.jpg", media["text"].read_bytes()))]
    assert "bad.jpg" in problem(post(dave, "/image/batch/convert/webp", files=files), 415)["detail"]
    too_many = [("files", (f"{i}.jpg", photo)) for i in range(21)]
    body = problem(post(dave, "/image/batch/convert/webp", files=too_many), 422)
    assert "at most 20" in body["detail"]


def test_oversized_files_are_refused_while_streaming(
    api_namespace: str, media: dict[str, Path], leftovers: Leftovers
) -> None:
    env = {
        "MEDIAFLOW_API_NAMESPACE": api_namespace,
        "MEDIAFLOW_API_MAX_UPLOAD_BYTES": str(1024 * 1024),
    }
    with ApiProcess(env) as api:
        user = User(api)
        big = media["photo"].read_bytes() + b"\0" * (3 * 1024 * 1024)
        body = problem(post(user, "/image/convert/webp", files={"file": ("big.jpg", big)}), 413)
        assert "1048576 bytes" in body["detail"]

        # Without Content-Length (chunked), the limit trips while streaming.
        def chunks() -> Iterator[bytes]:
            yield multipart([("file", "big.jpg", big)])

        headers = {**user.headers, "content-type": "multipart/form-data; boundary=b0undary"}
        response = httpx.post(
            f"{api.url}/api/v1/image/convert/webp", content=chunks(), headers=headers, timeout=60
        )
        problem(response, 413)


def test_a_client_that_disappears_half_way_leaves_nothing(
    dave: User, media: dict[str, Path], leftovers: Leftovers
) -> None:
    host, port = dave.api.url.removeprefix("http://").split(":")
    photo = media["photo"].read_bytes()
    # Big enough that MinIO has started a multipart upload (parts are 8 MiB by default).
    payload = photo + b"\0" * (20 * 1024 * 1024)
    body = multipart([("file", "p.jpg", payload)])
    head = (
        f"POST /api/v1/image/convert/webp HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: {dave.headers['Authorization']}\r\n"
        "Content-Type: multipart/form-data; boundary=b0undary\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head + body[: len(body) * 3 // 4])
        time.sleep(2)  # let the API store the first parts
    # The API notices the disconnect, aborts the multipart upload: nothing remains.
    wait_until(
        "the aborted upload to be cleaned up",
        lambda: leftovers.new() == (set(), set(), set()),
        timeout=30,
    )


def test_uploads_are_rate_limited_per_user(api_namespace: str, media: dict[str, Path]) -> None:
    env = {
        "MEDIAFLOW_API_NAMESPACE": api_namespace,
        "MEDIAFLOW_API_RATE_LIMIT_VIDEO_PER_MINUTE": "1",
    }
    with ApiProcess(env) as api:
        erin, frank = User(api), User(api)
        # A photo to a video endpoint is refused (415) but still counts as an upload.
        photo = media["photo"].read_bytes()
        problem(post(erin, "/video/rotate", files={"file": ("p.jpg", photo)}), 415)
        response = post(erin, "/video/rotate", files={"file": ("p.jpg", photo)})
        body = problem(response, 429)
        assert int(response.headers["retry-after"]) > 0
        assert "video uploads" in body["detail"]
        problem(post(frank, "/video/rotate", files={"file": ("p.jpg", photo)}), 415)  # own limit
        problem(
            post(erin, "/image/convert/webp", files={"file": ("t.jpg", b"text")}), 415
        )  # own group


def test_another_user_cannot_see_an_uploaded_job(
    carol: User, dave: User, submitted: dict[str, str]
) -> None:
    job_id = submitted["webp"]
    problem(dave.get(f"/{job_id}"), 404)
    problem(dave.delete(f"/{job_id}"), 404)
    assert job_id not in [j["id"] for j in dave.get("", page_size=100).json()["data"]["items"]]


def test_openapi_documents_the_upload_forms(carol: User) -> None:
    spec = httpx.get(f"{carol.api.url}/docs/openapi.json", timeout=30).json()
    body = spec["paths"]["/api/v1/video/convert"]["post"]["requestBody"]
    schema = body["content"]["multipart/form-data"]["schema"]
    assert schema["properties"]["file"]["format"] == "binary"
    assert schema["properties"]["output_format"]["default"] == "mp4"
    assert "libx264" in schema["properties"]["codec"]["enum"]
    batch = spec["paths"]["/api/v1/image/batch/convert/webp"]["post"]["requestBody"]
    files = batch["content"]["multipart/form-data"]["schema"]["properties"]["files"]
    assert (files["type"], files["maxItems"]) == ("array", 20)


def test_deleting_a_processing_uploaded_job_stops_it_and_deletes_its_files(
    carol: User, minio_settings: MinioSettings, api_namespace: str, tmp_path: Path
) -> None:
    # AV1 at its slowest setting keeps the pod busy long enough to be deleted while running.
    clip = make_clip(tmp_path / "long.mp4", size="640x360", seconds=8)
    fields = {"output_format": "mkv", "codec": "libaom-av1", "preset": "veryslow", "crf": "10"}
    with clip.open("rb") as stream:
        response = post(carol, "/video/convert", data=fields, files={"file": stream})
    assert response.status_code == 202, response.text
    job_id = response.json()["data"]["job_id"]
    wait_until(
        "the job to run",
        lambda: carol.get(f"/{job_id}").json()["data"]["status"] == "processing",
        timeout=120,
    )
    mc = minio_settings.client()
    upload = f"{api_namespace}/uploads/{job_id}/input"
    assert mc.stat_object(minio_settings.bucket, upload).size == clip.stat().st_size

    response = carol.delete(f"/{job_id}")
    assert (response.status_code, response.content) == (204, b"")
    problem(carol.get(f"/{job_id}"), 404)
    wait_until(
        "the upload to be deleted",
        lambda: not list(mc.list_objects(minio_settings.bucket, upload)),
        timeout=60,
    )


def test_uploads_beyond_the_concurrency_cap_are_refused_until_one_ends(
    api_namespace: str, media: dict[str, Path]
) -> None:
    env = {"MEDIAFLOW_API_NAMESPACE": api_namespace, "MEDIAFLOW_API_MAX_CONCURRENT_UPLOADS": "1"}
    with ApiProcess(env) as api:
        user = User(api)
        host, port = api.url.removeprefix("http://").split(":")
        body = multipart([("file", "p.jpg", media["photo"].read_bytes() + b"\0" * 4_000_000)])
        head = (
            f"POST /api/v1/image/convert/webp HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: {user.headers['Authorization']}\r\n"
            "Content-Type: multipart/form-data; boundary=b0undary\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(head + body[: len(body) // 2])  # an upload in progress, stalled
            time.sleep(1)
            response = post(user, "/image/convert/webp", files={"file": ("t.jpg", b"text")})
            assert problem(response, 503)["type"].endswith(":busy")
            assert response.headers["retry-after"] == "5"
        # The stalled client went away: its slot is free again.
        wait_until(
            "the slot to be free",
            lambda: (
                post(user, "/image/convert/webp", files={"file": ("t.jpg", b"text")}).status_code
                == 415
            ),
            timeout=30,
        )


# --- one user cannot block the others; idle uploads go (issue 10, item 3) ---------------


class StalledUpload:
    """A chunked upload (no Content-Length) that sends `payload` of a file and then nothing."""

    def __init__(self, api: ApiProcess, user: User, payload: bytes) -> None:
        host, port = api.url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)))
        head = (
            f"POST /api/v1/image/convert/webp HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: {user.headers['Authorization']}\r\n"
            "Content-Type: multipart/form-data; boundary=b0undary\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
        start = (
            b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="s.jpg"\r\n\r\n'
        )
        data = start + payload
        self.sock.sendall(head + f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def answer(self, timeout: float) -> bytes:
        """What the API answered (its status line first), waiting up to `timeout` seconds."""
        self.sock.settimeout(timeout)
        answer = b""
        try:
            while chunk := self.sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
        return answer

    def close(self) -> None:
        self.sock.close()


def test_a_user_with_stalled_uploads_blocks_nobody_and_stalled_uploads_leave_nothing(
    api_namespace: str,
    media: dict[str, Path],
    leftovers: Leftovers,
    cleanup: None,  # noqa: F811 - the fixture
) -> None:
    env = {
        "MEDIAFLOW_API_NAMESPACE": api_namespace,
        "MEDIAFLOW_API_MAX_CONCURRENT_UPLOADS": "3",
        "MEDIAFLOW_API_MAX_CONCURRENT_UPLOADS_PER_USER": "2",
        "MEDIAFLOW_API_UPLOAD_STALLED_SECONDS": "2",
        "MEDIAFLOW_API_UPLOAD_IDLE_TIMEOUT_SECONDS": "12",
        "MEDIAFLOW_API_UPLOAD_PART_SIZE_BYTES": str(5 * 1024 * 1024),
    }
    with ApiProcess(env) as api:
        mallory, bob, alice = User(api), User(api), User(api)
        # More than a part: each stalled upload has a multipart upload and a marker in MinIO.
        payload = media["photo"].read_bytes() + b"\0" * (6 * 1024 * 1024)
        mc = leftovers.minio.client()

        def in_progress() -> set[str]:
            """The inputs being stored: a marker each, and a multipart upload each (MinIO
            lists multipart uploads by exact key only)."""
            markers = {k for k in leftovers.new()[0] if k.endswith("/in-progress")}
            keys = {m.removesuffix("in-progress") + "input" for m in markers}
            return {
                key
                for key in keys
                if mc._list_multipart_uploads(leftovers.minio.bucket, prefix=key).uploads
            }

        stalled = [StalledUpload(api, mallory, payload) for _ in range(2)]
        try:
            wait_until("mallory's two stalled uploads", lambda: len(in_progress()) == 2)
            # Her own cap: a third upload of hers is refused, saying what the limit is.
            third = post(mallory, "/image/convert/webp", files={"file": ("t.jpg", b"text")})
            body = problem(third, 429)
            assert "2 uploads in progress" in body["detail"], body
            assert int(third.headers["retry-after"]) > 0
            # Another user's stalled upload fills the process.
            stalled.append(StalledUpload(api, bob, payload))
            storing = wait_until(
                "three stalled uploads", lambda: (keys := in_progress()) and len(keys) == 3 and keys
            )
            time.sleep(2.5)  # all of them silent for longer than the stalled time
            # A third user still uploads: the longest-stalled upload gives way, at once.
            with media["photo"].open("rb") as stream:
                response = post(alice, "/image/convert/webp", files={"file": stream})
            assert response.status_code == 202, response.text
            accepted = response.json()["data"]["job_id"]
            first = stalled[0].answer(timeout=5)
            assert first.startswith(b"HTTP/1.1 408"), first[:300]
            assert b"while other users waited" in first
            # The others are dropped after the idle timeout, with a 408 too ...
            for upload in stalled[1:]:
                answer = upload.answer(timeout=30)
                assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
                assert b"12 seconds" in answer
        finally:
            for upload in stalled:
                upload.close()
        # ... and none leaves an object, a multipart upload, a marker or a MediaJob.
        objects, _, mediajobs = leftovers.new()
        for key in storing:
            assert not mc._list_multipart_uploads(leftovers.minio.bucket, prefix=key).uploads
        assert objects <= {f"{api_namespace}/uploads/{accepted}/input"}, objects
        assert mediajobs == {accepted}
    leftovers.before = leftovers.snapshot()  # the accepted job is cleanup's to delete


# --- a cap on active jobs per user (issue 10, item 5) -----------------------------------


@pytest.fixture
def unwatched_namespace(kube: client.ApiClient) -> Iterator[str]:
    """A namespace no operator serves: its MediaJobs stay pending, so they stay active."""
    for scratch in restricted_namespace(kube, "mf-quota"):
        yield scratch.name


def test_active_jobs_are_capped_per_user_and_a_batch_over_the_cap_keeps_nothing(
    kube: client.ApiClient,
    unwatched_namespace: str,
    minio_settings: MinioSettings,
    media: dict[str, Path],
) -> None:
    env = {
        "MEDIAFLOW_API_NAMESPACE": unwatched_namespace,
        "MEDIAFLOW_API_MAX_ACTIVE_JOBS_PER_USER": "2",
    }
    tracker = Leftovers(kube, unwatched_namespace, minio_settings)
    photo = media["photo"].read_bytes()
    with ApiProcess(env) as api:
        erin, frank = User(api), User(api)
        first = post(erin, "/image/convert/webp", files={"file": ("1.jpg", photo)})
        assert first.status_code == 202, first.text
        # A batch of two would make three: refused whole, nothing of it kept.
        batch = [("files", ("a.jpg", photo)), ("files", ("b.jpg", photo))]
        refused = post(erin, "/image/batch/convert/webp", files=batch)
        body = problem(refused, 429)
        assert "at most 2" in body["detail"]
        assert "1 active jobs" in body["detail"]
        objects, pending, mediajobs = tracker.new()
        assert (len(objects), pending, len(mediajobs)) == (1, set(), 1), (objects, mediajobs)
        second = post(erin, "/image/convert/webp", files={"file": ("2.jpg", photo)})
        assert second.status_code == 202, second.text
        # At the cap: refused before the body is stored.
        body = problem(post(erin, "/image/convert/webp", files={"file": ("3.jpg", photo)}), 429)
        assert "You have 2 active jobs" in body["detail"]
        assert len(tracker.new()[0]) == 2
        # Every user has a cap of their own.
        assert (
            post(frank, "/image/convert/webp", files={"file": ("f.jpg", photo)}).status_code == 202
        )
        # A deleted job no longer counts.
        assert erin.delete(f"/{first.json()['data']['job_id']}").status_code == 204
        third = post(erin, "/image/convert/webp", files={"file": ("3.jpg", photo)})
        assert third.status_code == 202, third.text
    mc = minio_settings.client()
    for key in tracker.new()[0]:  # no operator here deletes inputs with their MediaJobs
        mc.remove_object(minio_settings.bucket, key)


# --- the fast path of small files (issue 12, item 6): failures half-way leave nothing ---


def test_a_batch_whose_mediajobs_the_api_server_refuses_half_way_keeps_nothing(
    kube: client.ApiClient,
    unwatched_namespace: str,
    minio_settings: MinioSettings,
    media: dict[str, Path],
) -> None:
    """With a MediaJob per file, the MediaJobs of a batch are created side by side: when the
    API server refuses one (a ResourceQuota of 5 MediaJobs, a batch of 12), those made before
    and beside it go too, and so do every file and marker. A batch made as one MediaJob that
    the API server refuses (the quota used up) keeps nothing either."""
    client.CoreV1Api(kube).create_namespaced_resource_quota(
        unwatched_namespace,
        client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name="mediajobs"),
            spec=client.V1ResourceQuotaSpec(hard={"count/mediajobs.mediaflow.io": "5"}),
        ),
    )
    wait_until(
        "the quota to be counted",
        lambda: (
            client.CoreV1Api(kube)
            .read_namespaced_resource_quota("mediajobs", unwatched_namespace)
            .status.hard
        ),
    )
    tracker = Leftovers(kube, unwatched_namespace, minio_settings)
    photo = media["photo"].read_bytes()
    per_file = {
        "MEDIAFLOW_API_NAMESPACE": unwatched_namespace,
        "MEDIAFLOW_API_BATCH_AS_ONE_MEDIAJOB": "false",
    }
    files = [("files", (f"{n}.jpg", photo)) for n in range(12)]
    with ApiProcess(per_file) as api:
        user = User(api)
        response = post(user, "/image/batch/convert/webp", files=files)
        assert response.status_code >= 500, response.text
        assert tracker.new() == (set(), set(), set())
        # Within the quota the same batch goes through.
        response = post(user, "/image/batch/convert/webp", files=files[:5])
        assert response.status_code == 202, response.text
    objects, _, mediajobs = tracker.new()
    assert len(objects) == len(mediajobs) == 5  # the markers are gone
    with ApiProcess({"MEDIAFLOW_API_NAMESPACE": unwatched_namespace}) as api:
        response = post(User(api), "/image/batch/convert/webp", files=files)
        assert response.status_code >= 500, response.text
    assert tracker.new()[0] == objects  # nothing more
    mc = minio_settings.client()
    for key in objects:  # no operator here deletes inputs with their MediaJobs
        mc.remove_object(minio_settings.bucket, key)


def test_a_client_that_disappears_in_a_batch_of_small_files_leaves_nothing(
    dave: User, media: dict[str, Path], leftovers: Leftovers
) -> None:
    """Small files are stored in the background while the body is read; a client that goes
    away after 15 of them leaves none of them, and no marker."""
    host, port = dave.api.url.removeprefix("http://").split(":")
    photo = media["photo"].read_bytes()
    body = multipart([("files", f"{n}.jpg", photo) for n in range(15)])
    body = body.removesuffix(b"--b0undary--\r\n")  # the body never ends
    head = (
        f"POST /api/v1/image/batch/convert/webp HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: {dave.headers['Authorization']}\r\n"
        "Content-Type: multipart/form-data; boundary=b0undary\r\n"
        f"Content-Length: {len(body) + 1000}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head + body)
        # New objects (earlier tests' uploads are in this namespace too).
        wait_until(
            "the first files to be stored", lambda: leftovers.new()[0], timeout=30, interval=0.05
        )
    wait_until(
        "the abandoned batch to be cleaned up",
        lambda: leftovers.new() == (set(), set(), set()),
        timeout=30,
    )
