"""User ids are UUIDs now; MediaJobs labelled with the 32-hex ids of earlier releases stay
their owners' (issue 10, item 16)."""

from __future__ import annotations

from pathlib import Path

import httpx
from kubernetes import client

from tests.environment import MinioSettings
from tests.integration.api_process import ApiProcess
from tests.integration.test_api_jobs import CONVERT, User, create_job
from tests.integration.test_mediajob import GROUP, PLURAL, VERSION, custom
from tests.media import make_photo


def test_jobs_labelled_with_the_old_id_stay_the_users_and_new_ones_carry_the_uuid(
    auth_api: ApiProcess,
    api_namespace: str,
    kube: client.ApiClient,
    minio_settings: MinioSettings,
    tmp_path: Path,
) -> None:
    user, stranger = User(auth_api), User(auth_api)
    assert len(user.id) == 36
    photo = make_photo(tmp_path / "photo.jpg")

    # A MediaJob as an earlier release labelled it: the 32 hex digits of the same id.
    legacy = create_job(
        kube, api_namespace, minio_settings, user.id.replace("-", ""), CONVERT, photo
    )
    legacy_id = legacy["metadata"]["name"]
    assert user.get(f"/{legacy_id}").status_code == 200
    assert legacy_id in [job["id"] for job in user.get("").json()["data"]["items"]]
    assert stranger.get(f"/{legacy_id}").status_code == 404

    # An upload now: the MediaJob's owner label is the id the user sees.
    with photo.open("rb") as file:
        response = httpx.post(
            f"{auth_api.url}/api/v1/image/convert/webp",
            headers=user.headers,
            files={"file": ("photo.jpg", file, "image/jpeg")},
            timeout=60,
        )
    assert response.status_code == 202, response.text
    new_id = response.json()["data"]["job_id"]
    mediajob = custom(kube).get_namespaced_custom_object(
        GROUP, VERSION, api_namespace, PLURAL, new_id
    )
    assert mediajob["metadata"]["labels"]["mediaflow.io/owner"] == user.id
    listed = {job["id"] for job in user.get("").json()["data"]["items"]}
    assert {legacy_id, new_id} <= listed

    for job_id in (legacy_id, new_id):
        assert user.delete(f"/{job_id}").status_code in (200, 204)
