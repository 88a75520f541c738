"""The clean-up of a batch whose small files are stored, and MediaJobs created, side by side.

Object storage and the API server are fakes here (recording what exists); the same paths
against the real MinIO and API server are in tests/integration/test_api_uploads.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from kubernetes.client.exceptions import ApiException

from mediaflow_api.clients import upload_io_threads
from mediaflow_api.jobs.model import batch_jobs
from mediaflow_api.problems import Problem
from mediaflow_api.uploads.forms import ENDPOINTS
from mediaflow_api.uploads.quota import ActiveJobQuota
from mediaflow_api.uploads.service import STORE_CONCURRENCY, UploadService
from mediaflow_core.storage import minio_client
from tests.unit.api.conftest import make_settings

pytestmark = pytest.mark.unit

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 2000
BOUNDARY = "b0undary"
BATCH = ENDPOINTS["/image/batch/convert/webp"]


class _Answer:
    def __init__(self, status: int, data: bytes = b"") -> None:
        self.status, self.data, self.headers = status, data, {"ETag": '"e"'}


class FakeStorage:
    """The bucket, as the presigned requests (urllib3) and minio-py's bulk delete see it.
    PUTs of keys in `failing` answer 500; each PUT takes `delay` seconds."""

    def __init__(self, failing: set[int] | None = None, delay: float = 0.0) -> None:
        self.objects: set[str] = set()
        self.put_order: list[str] = []
        self.failing = failing or set()  # numbers of the object PUTs (from 1) that fail
        self.delay = delay
        self.running = 0
        self.most_running = 0
        self.lock = threading.Lock()

    def request(self, method: str, url: str, body: Any = None, headers: Any = None) -> _Answer:
        key = unquote(urlsplit(url).path).split("/", 2)[2]
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            time.sleep(self.delay)
            with self.lock:
                if method == "PUT" and not key.endswith("/in-progress"):
                    self.put_order.append(key)
                    if len(self.put_order) in self.failing:
                        return _Answer(500, b"<Error>InternalError</Error>")
                if method == "PUT":
                    self.objects.add(key)
                elif method == "DELETE":
                    self.objects.discard(key)
                return _Answer(200 if method == "PUT" else 204)
        finally:
            with self.lock:
                self.running -= 1

    def remove_objects(self, bucket: str, objects: Any) -> list[Any]:
        with self.lock:
            for obj in objects:
                self.objects.discard(obj.name)
        return []


class FakeMediaJobs:
    """MediaJobs as the API server keeps them; create number `failing` (from 1) is refused."""

    def __init__(self, failing: int | None = None) -> None:
        self.names: set[str] = set()
        self.bodies: list[dict[str, Any]] = []
        self.tried = 0
        self.failing = failing
        self.lock = threading.Lock()

    def create_namespaced_custom_object(self, *args: Any) -> dict[str, Any]:
        body = args[-1]
        self.bodies.append(body)
        with self.lock:
            self.tried += 1
            if self.tried == self.failing:
                raise ApiException(status=403, reason="exceeded quota")
            self.names.add(body["metadata"]["name"])
            # As the API server answers: the object made, with its version.
            return {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.tried)}}

    def delete_namespaced_custom_object(self, *args: Any) -> None:
        with self.lock:
            name = args[-1]
            if name not in self.names:
                raise ApiException(status=404, reason="Not Found")
            self.names.discard(name)

    def list_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"items": []}


def service(
    storage: FakeStorage, mediajobs: FakeMediaJobs, *, batch_as_one: bool = True
) -> UploadService:
    settings = make_settings(batch_as_one_mediajob=batch_as_one)
    minio = minio_client(settings.s3_endpoint, settings)  # signs offline, sends nothing
    minio.remove_objects = storage.remove_objects  # type: ignore[method-assign]
    upload = UploadService(settings, minio, storage, None, upload_io_threads())  # type: ignore[arg-type]
    upload.custom = mediajobs  # type: ignore[assignment]
    return upload


def batch(files: int, *, end: bool = True) -> bytes:
    body = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{n}.jpg"\r\n'
        f"\r\n".encode()
        + JPEG
        + b"\r\n"
        for n in range(files)
    )
    return body + (f"--{BOUNDARY}--\r\n".encode() if end else b"")


async def _none_active() -> int:
    return 0


async def receive(upload: UploadService, body: bytes, *, then_fail: bool = False) -> Any:
    async def chunks() -> AsyncIterator[bytes]:
        yield body
        if then_fail:  # the client went away once every file had started storing
            await asyncio.sleep(0.05)
            raise ConnectionResetError("the client went away")

    quota = ActiveJobQuota(100, _none_active, asyncio.Lock())
    return await upload.receive(
        BATCH, "owner", f"multipart/form-data; boundary={BOUNDARY}", chunks(), quota
    )


def test_a_batch_of_small_files_is_stored_side_by_side_and_its_markers_go() -> None:
    storage, mediajobs = FakeStorage(delay=0.02), FakeMediaJobs()
    stored = asyncio.run(receive(service(storage, mediajobs), batch(20)))
    assert [file.filename for file in stored] == [f"{n}.jpg" for n in range(20)]  # in order
    assert storage.objects == {file.key for file in stored}  # the marker is gone
    assert 1 < storage.most_running <= STORE_CONCURRENCY
    # One MediaJob, its inputs the files in order, each file's job a label of it.
    ((name, body),) = [(b["metadata"]["name"], b) for b in mediajobs.bodies]
    assert mediajobs.names == {name}
    assert [i["object"]["key"] for i in body["spec"]["inputs"]] == [f.key for f in stored]
    assert all(f.key == f"mediaflow/uploads/{name}/{f.job_id}/input" for f in stored)
    assert batch_jobs(body["metadata"]["labels"]) == {f.job_id: i for i, f in enumerate(stored)}


def test_a_batch_can_still_make_a_mediajob_per_file() -> None:
    storage, mediajobs = FakeStorage(delay=0.01), FakeMediaJobs()
    stored = asyncio.run(receive(service(storage, mediajobs, batch_as_one=False), batch(12)))
    assert storage.objects == {file.key for file in stored}
    assert mediajobs.names == {file.job_id for file in stored}


def test_a_store_that_fails_in_the_background_leaves_nothing() -> None:
    storage, mediajobs = FakeStorage(failing={3}, delay=0.01), FakeMediaJobs()
    with pytest.raises(Problem) as refused:
        asyncio.run(receive(service(storage, mediajobs), batch(20)))
    assert refused.value.status_code == 503
    assert storage.objects == set()  # every object and marker deleted
    assert mediajobs.names == set()
    assert mediajobs.tried == 0
    assert len(storage.put_order) < 20  # after the failure, no further store started


def test_a_client_that_goes_away_while_files_store_leaves_nothing() -> None:
    storage, mediajobs = FakeStorage(delay=0.05), FakeMediaJobs()
    with pytest.raises(ConnectionResetError):
        asyncio.run(receive(service(storage, mediajobs), batch(12, end=False), then_fail=True))
    assert storage.put_order  # some files were stored before the clean-up
    assert storage.objects == set()
    assert mediajobs.tried == 0


def test_a_refused_batch_mediajob_leaves_no_object() -> None:
    storage, mediajobs = FakeStorage(), FakeMediaJobs(failing=1)
    with pytest.raises(ApiException):
        asyncio.run(receive(service(storage, mediajobs), batch(20)))
    assert mediajobs.tried == 1
    assert storage.objects == set()


def test_a_mediajob_refused_half_way_leaves_no_mediajob_and_no_object() -> None:
    storage, mediajobs = FakeStorage(), FakeMediaJobs(failing=5)
    with pytest.raises(ApiException):
        asyncio.run(receive(service(storage, mediajobs, batch_as_one=False), batch(20)))
    assert mediajobs.tried >= 5
    assert mediajobs.names == set()  # those made before and beside the refused one too
    assert storage.objects == set()
