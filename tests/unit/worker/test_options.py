"""The operation option models: defaults, bounds, combinations, error messages, schema."""

import pytest

from mediaflow_core.options import (
    OPTIONS_MODELS,
    ImageFormat,
    Operation,
    OptionsError,
    VideoCodec,
    parse_options,
    timestamp_seconds,
)


def test_defaults_and_camel_case() -> None:
    opts = parse_options("ImageResize", '{"width": 10, "allowUpscale": true}')
    assert opts.allow_upscale is True
    assert opts.fit.value == "inside"
    assert opts.quality == 85
    assert opts.format is None
    convert = parse_options("VideoConvert", {"container": "webm"})
    assert convert.effective_codec is VideoCodec.VP9
    assert convert.effective_crf == 32
    assert convert.preset.value == "medium"
    thumb = parse_options("VideoThumbnail", None)
    assert thumb.format.value == "jpeg"
    assert thumb.timestamp_seconds == 0


@pytest.mark.parametrize(
    ("operation", "options", "message"),
    [
        ("Nope", "{}", "unknown operation 'Nope'; expected one of ImageConvert"),
        ("ImageConvert", "{", "not valid JSON"),
        ("ImageConvert", "[1]", "must be a JSON object"),
        ("ImageConvert", '{"format": "heic"}', "format: Input should be"),
        ("ImageConvert", '{"format": "png", "lossless": true}', "lossless is only supported"),
        ("ImageConvert", '{"format": "png", "quality": 0}', "quality: Input should be greater"),
        ("ImageConvert", '{"format": "png", "colour": 1}', "colour: Extra inputs"),
        ("ImageResize", "{}", "at least one of width and height"),
        ("ImageResize", '{"width": 20000}', "width: Input should be less than or equal to 16384"),
        ("ImageResize", '{"width": 10, "fit": "cover"}', "fit cover needs both"),
        ("VideoConvert", '{"container": "webm", "codec": "h264"}', "use one of vp9, av1"),
        ("VideoConvert", '{"container": "mp4", "codec": "vp9"}', "use one of h264, h265, av1"),
        (
            "VideoConvert",
            '{"container": "mkv", "crf": 60}',
            "crf for h264 must be between 0 and 51",
        ),
        ("VideoConvert", '{"container": "mp4", "crf": 64}', "crf: Input should be less"),
        ("VideoConvert", '{"container": "mp4", "preset": "placebo"}', "preset: Input should be"),
        ("VideoRotate", '{"degrees": 45}', "degrees: Input should be 90, 180 or 270"),
        ("VideoResize", '{"width": 1}', "width: Input should be greater than or equal to 2"),
        ("VideoTrim", '{"start": "00:00:02", "end": "00:00:01"}', "end 00:00:01 must be after"),
        ("VideoTrim", '{"start": "0:0:1", "end": "00:00:02"}', "start: String should match"),
        ("VideoTrim", '{"start": "00:61:00", "end": "01:00:00"}', "start: String should match"),
        ("VideoThumbnail", '{"timestamp": "00:00:01.5"}', "timestamp: String should match"),
        ("VideoThumbnail", '{"format": "gif"}', "format: Input should be"),
    ],
)
def test_errors_are_precise(operation: str, options: str, message: str) -> None:
    with pytest.raises(OptionsError, match=None) as info:
        parse_options(operation, options)
    assert message in str(info.value)


def test_valid_combinations() -> None:
    assert parse_options("VideoConvert", {"container": "mp4", "codec": "av1", "crf": 63})
    assert parse_options("VideoConvert", {"container": "mkv", "codec": "vp9", "crf": 63})
    assert parse_options("ImageConvert", {"format": "webp", "lossless": True}).lossless
    trim = parse_options("VideoTrim", {"start": "00:00:00.500", "end": "00:00:01.250"})
    assert (trim.start_seconds, trim.end_seconds) == (0.5, 1.25)


def test_timestamps() -> None:
    assert timestamp_seconds("01:02:03.456") == 3723.456
    assert timestamp_seconds("00:00:00") == 0
    with pytest.raises(ValueError, match="HH:MM:SS"):
        timestamp_seconds("1:00")


def test_every_operation_has_a_model_with_described_bounded_fields() -> None:
    assert set(OPTIONS_MODELS) == set(Operation)
    for model in OPTIONS_MODELS.values():
        schema = model.model_json_schema(by_alias=True)
        assert schema["additionalProperties"] is False
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{model.__name__}.{name} has no description"
            options = prop.get("anyOf", [prop])
            for option in options:
                if option.get("type") == "integer" and name not in ("degrees",):
                    assert "minimum" in option, (model.__name__, name)
                    assert "maximum" in option, (model.__name__, name)
    assert set(ImageFormat) == {
        ImageFormat(x) for x in ("webp", "avif", "png", "jpeg", "gif", "bmp", "tiff")
    }
