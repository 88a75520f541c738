"""The names of operations, formats and codecs, and the tables that relate them: plain enums,
free of pydantic, so that the worker can plan a job without loading the option models.

`options` re-exports all of them; the API and the operator import them from there.
"""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    """What a MediaJob does to its input."""

    IMAGE_CONVERT = "ImageConvert"
    IMAGE_RESIZE = "ImageResize"
    VIDEO_CONVERT = "VideoConvert"
    VIDEO_ROTATE = "VideoRotate"
    VIDEO_RESIZE = "VideoResize"
    VIDEO_TRIM = "VideoTrim"
    VIDEO_THUMBNAIL = "VideoThumbnail"

    @property
    def is_video(self) -> bool:
        """True for operations whose input is a video."""
        return self.value.startswith("Video")


class ImageFormat(StrEnum):
    """Image output formats."""

    WEBP = "webp"
    AVIF = "avif"
    PNG = "png"
    JPEG = "jpeg"
    GIF = "gif"
    BMP = "bmp"
    TIFF = "tiff"


class FitMode(StrEnum):
    """How an image is fitted into the requested box."""

    COVER = "cover"
    CONTAIN = "contain"
    FILL = "fill"
    INSIDE = "inside"


class Container(StrEnum):
    """Video containers."""

    MP4 = "mp4"
    WEBM = "webm"
    MKV = "mkv"


class VideoCodec(StrEnum):
    """Video codecs."""

    H264 = "h264"
    H265 = "h265"
    VP9 = "vp9"
    AV1 = "av1"


class Preset(StrEnum):
    """Speed/size trade-off, named like x264's presets (slower means smaller output)."""

    ULTRAFAST = "ultrafast"
    SUPERFAST = "superfast"
    VERYFAST = "veryfast"
    FASTER = "faster"
    FAST = "fast"
    MEDIUM = "medium"
    SLOW = "slow"
    SLOWER = "slower"
    VERYSLOW = "veryslow"


class RenditionFormat(StrEnum):
    """Formats of the renditions of ImageConvert (a responsive image set)."""

    WEBP = "webp"
    AVIF = "avif"
    PNG = "png"
    JPEG = "jpeg"


class ThumbnailFormat(StrEnum):
    """Thumbnail image formats."""

    WEBP = "webp"
    JPEG = "jpeg"
    PNG = "png"


CONTAINER_CODECS: dict[Container, tuple[VideoCodec, ...]] = {
    Container.MP4: (VideoCodec.H264, VideoCodec.H265, VideoCodec.AV1),
    Container.WEBM: (VideoCodec.VP9, VideoCodec.AV1),
    Container.MKV: (VideoCodec.H264, VideoCodec.H265, VideoCodec.VP9, VideoCodec.AV1),
}
DEFAULT_CODEC: dict[Container, VideoCodec] = {
    Container.MP4: VideoCodec.H264,
    Container.WEBM: VideoCodec.VP9,
    Container.MKV: VideoCodec.H264,
}
CRF_RANGE: dict[VideoCodec, tuple[int, int]] = {
    VideoCodec.H264: (0, 51),
    VideoCodec.H265: (0, 51),
    VideoCodec.VP9: (0, 63),
    VideoCodec.AV1: (0, 63),
}
DEFAULT_CRF: dict[VideoCodec, int] = {
    VideoCodec.H264: 23,
    VideoCodec.H265: 28,
    VideoCodec.VP9: 32,
    VideoCodec.AV1: 35,
}
