"""The OpenAPI schema states what the API checks (issue 10, item 18), and OPTIONS lists every
method of a path. The live API is checked against it by a schemathesis run
(tests/integration/test_api_schema.py)."""

from __future__ import annotations

import pytest
from jsonschema_rs import Draft202012Validator
from litestar import Litestar
from litestar.testing import TestClient

from mediaflow_api.uploads.forms import ENDPOINTS, InvalidFieldsError, mediajob_spec

pytestmark = pytest.mark.unit


@pytest.fixture
def spec(client: TestClient[Litestar]) -> dict:
    return client.get("/docs/openapi.json").json()


def form(spec: dict, path: str) -> dict:
    body = spec["paths"][f"/api/v1{path}"]["post"]["requestBody"]
    return body["content"]["multipart/form-data"]


def test_upload_bodies_state_their_constraints(spec: dict) -> None:
    resize = form(spec, "/image/resize")["schema"]
    assert resize["anyOf"][0] == {"required": ["width", "height"]}
    assert (resize["properties"]["width"]["minimum"], resize["properties"]["width"]["maximum"]) == (
        1,
        16384,
    )
    assert form(spec, "/video/resize")["schema"]["anyOf"]
    trim = form(spec, "/video/trim")["schema"]
    assert trim["properties"]["start_time"]["pattern"].startswith("^[0-9]{2}:[0-5]")
    assert set(trim["required"]) == {"file", "start_time", "end_time"}
    assert resize["anyOf"][-1] == {"required": ["preset"]}  # width, height, or a preset
    batch = form(spec, "/image/batch/convert/webp")["schema"]["properties"]["files"]
    assert (batch["minItems"], batch["maxItems"], batch["items"]["minLength"]) == (1, 20, 1)
    assert "image/jpeg" in form(spec, "/image/convert/webp")["encoding"]["file"]["contentType"]
    assert "video/mp4" in form(spec, "/video/convert")["encoding"]["file"]["contentType"]


def test_thumbnail_defaults_are_the_previous_services(spec: dict) -> None:
    props = form(spec, "/video/thumbnail")["schema"]["properties"]
    assert (props["timestamp"]["default"], props["format"]["default"]) == ("00:00:01", "webp")
    assert set(props["format"]["enum"]) == {"webp", "jpeg", "png"}


def test_every_upload_error_status_is_described(spec: dict) -> None:
    responses = spec["paths"]["/api/v1/image/convert/webp"]["post"]["responses"]
    assert {"400", "401", "408", "413", "415", "422", "429", "503"} <= set(responses)
    assert "image/png" in responses["415"]["description"]
    assert "MAX_ACTIVE_JOBS_PER_USER" in responses["429"]["description"]
    assert (
        "video/webm"
        in spec["paths"]["/api/v1/video/trim"]["post"]["responses"]["415"]["description"]
    )


def test_delete_answers_204_without_a_body(spec: dict) -> None:
    delete = spec["paths"]["/api/v1/jobs/{job_id}"]["delete"]["responses"]
    assert "204" in delete
    assert "content" not in delete["204"]
    assert "200" not in delete


def test_options_lists_every_method_of_the_path(client: TestClient[Litestar]) -> None:
    response = client.options("/api/v1/jobs/0b8f3c4e-5f0e-4d2b-9a8e-0c8f1d2e3a4b")
    assert response.status_code == 204
    assert response.headers["allow"] == "DELETE, GET, OPTIONS"
    assert client.options("/api/v1/jobs").headers["allow"] == "GET, OPTIONS"


@pytest.mark.parametrize("width", [None, 100])
@pytest.mark.parametrize("height", [None, 100])
@pytest.mark.parametrize("fit", [None, "cover", "contain", "fill", "inside"])
def test_the_resize_schema_states_which_sides_each_fit_needs(
    spec: dict, width: int | None, height: int | None, fit: str | None
) -> None:
    # Found by the schemathesis run: fit fill with one side was schema-valid, and answered 422.
    given = {k: v for k, v in {"width": width, "height": height, "fit": fit}.items() if v}
    schema = form(spec, "/image/resize")["schema"]
    body = {"file": "x", **given}
    try:
        texts = {name: str(value) for name, value in given.items()}
        mediajob_spec(ENDPOINTS["/image/resize"], texts, "ns/uploads/id/input")
    except InvalidFieldsError:
        accepted = False
    else:
        accepted = True
    assert Draft202012Validator(schema).is_valid(body) == accepted
