"""`POST /api/v1/image/renditions` end to end: one upload, one job, and every rendition's
URL downloads with its type, size and file name (`<original stem>-<rendition>.<ext>`);
a bad list is a 422 with the MediaJob model's words and stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.integration.api_process import ApiProcess
from tests.integration.test_api_jobs import PASSWORD, User, cleanup  # noqa: F401 - fixture
from tests.integration.test_api_uploads import post, wait_completed
from tests.media import ffprobe, make_photo

pytestmark = pytest.mark.integration

RENDITIONS = [
    {"name": "w160-webp", "format": "webp", "width": 160},
    {"name": "w160-avif", "format": "avif", "width": 160, "quality": 50},
    {"name": "w9999-jpeg", "format": "jpeg", "width": 9999},
]
# From a 320x240 photo, never enlarged.
EXPECTED = {
    "w160-webp": ("image/webp", "webp", 160, 120),
    "w160-avif": ("image/avif", "avif", 160, 120),
    "w9999-jpeg": ("image/jpeg", "jpg", 320, 240),
}


@pytest.fixture(scope="module")
def dave(auth_api: ApiProcess, cleanup: None) -> User:  # noqa: F811 - the fixture
    return User(auth_api)


def test_one_upload_gives_every_rendition_its_own_url(
    dave: User, tmp_path: Path, operator: object
) -> None:
    photo = make_photo(tmp_path / "holiday photo.jpg")
    with photo.open("rb") as stream:
        response = post(
            dave,
            "/image/renditions",
            data={"renditions": json.dumps(RENDITIONS)},
            files={"file": (photo.name, stream)},
        )
    assert response.status_code == 202, response.text
    job_id = response.json()["data"]["job_id"]
    job = wait_completed(dave, job_id)
    assert job["job_type"] == "image_renditions"
    assert [r["name"] for r in job["renditions"]] == [r["name"] for r in RENDITIONS]
    assert job["result_url"] == job["renditions"][0]["url"]
    for rendition in job["renditions"]:
        content_type, extension, width, height = EXPECTED[rendition["name"]]
        assert (rendition["content_type"], rendition["width"], rendition["height"]) == (
            content_type,
            width,
            height,
        )
        download = httpx.get(rendition["url"], timeout=60)
        assert download.status_code == 200
        assert download.headers["content-type"] == content_type
        assert download.headers["content-disposition"] == (
            f'attachment; filename="holiday photo-{rendition["name"]}.{extension}"'
        )
        assert len(download.content) == rendition["size"]
        path = tmp_path / rendition["name"]
        path.write_bytes(download.content)
        stream = ffprobe(path)["streams"][0]
        assert (stream["width"], stream["height"]) == (width, height)
    # Other jobs keep their shape: renditions is null for them.
    listed = dave.get("").json()["data"]["items"]
    assert next(j for j in listed if j["id"] == job_id)["renditions"] is not None


def test_a_bad_list_is_refused_with_the_models_words(dave: User, tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "p.jpg")
    twice = [{"name": "a", "format": "webp"}, {"name": "a", "format": "avif"}]
    with photo.open("rb") as stream:
        response = post(
            dave,
            "/image/renditions",
            data={"renditions": json.dumps(twice)},
            files={"file": (photo.name, stream)},
        )
    assert response.status_code == 422, response.text
    assert "rendition names must be unique; used more than once: a" in response.text
