"""Typed options of each MediaJob operation (kopf-free; shared by API, operator and worker).

Field descriptions become the CRD schema and `kubectl explain` text, so they are written for users.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from mediaflow_core.formats import (
    CONTAINER_CODECS,
    CRF_RANGE,
    DEFAULT_CODEC,
    DEFAULT_CRF,
    Container,
    FitMode,
    ImageFormat,
    Operation,
    Preset,
    RenditionFormat,
    ThumbnailFormat,
    VideoCodec,
)

TIMESTAMP_PATTERN = r"^[0-9]{2}:[0-5][0-9]:[0-5][0-9](\.[0-9]{3})?$"
_TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)


def timestamp_seconds(value: str) -> float:
    """Seconds in an `HH:MM:SS[.mmm]` timestamp."""
    if not _TIMESTAMP_RE.match(value):
        raise ValueError(f"timestamp {value!r} is not HH:MM:SS or HH:MM:SS.mmm")
    hours, minutes, seconds = value.split(":")
    # Integer milliseconds avoid float drift when comparing start and end.
    millis = round(float(seconds) * 1000)
    return (int(hours) * 3600 + int(minutes) * 60) + millis / 1000


class _Options(BaseModel):
    # defer_build: a worker validates one model, so building all seven at import is wasted time.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        defer_build=True,
    )


Quality = Field(
    default=85,
    ge=1,
    le=100,
    description="Encoding quality from 1 (smallest) to 100 (best), mapped to each format's own "
    "scale. Ignored by lossless formats (png, gif, bmp, tiff).",
)


class ImageConvertOptions(_Options):
    """Options of `ImageConvert`."""

    format: ImageFormat = Field(description="Output image format.")
    quality: int = Quality
    lossless: bool = Field(
        default=False, description="Encode losslessly. Only valid with format webp."
    )

    @model_validator(mode="after")
    def _lossless_only_webp(self) -> Self:
        if self.lossless and self.format is not ImageFormat.WEBP:
            raise ValueError(f"lossless is only supported for webp, not {self.format.value}")
        return self


# A rendition's name: a short lowercase DNS-label-like id. It names the rendition's object key
# (`<prefix>renditions/<name>`), its Secret file (`output-url-<name>`) and its download name.
RENDITION_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
RENDITION_NAME_MAX = 32
# Most renditions of one input: each is an encode (and an object, a URL in the status).
MAX_RENDITIONS = 12
DUPLICATE_RENDITIONS = "rendition names must be unique"


class Rendition(_Options):
    """One output of an ImageConvert with renditions: a format and, optionally, bounds."""

    name: str = Field(
        min_length=1,
        max_length=RENDITION_NAME_MAX,
        pattern=RENDITION_NAME_PATTERN,
        description="Id of the rendition, unique in the list: lowercase letters, digits and "
        "'-', starting and ending with a letter or digit, at most 32 characters (e.g. "
        "'w320-webp'). It names the result's object key and download file name.",
    )
    format: RenditionFormat = Field(description="Output format: webp, avif, png or jpeg.")
    quality: int = Field(
        default=85,
        ge=1,
        le=100,
        description="Encoding quality from 1 (smallest) to 100 (best), mapped to each format's "
        "own scale; ignored by png. Default: 85, as for imageConvert.",
    )
    width: int | None = Field(
        default=None,
        ge=1,
        le=16384,
        description="Largest width in pixels (1-16384). The picture fits inside width and "
        "height keeping its aspect ratio, and is never enlarged. Default: no bound.",
    )
    height: int | None = Field(
        default=None,
        ge=1,
        le=16384,
        description="Largest height in pixels (1-16384); see width. Default: no bound.",
    )


def duplicate_rendition_names(renditions: list[Rendition]) -> list[str]:
    """Names that more than one rendition of the list uses, in order of first use."""
    seen: set[str] = set()
    twice: list[str] = []
    for rendition in renditions:
        if rendition.name in seen and rendition.name not in twice:
            twice.append(rendition.name)
        seen.add(rendition.name)
    return twice


class ImageRenditionsOptions(_Options):
    """What the worker gets for an ImageConvert with `renditions` (as MEDIAFLOW_OPTIONS, under
    operation ImageConvert): the list, decoded once, encoded once per rendition."""

    renditions: list[Rendition] = Field(min_length=1, max_length=MAX_RENDITIONS)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        twice = duplicate_rendition_names(self.renditions)
        if twice:
            raise ValueError(f"{DUPLICATE_RENDITIONS}; used more than once: {', '.join(twice)}")
        return self


class ImageResizeOptions(_Options):
    """Options of `ImageResize`."""

    width: int | None = Field(
        default=None, ge=1, le=16384, description="Target width in pixels (1-16384)."
    )
    height: int | None = Field(
        default=None, ge=1, le=16384, description="Target height in pixels (1-16384)."
    )
    fit: FitMode = Field(
        default=FitMode.INSIDE,
        description="inside: fit within the box, keeping the aspect ratio (one side may be "
        "omitted); contain: fit within the box and pad to exactly the box; cover: fill the box "
        "and crop the overflow, centred; fill: stretch to the box, ignoring the aspect ratio. "
        "cover, contain and fill need both width and height.",
    )
    format: ImageFormat | None = Field(
        default=None, description="Output image format. Default: the input's format."
    )
    quality: int = Quality
    allow_upscale: bool = Field(
        default=False,
        description="Allow enlarging the image. By default a dimension is never made larger "
        "than the input's.",
    )

    @model_validator(mode="after")
    def _dimensions(self) -> Self:
        if self.width is None and self.height is None:
            raise ValueError("at least one of width and height is required")
        if self.fit is not FitMode.INSIDE and (self.width is None or self.height is None):
            raise ValueError(f"fit {self.fit.value} needs both width and height")
        return self


class VideoConvertOptions(_Options):
    """Options of `VideoConvert`."""

    container: Container = Field(description="Output container: mp4, webm or mkv.")
    codec: VideoCodec | None = Field(
        default=None,
        description="Video codec. mp4 allows h264, h265 and av1; webm allows vp9 and av1; mkv "
        "allows all. Default: h264 for mp4 and mkv, vp9 for webm.",
    )
    crf: int | None = Field(
        default=None,
        ge=0,
        le=63,
        description="Constant rate factor: lower is better quality and larger output. 0-51 for "
        "h264 and h265, 0-63 for vp9 and av1. Default: 23 (h264), 28 (h265), 32 (vp9), 35 (av1).",
    )
    preset: Preset = Field(
        default=Preset.MEDIUM,
        description="Encoder speed, named like x264's presets (ultrafast ... veryslow); mapped to "
        "the matching speed setting of vp9 and av1 encoders.",
    )

    @property
    def effective_codec(self) -> VideoCodec:
        """The codec, or the container's default."""
        return self.codec or DEFAULT_CODEC[self.container]

    @property
    def effective_crf(self) -> int:
        """The CRF, or the codec's default."""
        return DEFAULT_CRF[self.effective_codec] if self.crf is None else self.crf

    @model_validator(mode="after")
    def _compatible(self) -> Self:
        codec = self.effective_codec
        allowed = CONTAINER_CODECS[self.container]
        if codec not in allowed:
            names = ", ".join(c.value for c in allowed)
            raise ValueError(
                f"codec {codec.value} cannot go in {self.container.value}; use one of {names}"
            )
        low, high = CRF_RANGE[codec]
        if self.crf is not None and not low <= self.crf <= high:
            raise ValueError(f"crf for {codec.value} must be between {low} and {high}")
        return self


class VideoRotateOptions(_Options):
    """Options of `VideoRotate`."""

    degrees: Literal[90, 180, 270] = Field(description="Clockwise rotation: 90, 180 or 270.")
    metadata_only: bool = Field(
        default=False,
        description="Only change the rotation flag that players honour (no re-encoding, so "
        "fast and lossless). Needs an MP4 or MOV input.",
    )


class VideoResizeOptions(_Options):
    """Options of `VideoResize`."""

    width: int | None = Field(
        default=None, ge=2, le=8192, description="Target width in pixels (2-8192)."
    )
    height: int | None = Field(
        default=None, ge=2, le=8192, description="Target height in pixels (2-8192)."
    )
    keep_aspect: bool = Field(
        default=True,
        description="Keep the aspect ratio: the video fits within width x height. Output "
        "dimensions are always rounded down to even numbers.",
    )

    @model_validator(mode="after")
    def _dimensions(self) -> Self:
        if self.width is None and self.height is None:
            raise ValueError("at least one of width and height is required")
        return self


class VideoTrimOptions(_Options):
    """Options of `VideoTrim` (always re-encoded, so cuts are frame-accurate)."""

    start: str = Field(
        pattern=TIMESTAMP_PATTERN, description="Start of the kept part, HH:MM:SS or HH:MM:SS.mmm."
    )
    end: str = Field(
        pattern=TIMESTAMP_PATTERN,
        description="End of the kept part, HH:MM:SS or HH:MM:SS.mmm; after start. An end past "
        "the input's end keeps everything from start.",
    )

    @property
    def start_seconds(self) -> float:
        """Start in seconds."""
        return timestamp_seconds(self.start)

    @property
    def end_seconds(self) -> float:
        """End in seconds."""
        return timestamp_seconds(self.end)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end_seconds <= self.start_seconds:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


class VideoThumbnailOptions(_Options):
    """Options of `VideoThumbnail`."""

    timestamp: str = Field(
        default="00:00:00",
        pattern=TIMESTAMP_PATTERN,
        description="Time of the frame, HH:MM:SS or HH:MM:SS.mmm; must be before the video's end.",
    )
    format: ThumbnailFormat = Field(
        default=ThumbnailFormat.JPEG, description="Thumbnail format: jpeg, png or webp."
    )

    @property
    def timestamp_seconds(self) -> float:
        """Timestamp in seconds."""
        return timestamp_seconds(self.timestamp)


OperationOptions = (
    ImageConvertOptions
    | ImageRenditionsOptions
    | ImageResizeOptions
    | VideoConvertOptions
    | VideoRotateOptions
    | VideoResizeOptions
    | VideoTrimOptions
    | VideoThumbnailOptions
)

OPTIONS_MODELS: dict[Operation, type[OperationOptions]] = {
    Operation.IMAGE_CONVERT: ImageConvertOptions,
    Operation.IMAGE_RESIZE: ImageResizeOptions,
    Operation.VIDEO_CONVERT: VideoConvertOptions,
    Operation.VIDEO_ROTATE: VideoRotateOptions,
    Operation.VIDEO_RESIZE: VideoResizeOptions,
    Operation.VIDEO_TRIM: VideoTrimOptions,
    Operation.VIDEO_THUMBNAIL: VideoThumbnailOptions,
}


class OptionsError(ValueError):
    """The operation or its options are invalid; the message says what to change."""


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def parse_options(
    operation: str, options: str | bytes | Mapping[str, Any] | None
) -> OperationOptions:
    """The options model of `operation` validated from `options` (JSON text or a mapping);
    raise OptionsError. The class of the result is the operation (`OPTIONS_MODELS`), except
    that ImageConvert options with a `renditions` list are ImageRenditionsOptions."""
    try:
        op = Operation(operation)
    except ValueError:
        names = ", ".join(o.value for o in Operation)
        raise OptionsError(f"unknown operation {operation!r}; expected one of {names}") from None
    if options is None or options in ("", b""):
        data: Any = {}
    elif isinstance(options, str | bytes):
        try:
            data = json.loads(options)
        except ValueError as exc:
            raise OptionsError(f"options for {op.value} are not valid JSON: {exc}") from None
    else:
        data = dict(options)
    if not isinstance(data, dict):
        raise OptionsError(f"options for {op.value} must be a JSON object")
    model: type[OperationOptions] = OPTIONS_MODELS[op]
    if op is Operation.IMAGE_CONVERT and "renditions" in data:
        model = ImageRenditionsOptions
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise OptionsError(f"invalid options for {op.value}: {_describe(exc)}") from None
