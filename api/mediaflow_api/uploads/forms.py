"""The form of each upload endpoint, as the previous service defined it, and the MediaJob
spec it becomes (pure: no I/O).

Field names and defaults are the previous service's, so its clients keep working: for
example `/video/convert` still accepts `codec=libx264`, and `/image/convert/webp` defaults
to quality 80. Unknown fields are ignored, as they were. Parameter bounds are checked twice:
here (so a bad request is refused before anything is stored) and by the MediaJob options
models (the single source of truth for what the operator accepts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mediaflow_api.jobs.model import JobType
from mediaflow_core.mediajob import (
    MAX_NOTIFY_URL_LENGTH,
    NOTIFY_URL_PATTERN,
    OPTIONS_FIELD,
    PRESET_NAME_PATTERN,
    PresetRef,
)
from mediaflow_core.options import (
    MAX_RENDITIONS,
    TIMESTAMP_PATTERN,
    Container,
    FitMode,
    ImageFormat,
    ImageRenditionsOptions,
    Operation,
    OptionsError,
    Preset,
    ThumbnailFormat,
    VideoCodec,
    parse_options,
)
from mediaflow_core.preset import PresetSpec

PRESET_NAME_MAX = 253

MAX_BATCH_FILES = 20
# The previous service took ffmpeg's encoder names; ours are codec names. Both are accepted.
CODEC_ALIASES: dict[str, VideoCodec] = {
    "h264": VideoCodec.H264,
    "libx264": VideoCodec.H264,
    "avc": VideoCodec.H264,
    "h265": VideoCodec.H265,
    "hevc": VideoCodec.H265,
    "libx265": VideoCodec.H265,
    "vp9": VideoCodec.VP9,
    "libvpx-vp9": VideoCodec.VP9,
    "av1": VideoCodec.AV1,
    "libaom-av1": VideoCodec.AV1,
    "libsvtav1": VideoCodec.AV1,
    "libdav1d": VideoCodec.AV1,
}
FORMAT_ALIASES: dict[str, ImageFormat] = {
    "png": ImageFormat.PNG,
    "jpg": ImageFormat.JPEG,
    "jpeg": ImageFormat.JPEG,
    "gif": ImageFormat.GIF,
    "bmp": ImageFormat.BMP,
    "tif": ImageFormat.TIFF,
    "tiff": ImageFormat.TIFF,
    "webp": ImageFormat.WEBP,
    "avif": ImageFormat.AVIF,
}


class MediaKind(StrEnum):
    """Which allowlist an upload is sniffed against."""

    IMAGE = "image"
    VIDEO = "video"


class InvalidFieldsError(ValueError):
    """Form fields that are invalid: [(field, message)], for a 422 with `errors`."""

    def __init__(self, errors: list[tuple[str | None, str]]) -> None:
        super().__init__("; ".join(f"{f}: {m}" if f else m for f, m in errors))
        self.errors = errors


class _Form(BaseModel):
    # Form values arrive as text: lax mode turns "80" into 80 and "false"/"0"/"off" into False.
    model_config = ConfigDict(extra="ignore", frozen=True)

    callback_url: str | None = Field(
        default=None,
        max_length=MAX_NOTIFY_URL_LENGTH,
        pattern=NOTIFY_URL_PATTERN,
        description="An http(s) URL to announce the end of each job to: a signed POST "
        "(Standard Webhooks headers, a CloudEvents JSON body), verified with your signing "
        "secret (GET /api/v1/webhooks/secret). Hosts on public addresses only.",
    )

    def options(self) -> dict[str, Any]:
        """The MediaJob options (camelCase, without unset values) of this form."""
        raise NotImplementedError

    @classmethod
    def json_parts(cls) -> dict[str, dict[str, Any]]:
        """Fields sent as JSON text (a part of type application/json): the JSON schema of
        each one's value, for the OpenAPI description of the form."""
        return {}


def _quality(default: int) -> Any:
    return Field(
        default=default, ge=1, le=100, description="1 (smallest) to 100 (best), for every format."
    )


class WebpForm(_Form):
    quality: int = _quality(80)
    lossless: bool = Field(default=False, description="Encode losslessly (quality is ignored).")

    def options(self) -> dict[str, Any]:
        return {"format": "webp", "quality": self.quality, "lossless": self.lossless}


class AvifForm(_Form):
    quality: int = _quality(60)

    def options(self) -> dict[str, Any]:
        return {"format": "avif", "quality": self.quality}


class FormatForm(_Form):
    output_format: str = Field(
        description="png, jpg/jpeg, gif, bmp, tiff/tif, webp or avif.",
        json_schema_extra={"enum": sorted(FORMAT_ALIASES)},
    )
    quality: int = _quality(85)

    @field_validator("output_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        name = value.strip().lower().lstrip(".")
        if name not in FORMAT_ALIASES:
            raise ValueError(f"must be one of {', '.join(sorted(FORMAT_ALIASES))}")
        return FORMAT_ALIASES[name].value

    def options(self) -> dict[str, Any]:
        return {"format": self.output_format, "quality": self.quality}


# "width or height" (both optional one by one), stated in the OpenAPI schema as well.
_WIDTH_OR_HEIGHT = ConfigDict(
    extra="ignore",
    frozen=True,
    json_schema_extra={"anyOf": [{"required": ["width"]}, {"required": ["height"]}]},
)


# Fit fill stretches to both sides: with one side, only the fits that keep the aspect ratio.
_ONE_SIDE_FITS = [mode.value for mode in FitMode if mode is not FitMode.FILL]


class ImageResizeForm(_Form):
    """Give width, height or both; fit fill needs both."""

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        json_schema_extra={
            "anyOf": [
                {"required": ["width", "height"]},
                {"required": ["width"], "properties": {"fit": {"enum": _ONE_SIDE_FITS}}},
                {"required": ["height"], "properties": {"fit": {"enum": _ONE_SIDE_FITS}}},
            ]
        },
    )
    width: int | None = Field(default=None, ge=1, le=16384, description="Width in pixels.")
    height: int | None = Field(default=None, ge=1, le=16384, description="Height in pixels.")
    fit: FitMode = Field(
        default=FitMode.COVER,
        description="cover (fill the box, crop the overflow), contain (fit and pad), fill "
        "(stretch), inside (fit). With only width or only height, cover, contain and inside "
        "all scale to that side keeping the aspect ratio; fill needs both.",
    )

    def options(self) -> dict[str, Any]:
        fit = self.fit
        if (self.width is None) != (self.height is None) and fit in (
            FitMode.COVER,
            FitMode.CONTAIN,
        ):
            # With one side given, covering or containing the box means scaling to that side.
            fit = FitMode.INSIDE
        options: dict[str, Any] = {"fit": fit.value}
        if self.width is not None:
            options["width"] = self.width
        if self.height is not None:
            options["height"] = self.height
        return options


class VideoConvertForm(_Form):
    output_format: Container = Field(default=Container.MP4, description="mp4, webm or mkv.")
    codec: str | None = Field(
        default=None,
        description="h264 (or libx264), h265 (libx265), vp9 (libvpx-vp9) or av1 (libaom-av1, "
        "libsvtav1). Default: h264 for mp4 and mkv, vp9 for webm.",
        json_schema_extra={"enum": sorted(CODEC_ALIASES)},
    )
    crf: int | None = Field(
        default=None,
        ge=0,
        le=63,
        description="Lower is better: 0-51 for h264/h265, 0-63 for vp9/av1. Default: 23 for "
        "h264, 28 h265, 32 vp9, 35 av1.",
    )
    preset: Preset = Field(default=Preset.MEDIUM, description="ultrafast ... veryslow.")

    @field_validator("codec")
    @classmethod
    def _known_codec(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        name = value.strip().lower()
        if name not in CODEC_ALIASES:
            raise ValueError(f"must be one of {', '.join(sorted(CODEC_ALIASES))}")
        return CODEC_ALIASES[name].value

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "container": self.output_format.value,
            "preset": self.preset.value,
        }
        if self.codec is not None:
            options["codec"] = self.codec
        if self.crf is not None:
            options["crf"] = self.crf
        return options


class VideoRotateForm(_Form):
    # An int checked by hand: a Literal would refuse the text "90" a form sends.
    degrees: int = Field(
        default=90,
        description="Clockwise: 90, 180 or 270.",
        json_schema_extra={"enum": [90, 180, 270]},
    )
    no_transcode: bool = Field(
        default=False, description="Only set the rotation flag (MP4/MOV input; no re-encoding)."
    )

    @field_validator("degrees")
    @classmethod
    def _quarter_turn(cls, value: int) -> int:
        if value not in (90, 180, 270):
            raise ValueError("must be 90, 180 or 270")
        return value

    def options(self) -> dict[str, Any]:
        return {"degrees": self.degrees, "metadataOnly": self.no_transcode}


class VideoResizeForm(_Form):
    """Give width, height or both."""

    model_config = _WIDTH_OR_HEIGHT
    width: int | None = Field(default=None, ge=2, le=8192, description="Width in pixels.")
    height: int | None = Field(default=None, ge=2, le=8192, description="Height in pixels.")
    keep_aspect: bool = Field(default=True, description="Fit within width x height.")

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"keepAspect": self.keep_aspect}
        if self.width is not None:
            options["width"] = self.width
        if self.height is not None:
            options["height"] = self.height
        return options


class VideoTrimForm(_Form):
    """end_time must be after start_time."""

    start_time: str = Field(pattern=TIMESTAMP_PATTERN, description="HH:MM:SS[.mmm].")
    end_time: str = Field(pattern=TIMESTAMP_PATTERN, description="HH:MM:SS[.mmm], after start.")

    def options(self) -> dict[str, Any]:
        return {"start": self.start_time, "end": self.end_time}


class VideoThumbnailForm(_Form):
    # The previous service's defaults: a WebP of the frame at one second (its clients save
    # the answer as .webp). The MediaJob resource keeps its own defaults (jpeg at 00:00:00).
    timestamp: str = Field(
        default="00:00:01",
        pattern=TIMESTAMP_PATTERN,
        description="HH:MM:SS[.mmm]; a time past the video's end makes the job fail.",
    )
    format: ThumbnailFormat = Field(
        default=ThumbnailFormat.WEBP, description="Image format of the thumbnail."
    )

    def options(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "format": self.format.value}


def _rendition_list(text: str) -> list[Any]:
    """The renditions of a form's JSON text, validated by the MediaJob's own models (so a
    422 says what `kubectl apply` would say); ValueError otherwise."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError(
            'must be a JSON list of renditions, e.g. [{"name": "w320-webp", "format": "webp", '
            '"width": 320}]'
        ) from None
    try:
        parse_options(Operation.IMAGE_CONVERT.value, {"renditions": data})
    except OptionsError as error:
        raise ValueError(str(error).split(": ", 1)[-1]) from None
    return data


class RenditionsForm(_Form):
    """Several outputs of one image, decoded once."""

    renditions: str = Field(
        description=f"A JSON list of 1 to {MAX_RENDITIONS} renditions, each "
        '{"name", "format", "quality"?, "width"?, "height"?}: name a short lowercase id '
        "unique in the list (letters, digits, '-'; at most 32 characters), format webp, avif, "
        "png or jpeg, quality 1-100 (default 85), width and height optional bounds in pixels "
        "(the picture fits inside them keeping its aspect ratio and is never enlarged). E.g. "
        '[{"name": "w320-webp", "format": "webp", "width": 320}, '
        '{"name": "w320-avif", "format": "avif", "width": 320, "quality": 60}].',
    )

    @classmethod
    def json_parts(cls) -> dict[str, dict[str, Any]]:
        schema = ImageRenditionsOptions.model_json_schema(by_alias=True)
        return {"renditions": {**schema["properties"]["renditions"], "$defs": schema["$defs"]}}

    @field_validator("renditions")
    @classmethod
    def _valid_list(cls, value: str) -> str:
        _rendition_list(value)
        return value

    def options(self) -> dict[str, Any]:
        renditions = ImageRenditionsOptions.model_validate(
            {"renditions": _rendition_list(self.renditions)}
        ).renditions
        return {"renditions": [r.model_dump(by_alias=True, exclude_none=True) for r in renditions]}


class RateGroup(StrEnum):
    """Endpoints sharing a per-user rate limit (the previous service's groups)."""

    IMAGE = "image"
    VIDEO = "video"
    BATCH = "batch"


@dataclass(frozen=True)
class UploadEndpoint:
    """What one upload endpoint accepts and which MediaJob it makes of it."""

    path: str
    form: type[_Form]
    operation: Operation
    job_type: JobType
    kind: MediaKind
    rate_group: RateGroup
    batch: bool = False

    @property
    def file_field(self) -> str:
        return "files" if self.batch else "file"

    @property
    def max_files(self) -> int:
        return MAX_BATCH_FILES if self.batch else 1


def _endpoint(
    path: str,
    form: type[_Form],
    operation: Operation,
    job_type: JobType,
    batch: bool = False,
) -> UploadEndpoint:
    kind = MediaKind.VIDEO if operation.is_video else MediaKind.IMAGE
    group = RateGroup.BATCH if batch else RateGroup(kind.value)
    return UploadEndpoint(path, form, operation, job_type, kind, group, batch)


IC, IR = Operation.IMAGE_CONVERT, Operation.IMAGE_RESIZE
ENDPOINTS: dict[str, UploadEndpoint] = {
    e.path: e
    for e in (
        _endpoint("/image/convert/webp", WebpForm, IC, JobType.IMAGE_CONVERT_WEBP),
        _endpoint("/image/convert/avif", AvifForm, IC, JobType.IMAGE_CONVERT_AVIF),
        _endpoint("/image/convert/format", FormatForm, IC, JobType.IMAGE_CONVERT_FORMAT),
        _endpoint("/image/resize", ImageResizeForm, IR, JobType.IMAGE_RESIZE),
        _endpoint("/image/batch/convert/webp", WebpForm, IC, JobType.IMAGE_CONVERT_WEBP, True),
        _endpoint("/image/batch/convert/avif", AvifForm, IC, JobType.IMAGE_CONVERT_AVIF, True),
        _endpoint(
            "/image/batch/convert/format", FormatForm, IC, JobType.IMAGE_CONVERT_FORMAT, True
        ),
        _endpoint("/image/renditions", RenditionsForm, IC, JobType.IMAGE_RENDITIONS),
        _endpoint(
            "/video/convert", VideoConvertForm, Operation.VIDEO_CONVERT, JobType.VIDEO_CONVERT
        ),
        _endpoint("/video/rotate", VideoRotateForm, Operation.VIDEO_ROTATE, JobType.VIDEO_ROTATE),
        _endpoint("/video/resize", VideoResizeForm, Operation.VIDEO_RESIZE, JobType.VIDEO_RESIZE),
        _endpoint("/video/trim", VideoTrimForm, Operation.VIDEO_TRIM, JobType.VIDEO_TRIM),
        _endpoint(
            "/video/thumbnail",
            VideoThumbnailForm,
            Operation.VIDEO_THUMBNAIL,
            JobType.VIDEO_THUMBNAIL,
        ),
    )
}


def _problems(error: ValidationError, *, ignore_missing: bool) -> list[tuple[str | None, str]]:
    problems: list[tuple[str | None, str]] = []
    for item in error.errors(include_url=False):
        if ignore_missing and item["type"] == "missing":
            continue
        field = ".".join(str(p) for p in item["loc"]) or None
        problems.append((field, item["msg"].removeprefix("Value error, ")))
    return problems


# Presets (issue 15): `preset=<name>` instead of the endpoint's option fields.
PRESET_FIELD = "preset"
PRESET_NAME_RE = re.compile(PRESET_NAME_PATTERN)
# /video/convert had a field `preset` before presets existed: the encoder's speed. Its values
# keep that meaning there, so its clients are unaffected; any other value names a preset.
ENCODER_SPEEDS = frozenset(p.value for p in Preset)


def named_preset(endpoint: UploadEndpoint, fields: Mapping[str, str]) -> str | None:
    """The preset a request names in its `preset` field, or None (the endpoint's own option
    fields then); InvalidFieldsError for a name no preset can have."""
    value = fields.get(PRESET_FIELD)
    if value is None:
        return None
    if endpoint.operation is Operation.VIDEO_CONVERT and value in ENCODER_SPEEDS:
        return None
    if len(value) > PRESET_NAME_MAX or not PRESET_NAME_RE.match(value):
        raise InvalidFieldsError(
            [(PRESET_FIELD, "must be a preset's name: lowercase letters, digits, '-' and '.'")]
        )
    return value


def preset_misfit(endpoint: UploadEndpoint, name: str, preset: PresetSpec) -> str | None:
    """Why a preset cannot serve an endpoint (the message of a 422), or None when it fits:
    its operation must be the endpoint's, and an ImageConvert preset must make what the
    endpoint promises (WebP, AVIF, one image of a format, or renditions)."""
    if preset.operation is not endpoint.operation:
        return (
            f"preset {name!r} is for operation {preset.operation.value}; {endpoint.path} runs "
            f"{endpoint.operation.value}"
        )
    if endpoint.job_type is JobType.IMAGE_RENDITIONS and preset.renditions is None:
        return f"preset {name!r} has no renditions; {endpoint.path} makes renditions"
    if endpoint.operation is Operation.IMAGE_CONVERT and endpoint.job_type is not (
        JobType.IMAGE_RENDITIONS
    ):
        if preset.image_convert is None:
            return (
                f"preset {name!r} makes renditions; use /image/renditions for it, not "
                f"{endpoint.path}"
            )
        wanted = {
            JobType.IMAGE_CONVERT_WEBP: ImageFormat.WEBP,
            JobType.IMAGE_CONVERT_AVIF: ImageFormat.AVIF,
        }.get(endpoint.job_type)
        if wanted is not None and preset.image_convert.format is not wanted:
            return (
                f"preset {name!r} converts to {preset.image_convert.format.value}; "
                f"{endpoint.path} converts to {wanted.value}"
            )
    return None


def endpoints_for(preset: PresetSpec) -> list[str]:
    """The upload endpoints a preset can serve (`preset=<name>`)."""
    return [path for path, e in ENDPOINTS.items() if preset_misfit(e, "", preset) is None]


def check_fields_so_far(endpoint: UploadEndpoint, fields: Mapping[str, str]) -> None:
    """Raise InvalidFieldsError if a field given so far is invalid (fields still to come may
    be missing). Called when a file starts, so that a bad parameter sent before the file
    is refused before any byte is stored. With a preset named, the endpoint's option fields
    are not read."""
    if named_preset(endpoint, fields) is not None:
        return
    try:
        endpoint.form.model_validate(dict(fields))
    except ValidationError as error:
        if problems := _problems(error, ignore_missing=True):
            raise InvalidFieldsError(problems) from None


def mediajob_spec(
    endpoint: UploadEndpoint,
    fields: Mapping[str, str],
    key: str,
    preset: PresetRef | None = None,
) -> dict[str, Any]:
    """The MediaJob spec for a file stored at `key` with these form fields; InvalidFieldsError
    when the form is invalid, including combinations only the options model knows (e.g.
    codec vp9 in mp4). With `preset` (the one the request named, found), the MediaJob names
    it instead of options."""
    if preset is not None:
        return {
            "operation": endpoint.operation.value,
            "input": {"object": {"key": key}},
            "preset": preset.model_dump(mode="json", by_alias=True),
        }
    try:
        form = endpoint.form.model_validate(dict(fields))
    except ValidationError as error:
        raise InvalidFieldsError(_problems(error, ignore_missing=False)) from None
    options = form.options()
    try:
        parse_options(endpoint.operation.value, options)
    except OptionsError as error:
        detail = str(error).split(": ", 1)[-1] if ": " in str(error) else str(error)
        raise InvalidFieldsError([(None, detail)]) from None
    # Renditions are a field of the spec of their own, instead of the operation's options.
    fields_of_spec = (
        options
        if isinstance(form, RenditionsForm)
        else {OPTIONS_FIELD[endpoint.operation]: options}
    )
    return {
        "operation": endpoint.operation.value,
        "input": {"object": {"key": key}},
        **fields_of_spec,
    }


def batch_spec(
    endpoint: UploadEndpoint,
    fields: Mapping[str, str],
    keys: list[str],
    preset: PresetRef | None = None,
) -> dict[str, Any]:
    """The spec of a batch request's one MediaJob: the files stored at `keys` as its
    inputs, one operation and its options for all (InvalidFieldsError as `mediajob_spec`)."""
    spec = mediajob_spec(endpoint, fields, keys[0], preset)
    del spec["input"]
    return {**spec, "inputs": [{"object": {"key": key}} for key in keys]}
