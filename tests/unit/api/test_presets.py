"""`preset=<name>` on the upload endpoints and GET /api/v1/presets: the pure parts (which
field names a preset, whether a preset fits an endpoint, the MediaJob spec, the list).
Against the real API and cluster: tests/integration/test_presets.py."""

from __future__ import annotations

import pytest

from mediaflow_api.presets.service import views
from mediaflow_api.uploads.forms import (
    ENDPOINTS,
    InvalidFieldsError,
    check_fields_so_far,
    mediajob_spec,
    named_preset,
    preset_misfit,
)
from mediaflow_core.mediajob import MediaJobSpec, PresetKind, PresetRef
from mediaflow_core.preset import PresetSpec

pytestmark = pytest.mark.unit

WEBP = {"operation": "ImageConvert", "imageConvert": {"format": "webp", "quality": 70}}
RENDITIONS = {"operation": "ImageConvert",
              "renditions": [{"name": "w320", "format": "webp", "width": 320}]}  # fmt: skip
VP9 = {"operation": "VideoConvert", "videoConvert": {"container": "webm"}}


def preset(spec: dict) -> PresetSpec:
    return PresetSpec.model_validate(spec)


def test_the_preset_field_names_a_preset_except_an_encoder_speed_on_video_convert() -> None:
    webp, convert = ENDPOINTS["/image/convert/webp"], ENDPOINTS["/video/convert"]
    assert named_preset(webp, {"preset": "web"}) == "web"
    assert named_preset(webp, {"quality": "80"}) is None
    assert named_preset(convert, {"preset": "slow"}) is None  # the previous meaning
    assert named_preset(convert, {"preset": "web-video"}) == "web-video"
    for wrong in ("Not A Name", "", " web"):  # as the schema's pattern says
        with pytest.raises(InvalidFieldsError):
            named_preset(webp, {"preset": wrong})


def test_with_a_preset_the_option_fields_are_not_required() -> None:
    trim = ENDPOINTS["/video/trim"]
    check_fields_so_far(trim, {"preset": "cut"})  # no start_time, end_time: fine
    spec = mediajob_spec(trim, {"preset": "cut"}, "ns/in", PresetRef(name="cut"))
    assert spec == {
        "operation": "VideoTrim",
        "input": {"object": {"key": "ns/in"}},
        "preset": {"name": "cut", "kind": "MediaPreset"},
    }
    assert MediaJobSpec.model_validate(spec).preset is not None


@pytest.mark.parametrize(
    ("path", "spec", "says"),
    [
        ("/image/convert/webp", WEBP, None),
        ("/image/batch/convert/webp", WEBP, None),
        ("/image/convert/format", WEBP, None),
        ("/image/convert/avif", WEBP, "preset 'p' converts to webp; /image/convert/avif "
                                      "converts to avif"),
        ("/image/renditions", RENDITIONS, None),
        ("/image/renditions", WEBP, "preset 'p' has no renditions; /image/renditions makes "
                                    "renditions"),
        ("/image/convert/webp", RENDITIONS, "preset 'p' makes renditions; use /image/renditions"),
        ("/video/convert", VP9, None),
        ("/image/resize", VP9, "preset 'p' is for operation VideoConvert; /image/resize runs "
                               "ImageResize"),
    ],
)  # fmt: skip
def test_a_preset_fits_an_endpoint_or_the_422_says_why(
    path: str, spec: dict, says: str | None
) -> None:
    found = preset_misfit(ENDPOINTS[path], "p", preset(spec))
    if says is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(says)


def body(name: str, spec: dict, namespace: str | None = None) -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"metadata": meta, "spec": spec}


def test_the_list_says_operation_options_endpoints_and_shadowing() -> None:
    found = views(
        [body("web", WEBP, "mediaflow"), body("broken", {"operation": "VideoTrim"}, "mediaflow")],
        [body("web", RENDITIONS), body("video", VP9)],
    )
    assert [(v.name, v.kind, v.shadowed) for v in found] == [
        ("web", PresetKind.MEDIA_PRESET, False),
        ("video", PresetKind.CLUSTER_MEDIA_PRESET, False),
        ("web", PresetKind.CLUSTER_MEDIA_PRESET, True),
    ]
    web = found[0]
    assert web.operation == "ImageConvert"
    assert web.options == {"imageConvert": {"format": "webp", "quality": 70, "lossless": False}}
    assert set(web.endpoints) == {
        "/image/convert/webp",
        "/image/batch/convert/webp",
        "/image/convert/format",
        "/image/batch/convert/format",
    }
    assert found[2].endpoints == ["/image/renditions"]
