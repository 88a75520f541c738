"""The upload endpoints' forms and the MediaJob specs they become (pure)."""

from __future__ import annotations

import pytest

from mediaflow_api.jobs.model import OPERATIONS, JobType
from mediaflow_api.problems import Problem
from mediaflow_api.uploads.forms import (
    ENDPOINTS,
    MAX_BATCH_FILES,
    InvalidFieldsError,
    MediaKind,
    RateGroup,
    check_fields_so_far,
    mediajob_spec,
)
from mediaflow_api.uploads.openapi import request_body
from mediaflow_api.uploads.service import multipart_boundary, sniff
from mediaflow_core.mediajob import MediaJobSpec

pytestmark = pytest.mark.unit

KEY = "ns/uploads/id/input"


def spec(path: str, **fields: str) -> dict:
    return mediajob_spec(ENDPOINTS[path], fields, KEY)


def problems(path: str, **fields: str) -> list[tuple[str | None, str]]:
    with pytest.raises(InvalidFieldsError) as caught:
        spec(path, **fields)
    return caught.value.errors


def test_the_previous_services_endpoints_all_exist() -> None:
    assert sorted(ENDPOINTS) == sorted(
        [
            "/image/convert/webp",
            "/image/convert/avif",
            "/image/convert/format",
            "/image/resize",
            "/image/batch/convert/webp",
            "/image/batch/convert/avif",
            "/image/batch/convert/format",
            "/video/convert",
            "/video/rotate",
            "/video/resize",
            "/video/trim",
            "/video/thumbnail",
            "/image/renditions",  # ours, additive
        ]
    )
    for endpoint in ENDPOINTS.values():
        assert OPERATIONS[endpoint.job_type] is endpoint.operation
        assert endpoint.kind is (
            MediaKind.VIDEO if endpoint.operation.is_video else MediaKind.IMAGE
        )
        assert (endpoint.file_field, endpoint.max_files) == (
            ("files", MAX_BATCH_FILES) if endpoint.batch else ("file", 1)
        )
        assert endpoint.rate_group is (
            RateGroup.BATCH if endpoint.batch else RateGroup(endpoint.kind.value)
        )


@pytest.mark.parametrize(
    ("path", "options"),
    [
        ("/image/convert/webp", {"format": "webp", "quality": 80, "lossless": False}),
        ("/image/convert/avif", {"format": "avif", "quality": 60}),
        ("/video/convert", {"container": "mp4", "preset": "medium"}),
        ("/video/rotate", {"degrees": 90, "metadataOnly": False}),
        ("/video/thumbnail", {"timestamp": "00:00:01", "format": "webp"}),
    ],
)
def test_defaults_are_the_previous_services(path: str, options: dict) -> None:
    result = spec(path)
    field = next(k for k in result if k not in ("operation", "input"))
    assert result[field] == options
    assert result["input"] == {"object": {"key": KEY}}


def test_every_spec_is_a_valid_mediajob_spec() -> None:
    examples = {
        "/image/convert/format": {"output_format": "jpg"},
        "/image/batch/convert/format": {"output_format": "tif"},
        "/image/resize": {"width": "100"},
        "/video/resize": {"height": "360"},
        "/video/trim": {"start_time": "00:00:01", "end_time": "00:00:02.500"},
        "/image/renditions": {"renditions": '[{"name": "a", "format": "avif", "width": 9}]'},
    }
    for path, endpoint in ENDPOINTS.items():
        result = mediajob_spec(endpoint, examples.get(path, {}), KEY)
        assert MediaJobSpec.model_validate(result).operation is endpoint.operation


def test_form_text_is_read_like_the_previous_service() -> None:
    assert spec("/image/convert/webp", quality="55", lossless="true")["imageConvert"] == {
        "format": "webp",
        "quality": 55,
        "lossless": True,
    }
    assert spec("/image/convert/format", output_format=".JPG")["imageConvert"]["format"] == "jpeg"
    assert spec("/image/convert/format", output_format="tif")["imageConvert"]["format"] == "tiff"
    assert spec("/image/resize", width="10", height="20")["imageResize"] == {
        "fit": "cover",
        "width": 10,
        "height": 20,
    }
    # One side only: cover (the default) scales to it.
    assert spec("/image/resize", width="10")["imageResize"] == {"fit": "inside", "width": 10}
    assert spec("/video/rotate", degrees="270", no_transcode="1")["videoRotate"] == {
        "degrees": 270,
        "metadataOnly": True,
    }
    assert spec("/video/resize", width="640", keep_aspect="false")["videoResize"] == {
        "keepAspect": False,
        "width": 640,
    }
    # Unknown fields (e.g. notify_email from newer clients) are ignored, as before.
    assert spec("/video/thumbnail", notify_email="a@b.c")["videoThumbnail"] == {
        "timestamp": "00:00:01",
        "format": "webp",
    }


@pytest.mark.parametrize(
    ("given", "codec"),
    [
        ("libx264", "h264"),
        ("libx265", "h265"),
        ("hevc", "h265"),
        ("libvpx-vp9", "vp9"),
        ("libaom-av1", "av1"),
        ("libsvtav1", "av1"),
        ("AV1", "av1"),
    ],
)
def test_ffmpeg_encoder_names_are_accepted_as_codecs(given: str, codec: str) -> None:
    options = spec("/video/convert", output_format="mkv", codec=given)["videoConvert"]
    assert options["codec"] == codec


def test_an_empty_codec_means_the_containers_default() -> None:
    assert "codec" not in spec("/video/convert", output_format="webm", codec="")["videoConvert"]


@pytest.mark.parametrize(
    ("path", "fields", "field"),
    [
        ("/image/convert/webp", {"quality": "101"}, "quality"),
        ("/image/convert/webp", {"quality": "high"}, "quality"),
        ("/image/convert/webp", {"lossless": "perhaps"}, "lossless"),
        ("/image/convert/format", {}, "output_format"),
        ("/image/convert/format", {"output_format": "heic"}, "output_format"),
        ("/image/resize", {"width": "0"}, "width"),
        ("/image/resize", {"width": "20000"}, "width"),
        ("/image/resize", {"fit": "stretch"}, "fit"),
        ("/video/convert", {"output_format": "avi"}, "output_format"),
        ("/video/convert", {"codec": "mpeg2"}, "codec"),
        ("/video/convert", {"crf": "64"}, "crf"),
        ("/video/convert", {"preset": "warp"}, "preset"),
        ("/video/rotate", {"degrees": "45"}, "degrees"),
        ("/video/resize", {"width": "1"}, "width"),
        ("/video/trim", {"end_time": "00:00:02"}, "start_time"),
        ("/video/trim", {"start_time": "1:00", "end_time": "00:00:02"}, "start_time"),
        ("/video/thumbnail", {"timestamp": "00:61:00"}, "timestamp"),
    ],
)
def test_invalid_fields_are_named(path: str, fields: dict[str, str], field: str) -> None:
    assert field in [f for f, _ in problems(path, **fields)]


@pytest.mark.parametrize(
    ("path", "fields", "message"),
    [
        ("/video/convert", {"output_format": "webm", "codec": "h264"}, "h264 cannot go in webm"),
        ("/video/convert", {"codec": "h265", "crf": "55"}, "crf for h265 must be between 0 and 51"),
        ("/video/trim", {"start_time": "00:00:03", "end_time": "00:00:03"}, "must be after start"),
        ("/image/resize", {}, "at least one of width and height"),
        ("/image/resize", {"width": "5", "fit": "fill"}, "needs both width and height"),
        ("/video/resize", {}, "at least one of width and height"),
    ],
)
def test_combinations_the_options_models_refuse(path: str, fields: dict, message: str) -> None:
    ((field, text),) = problems(path, **fields)
    assert field is None
    assert message in text


def test_fields_so_far_ignore_what_may_still_come() -> None:
    trim = ENDPOINTS["/video/trim"]
    check_fields_so_far(trim, {})  # start_time and end_time may follow the file
    check_fields_so_far(trim, {"start_time": "00:00:01"})
    with pytest.raises(InvalidFieldsError) as caught:
        check_fields_so_far(trim, {"start_time": "soon"})
    assert [f for f, _ in caught.value.errors] == ["start_time"]


@pytest.mark.parametrize(
    "content_type",
    [None, "", "application/json", "multipart/form-data", "multipart/mixed; boundary=x"],
)
def test_only_multipart_form_data_with_a_boundary_is_read(content_type: str | None) -> None:
    with pytest.raises(Problem) as caught:
        multipart_boundary(content_type)
    assert caught.value.status_code == 415


def test_the_boundary_is_taken_from_the_content_type() -> None:
    assert multipart_boundary('multipart/form-data; boundary="a b"') == "a b"
    assert multipart_boundary("multipart/form-data; boundary=xyz") == "xyz"


PNG_HEAD = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
)


def test_sniffing_uses_the_content_not_the_name() -> None:
    assert sniff(PNG_HEAD, MediaKind.IMAGE, "photo.mp4") == "image/png"
    with pytest.raises(Problem) as caught:
        sniff(PNG_HEAD, MediaKind.VIDEO, "clip.mp4")
    assert caught.value.status_code == 415
    assert "clip.mp4: the input is image/png content" in caught.value.detail
    with pytest.raises(Problem):
        sniff(b"<svg xmlns='http://www.w3.org/2000/svg'/>", MediaKind.IMAGE, "a.png")
    ts = b"".join(b"\x47" + bytes(187) for _ in range(8))
    assert sniff(ts, MediaKind.VIDEO, "clip.ts") == "video/mp2t"


def test_every_endpoint_documents_its_form() -> None:
    for endpoint in ENDPOINTS.values():
        body = request_body(endpoint)
        schema = body.content["multipart/form-data"].schema
        assert schema.required[0] == endpoint.file_field
        fields = set(endpoint.form.model_fields)
        # and `preset` (issue 15): a preset's name, on /video/convert also the encoder speed
        assert set(schema.properties) == {endpoint.file_field, *fields, "preset"}
    convert = request_body(ENDPOINTS["/video/convert"]).content["multipart/form-data"].schema
    assert convert.properties["preset"].any_of[0].enum[0] == "ultrafast"
    assert convert.properties["crf"].maximum == 63
    assert JobType.VIDEO_CONVERT is ENDPOINTS["/video/convert"].job_type
