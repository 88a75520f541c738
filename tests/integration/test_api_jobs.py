"""`/api/v1/jobs` against the real API process, cluster, MinIO and operator.

The MediaJobs are made the way the upload endpoints make them (`mediaflow_api.jobs.model`):
an input uploaded under `<namespace>/uploads/`, a MediaJob labelled with its owner.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mediaflow_api.jobs.model import (
    DEFAULT_JOB_RETENTION_SECONDS,
    OPERATIONS,
    mediajob_body,
    new_job_id,
)
from tests.environment import MinioSettings, wait_until
from tests.integration.api_process import ApiProcess
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_mediajob import (
    GROUP,
    PLURAL,
    VERSION,
    TricklingServer,
    custom,
    get_mj,
    wait_finished,
    wait_running,
)
from tests.media import make_photo

PASSWORD = "correct horse battery"  # noqa: S105 - a test password
PROBLEM_JSON = "application/problem+json"
CONVERT = {"operation": "ImageConvert", "imageConvert": {"format": "webp", "quality": 80}}
RESIZE = {
    "operation": "ImageResize",
    "imageResize": {"width": 160, "height": 160, "fit": "inside", "format": "png"},
}


class User:
    """A user registered through the API, with its access token."""

    def __init__(self, api: ApiProcess) -> None:
        self.api = api
        self.email = email = f"jobs-{uuid.uuid4().hex[:10]}@example.com"
        response = httpx.post(
            f"{api.url}/api/v1/auth/register",
            json={"email": email, "password": PASSWORD},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        data = response.json()["data"]
        self.id = data["user"]["id"]
        self.headers = {"Authorization": f"Bearer {data['tokens']['access_token']}"}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(
            f"{self.api.url}/api/v1/jobs{path}", params=params, headers=self.headers, timeout=30
        )

    def delete(self, path: str) -> httpx.Response:
        return httpx.delete(f"{self.api.url}/api/v1/jobs{path}", headers=self.headers, timeout=30)


def create_job(
    kube: client.ApiClient,
    namespace: str,
    minio: MinioSettings,
    owner: str,
    operation: dict[str, Any],
    source: Path | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """A MediaJob as the upload endpoints create it: the file uploaded under the namespace."""
    job_id = new_job_id()
    if source is not None:
        key = f"{namespace}/uploads/{job_id}/input"  # where the API stores it (UploadService)
        minio.client().fput_object(minio.bucket, key, str(source))
        job_input: dict[str, Any] = {"object": {"key": key}}
        filename = source.name
    else:
        job_input, filename = {"url": url}, "slow.mp4"
    spec = {"input": job_input, **operation}
    # The first job type of the operation (image_convert_webp for ImageConvert).
    job_type = next(t for t, op in OPERATIONS.items() if op.value == operation["operation"])
    body = mediajob_body(
        job_id,
        namespace,
        owner,
        filename,
        job_type,
        spec,
        retention_seconds=DEFAULT_JOB_RETENTION_SECONDS,
    )
    return custom(kube).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def objects(minio: MinioSettings, prefix: str) -> list[str]:
    return [
        o.object_name
        for o in minio.client().list_objects(minio.bucket, prefix=prefix, recursive=True)
    ]


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    assert body["detail"]
    return body


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_photo(tmp_path_factory.mktemp("inputs") / "photo.jpg")


@pytest.fixture(scope="module")
def cleanup(
    kube: client.ApiClient, api_namespace: str, operator: OperatorProcess
) -> Iterator[None]:
    """Delete this module's MediaJobs while the operator still runs, so that their
    finalizers complete before the namespace goes."""
    yield
    api = custom(kube)
    for mj in api.list_namespaced_custom_object(GROUP, VERSION, api_namespace, PLURAL)["items"]:
        try:
            api.delete_namespaced_custom_object(
                GROUP, VERSION, api_namespace, PLURAL, mj["metadata"]["name"]
            )
        except ApiException as error:
            if error.status != 404:  # already gone (a test deleted it and its finalizer ran)
                raise
    wait_until(
        "the MediaJobs to be gone",
        lambda: (
            not api.list_namespaced_custom_object(GROUP, VERSION, api_namespace, PLURAL)["items"]
        ),
        timeout=120,
    )


@pytest.fixture(scope="module")
def alice(auth_api: ApiProcess) -> User:
    return User(auth_api)


@pytest.fixture(scope="module")
def bob(auth_api: ApiProcess) -> User:
    return User(auth_api)


@pytest.fixture(scope="module")
def finished(
    kube: client.ApiClient,
    api_namespace: str,
    minio_settings: MinioSettings,
    cleanup: None,
    alice: User,
    photo: Path,
) -> list[str]:
    """Three of alice's jobs, oldest first (two conversions, then a resize), all finished."""
    names = []
    for operation in (CONVERT, CONVERT, RESIZE):
        mj = create_job(kube, api_namespace, minio_settings, alice.id, operation, photo)
        names.append(mj["metadata"]["name"])
        time.sleep(1.1)  # creation timestamps have one-second resolution
    for name in names:
        mj = wait_finished(kube, api_namespace, name)
        assert mj["status"]["phase"] == "Succeeded", mj["status"]
    return names


def test_list_pages_newest_first_with_filters(alice: User, finished: list[str]) -> None:
    first = alice.get("", page_size=2)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["success"] is True
    data = body["data"]
    assert (data["total"], data["page"], data["page_size"]) == (3, 1, 2)
    assert [j["id"] for j in data["items"]] == finished[::-1][:2]
    second = alice.get("", page=2, page_size=2).json()["data"]
    assert [j["id"] for j in second["items"]] == [finished[0]]
    assert second["total"] == 3
    assert alice.get("", page=3, page_size=2).json()["data"]["items"] == []
    default = alice.get("").json()["data"]
    assert (default["page"], default["page_size"], default["total"]) == (1, 20, 3)

    resizes = alice.get("", job_type="image_resize").json()["data"]
    assert [j["id"] for j in resizes["items"]] == [finished[2]]
    assert resizes["items"][0]["job_type"] == "image_resize"
    converts = alice.get("", job_type="image_convert_webp", status="completed").json()["data"]
    assert [j["id"] for j in converts["items"]] == [finished[1], finished[0]]
    assert alice.get("", status="failed").json()["data"]["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"page": 0},
        {"page_size": 0},
        {"page_size": 101},
        {"status": "done"},
        {"job_type": "image_sharpen"},
        {"page": "one"},
    ],
)
def test_list_refuses_bad_parameters(alice: User, params: dict[str, Any]) -> None:
    body = problem(alice.get("", **params), 422)
    assert [e["field"] for e in body["errors"]] == list(params)


def test_completed_job_has_a_url_that_downloads_the_result(
    alice: User, finished: list[str], minio_settings: MinioSettings
) -> None:
    response = alice.get(f"/{finished[0]}")
    assert response.status_code == 200, response.text
    job = response.json()["data"]
    assert job["id"] == finished[0]
    assert (job["status"], job["progress"]) == ("completed", 100)
    assert job["job_type"] == "image_convert_webp"
    assert job["error"] is None
    assert job["created_at"] <= job["updated_at"]
    assert job["result_url"].startswith(minio_settings.endpoint)
    with urllib.request.urlopen(job["result_url"], timeout=30) as download:  # noqa: S310
        data = download.read()
        disposition = download.headers["Content-Disposition"]
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WEBP"
    assert 'filename="photo.webp"' in disposition


def test_another_user_sees_none_of_the_jobs(alice: User, bob: User, finished: list[str]) -> None:
    listing = bob.get("").json()["data"]
    assert (listing["total"], listing["items"]) == (0, [])
    problem(bob.get(f"/{finished[0]}"), 404)
    problem(bob.delete(f"/{finished[0]}"), 404)
    assert alice.get(f"/{finished[0]}").json()["data"]["status"] == "completed"


@pytest.mark.parametrize("job_id", ["not-a-uuid", str(uuid.uuid4()), str(uuid.uuid4()).upper()])
def test_unknown_or_malformed_ids_are_not_found(alice: User, job_id: str) -> None:
    problem(alice.get(f"/{job_id}"), 404)
    problem(alice.delete(f"/{job_id}"), 404)


def test_jobs_need_an_access_token(auth_api: ApiProcess) -> None:
    response = httpx.get(f"{auth_api.url}/api/v1/jobs", timeout=30)
    problem(response, 401)


def test_deleting_a_finished_job_deletes_it_and_its_files(
    kube: client.ApiClient,
    api_namespace: str,
    minio_settings: MinioSettings,
    cleanup: None,
    alice: User,
    photo: Path,
) -> None:
    mj = create_job(kube, api_namespace, minio_settings, alice.id, RESIZE, photo)
    name, uid = mj["metadata"]["name"], mj["metadata"]["uid"]
    input_key = mj["spec"]["input"]["object"]["key"]
    assert wait_finished(kube, api_namespace, name)["status"]["phase"] == "Succeeded"
    results = f"{api_namespace}/results/{uid}/"
    assert objects(minio_settings, results)
    assert objects(minio_settings, input_key) == [input_key]

    response = alice.delete(f"/{name}")
    assert_deleted(response)
    # Gone for its owner from this answer on, while the finalizer may still run.
    problem(alice.get(f"/{name}"), 404)
    assert name not in [j["id"] for j in alice.get("", page_size=100).json()["data"]["items"]]
    problem(alice.delete(f"/{name}"), 404)

    def gone() -> bool:
        try:
            get_mj(kube, api_namespace, name)
        except client.ApiException as error:
            return error.status == 404
        return False

    wait_until("the MediaJob to be gone", gone, timeout=90)
    assert objects(minio_settings, results) == []
    assert objects(minio_settings, input_key) == []
    problem(alice.get(f"/{name}"), 404)


def test_deleting_a_running_job_stops_it_and_it_is_gone_at_once(
    kube: client.ApiClient,
    api_namespace: str,
    minio_settings: MinioSettings,
    cleanup: None,
    alice: User,
) -> None:
    server = TricklingServer(urlsplit(minio_settings.internal_endpoint).hostname)
    try:
        video = {"operation": "VideoConvert", "videoConvert": {"container": "mp4"}}
        mj = create_job(kube, api_namespace, minio_settings, alice.id, video, url=server.url)
        name = mj["metadata"]["name"]
        wait_running(kube, api_namespace, name)
        assert alice.get(f"/{name}").json()["data"]["status"] == "processing"

        assert_deleted(alice.delete(f"/{name}"))
        problem(alice.get(f"/{name}"), 404)
        assert alice.get("", status="processing").json()["data"]["total"] == 0
        # The finalizer stops the pod: the Job goes, then the MediaJob.
        batch = client.BatchV1Api(kube)
        wait_until(
            "the Job to be gone",
            lambda: (
                not batch.list_namespaced_job(
                    api_namespace, label_selector=f"mediaflow.io/mediajob={name}"
                ).items
            ),
            timeout=60,
        )

        def gone() -> bool:
            try:
                get_mj(kube, api_namespace, name)
            except client.ApiException as error:
                return error.status == 404
            return False

        wait_until("the MediaJob to be gone", gone, timeout=90)
    finally:
        server.close()


def assert_deleted(response: httpx.Response) -> None:
    """The previous service's answer to DELETE: 204 without a body."""
    assert response.status_code == 204, response.text
    assert response.content == b""


def test_options_lists_every_method_of_a_job(alice: User, finished: list[str]) -> None:
    response = httpx.options(f"{alice.api.url}/api/v1/jobs/{finished[0]}", timeout=30)
    assert response.status_code == 204
    assert {m.strip() for m in response.headers["allow"].split(",")} == {
        "GET",
        "DELETE",
        "OPTIONS",
    }
