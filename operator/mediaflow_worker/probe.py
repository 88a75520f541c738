"""ffprobe with a forced demuxer, its JSON turned into MediaInfo, and the limit checks."""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from mediaflow_core.media import MediaType

from .errors import InvalidInput


class Limits(NamedTuple):
    """Resource limits applied to every input before decoding."""

    max_input_bytes: int = 2 * 1024**3
    max_pixels: int = 100_000_000
    max_frames: int = 2000
    max_duration_seconds: float = 4 * 3600


class MediaInfo(NamedTuple):
    """What the worker needs to know about a file."""

    width: int | None = None  # as displayed: rotation already applied
    height: int | None = None
    duration: float | None = None
    frames: int = 1
    rotation: int = 0  # clockwise degrees a player applies (0, 90, 180, 270)
    video_codec: str | None = None
    audio_codec: str | None = None
    pix_fmt: str | None = None

    @property
    def has_video(self) -> bool:
        """True if there is a video (or image) stream."""
        return self.video_codec is not None


def hardened_input(media: MediaType, max_pixels: int) -> list[str]:
    """Input options that confine ffmpeg/ffprobe to one local file of the sniffed type."""
    return [
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        media.demuxer,
        "-max_pixels",
        str(max_pixels),
        "-f",
        media.demuxer,
    ]


def ffprobe_args(path: str, media: MediaType, max_pixels: int) -> list[str]:
    """ffprobe command that reports streams and format as JSON."""
    return [
        "ffprobe",
        "-hide_banner",
        "-loglevel",
        "error",
        *hardened_input(media, max_pixels),
        "-show_entries",
        "format=duration:stream=codec_type,codec_name,width,height,pix_fmt,duration,nb_frames"
        ":stream_side_data=rotation:stream_tags=rotate",
        "-of",
        "json",
        f"file:{path}",
    ]


def _number(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def clockwise_rotation(stream: dict[str, Any]) -> int:
    """Clockwise display rotation of a video stream (display matrix, else the old `rotate` tag)."""
    for item in stream.get("side_data_list") or []:
        if "rotation" in item:
            # The display matrix angle is counter-clockwise.
            return round(-float(item["rotation"])) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    return int(tag) % 360 if tag and str(tag).lstrip("-").isdigit() else 0


def parse_probe(report: dict[str, Any]) -> MediaInfo:
    """MediaInfo from ffprobe's JSON; the first video and audio streams count."""
    streams = report.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    duration = _number((report.get("format") or {}).get("duration"))
    if duration is None and video is not None:
        duration = _number(video.get("duration"))
    if video is None:
        return MediaInfo(duration=duration, audio_codec=audio and audio.get("codec_name"))
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    rotation = clockwise_rotation(video)
    if rotation in (90, 270):
        width, height = height, width
    frames = int(_number(video.get("nb_frames")) or 1)
    return MediaInfo(
        width=width,
        height=height,
        duration=duration,
        frames=frames,
        rotation=rotation,
        video_codec=video.get("codec_name"),
        audio_codec=audio.get("codec_name") if audio else None,
        pix_fmt=video.get("pix_fmt"),
    )


def parse_probe_output(stdout: str) -> MediaInfo:
    """parse_probe on ffprobe's raw output."""
    try:
        return parse_probe(json.loads(stdout or "{}"))
    except (ValueError, TypeError) as exc:
        raise InvalidInput("the media's headers could not be read") from exc


def check_image(width: int, height: int, frames: int, limits: Limits) -> None:
    """Refuse an image over the pixel or frame limits."""
    if width <= 0 or height <= 0:
        raise InvalidInput("the image declares no valid dimensions")
    if width * height > limits.max_pixels:
        raise InvalidInput(
            f"the image is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
            f"the limit is {limits.max_pixels / 1e6:g} megapixels"
        )
    if frames > limits.max_frames:
        raise InvalidInput(
            f"the animation has more than {limits.max_frames} frames, the limit; "
            "send a shorter animation"
        )


def check_video(info: MediaInfo, limits: Limits) -> None:
    """Refuse a video without a picture, without a known duration, or over the limits."""
    if not info.has_video:
        what = "an audio-only file" if info.audio_codec else "a file without a video stream"
        raise InvalidInput(f"the input is {what}; video operations need a video stream")
    if not info.width or not info.height:
        raise InvalidInput("the video declares no valid dimensions (corrupt or truncated?)")
    if info.width * info.height > limits.max_pixels:
        raise InvalidInput(
            f"the video is {info.width}x{info.height}; the limit is "
            f"{limits.max_pixels / 1e6:g} megapixels per frame"
        )
    if info.duration is None or info.duration <= 0:
        raise InvalidInput("the video's duration cannot be read from its headers")
    if info.duration > limits.max_duration_seconds:
        raise InvalidInput(
            f"the video lasts {info.duration:.0f} s; the limit is "
            f"{limits.max_duration_seconds:.0f} s"
        )
