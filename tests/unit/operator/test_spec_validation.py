"""The pydantic models refuse what the CEL rules refuse, with the same words."""

import pytest
from pydantic import ValidationError

from mediaflow_core.mediajob import MediaJobSpec

BASE = {"input": {"object": {"key": "ns/in.png"}}}


def spec(**fields):
    return MediaJobSpec.model_validate({**BASE, **fields})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"operation": "ImageConvert"}, "operation ImageConvert needs spec.imageConvert"),
        (
            {"operation": "ImageConvert", "imageConvert": {"format": "png", "lossless": True}},
            "lossless is only supported for webp",
        ),
        (
            {
                "operation": "ImageConvert",
                "imageConvert": {"format": "webp"},
                "videoTrim": {"start": "00:00:01", "end": "00:00:02"},
            },
            "videoTrim is only allowed with operation VideoTrim",
        ),
        (
            {"operation": "VideoTrim", "videoTrim": {"start": "00:00:02", "end": "00:00:01.500"}},
            "must be after start",
        ),
        (
            {"operation": "VideoConvert", "videoConvert": {"container": "webm", "codec": "h265"}},
            "cannot go in webm",
        ),
        ({"operation": "ImageResize", "imageResize": {"fit": "cover"}}, "at least one of width"),
        ({"operation": "ImageConvert", "imageConvert": {"format": "webp", "quality": 0}}, "1"),
        ({"operation": "Sharpen"}, "operation"),
    ],
)
def test_invalid_specs_are_refused_with_a_reason(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        spec(**fields)
    assert message in str(error.value)


def test_both_or_no_input_is_refused() -> None:
    for source in ({}, {"object": {"key": "a"}, "url": "https://example.invalid/a.png"}):
        with pytest.raises(ValidationError, match=r"exactly one of input\.object and input\.url"):
            MediaJobSpec.model_validate({"input": source, "operation": "VideoThumbnail"})


def test_options_default_when_every_option_has_a_default() -> None:
    parsed = spec(operation="VideoThumbnail")
    assert parsed.options is not None
    assert parsed.options.timestamp == "00:00:00"


def test_inputs_are_one_to_a_hundred_images_instead_of_input() -> None:
    from pydantic import ValidationError

    from mediaflow_core.mediajob import MediaJobSpec

    one = {"object": {"key": "ns/a.jpg"}}
    base = {"operation": "ImageConvert", "imageConvert": {"format": "webp"}}
    assert len(MediaJobSpec.model_validate({**base, "inputs": [one] * 100}).items) == 100
    for bad in (
        {**base, "inputs": [one] * 101},
        {**base, "inputs": []},
        {**base, "inputs": [one], "input": one},
        {**base},
        {
            "operation": "VideoThumbnail",
            "inputs": [one],
            "videoThumbnail": {"timestamp": "00:00:01"},
        },
    ):
        with pytest.raises(ValidationError):
            MediaJobSpec.model_validate(bad)
