"""Every operation/format pair, end to end: the worker process fetches over loopback HTTP, converts
with the real tools and PUTs the result; ffprobe then checks the received bytes independently."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import EXIF_SECRET, ZIP_SECRET, ffmpeg, ffprobe

IMAGE_FORMATS = ["webp", "avif", "png", "jpeg", "gif", "bmp", "tiff"]
CONTENT = {
    "webp": "image/webp",
    "avif": "image/avif",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
}
CODEC_NAMES = {"h264": "h264", "h265": "hevc", "vp9": "vp9", "av1": "av1"}
FORMAT_NAMES = {"mp4": "mov,mp4,m4a,3gp,3g2,mj2", "webm": "matroska,webm", "mkv": "matroska,webm"}


def succeeded(run: Any, fmt: str) -> dict[str, Any]:
    assert run.returncode == 0, (run.termination, run.stdout[-2000:], run.stderr[-2000:])
    assert run.upload is not None
    assert run.upload.content_type == CONTENT[fmt]
    assert int(run.upload.content_length) == len(run.upload.body) == run.termination["size"]
    assert run.termination["contentType"] == CONTENT[fmt]
    assert run.termination["format"] == fmt
    assert "secret-signature" not in run.stdout + run.stderr
    return run.termination


def video_stream(report: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in report["streams"] if s["codec_type"] == "video")


def displayed(stream: dict[str, Any]) -> tuple[int, int]:
    rotation = 0
    for item in stream.get("side_data_list", []):
        rotation = int(item.get("rotation", 0))
    w, h = stream["width"], stream["height"]
    return (h, w) if rotation % 180 else (w, h)


def decode_image(path: Path) -> dict[str, Any]:
    """ffprobe, every frame decoded; animated WebP (ffmpeg 5.1 cannot decode it) by its header."""
    data = path.read_bytes()
    if data[:4] == b"RIFF" and data[12:16] == b"VP8X" and data[20] & 0x02:
        return {"animated_webp": True}
    report = ffprobe(path, "-count_frames")
    return video_stream(report)


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("fmt", IMAGE_FORMATS)
def test_image_convert_jpeg_with_exif(run_worker, media, fmt: str) -> None:
    """Orientation 6 is applied (64x48 stored -> 48x64 out), EXIF and GPS are gone."""
    run = run_worker("ImageConvert", {"format": fmt, "quality": 80}, media.jpeg_exif())
    result = succeeded(run, fmt)
    assert (result["width"], result["height"]) == (48, 64)
    assert result["duration"] is None
    stream = decode_image(run.output)
    assert (stream["width"], stream["height"]) == (48, 64)
    assert EXIF_SECRET not in run.upload.body
    assert b"Exif\x00\x00" not in run.upload.body


def test_orientation_makes_output_look_like_the_input(run_worker, media, tmp_path) -> None:
    run = run_worker("ImageConvert", {"format": "png"}, media.jpeg_exif())
    succeeded(run, "png")
    expected = tmp_path / "expected.png"
    # ffmpeg 5.1 itself would apply the EXIF orientation; -noautorotate keeps the pixels raw.
    ffmpeg("-noautorotate", "-i", str(media.jpeg_exif()), "-vf", "transpose=1", str(expected))
    psnr = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-i",
            str(run.output),
            "-i",
            str(expected),
            "-lavfi",
            "psnr",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    average = psnr.rsplit("average:", 1)[1].split()[0]
    assert average == "inf" or float(average) > 35, psnr


@pytest.mark.parametrize(
    ("source", "fmt", "options", "size"),
    [
        ("png16", "avif", {}, (64, 48)),
        ("png16", "webp", {}, (64, 48)),
        ("png16", "jpeg", {}, (64, 48)),
        ("png_rgba", "webp", {"lossless": True}, (64, 48)),
        ("png_rgba", "avif", {"quality": 100}, (64, 48)),
        ("odd_png", "jpeg", {"quality": 1}, (65, 49)),
        ("odd_png", "avif", {}, (65, 49)),
        ("bmp", "webp", {}, (64, 48)),
        ("tiff", "avif", {}, (64, 48)),
        ("tiff", "webp", {}, (64, 48)),
        ("webp", "png", {}, (64, 48)),
        ("avif", "jpeg", {}, (64, 48)),
        ("gif_animated", "png", {}, (64, 48)),
    ],
)
def test_image_convert_inputs(run_worker, media, source, fmt, options, size) -> None:
    run = run_worker("ImageConvert", {"format": fmt, **options}, getattr(media, source)())
    result = succeeded(run, fmt)
    assert (result["width"], result["height"]) == size
    stream = decode_image(run.output)
    assert (stream["width"], stream["height"]) == size
    assert stream["nb_read_frames"] == "1"


def test_animated_gif_stays_animated(run_worker, media) -> None:
    gif = run_worker("ImageConvert", {"format": "gif"}, media.gif_animated())
    succeeded(gif, "gif")
    assert int(decode_image(gif.output)["nb_read_frames"]) == 10
    webp = run_worker("ImageConvert", {"format": "webp"}, media.gif_animated())
    succeeded(webp, "webp")
    body = webp.upload.body
    assert body.count(b"ANMF") == 10, "every GIF frame becomes a WebP frame"


def test_png_with_appended_zip_loses_the_payload(run_worker, media) -> None:
    for fmt in ("png", "webp"):
        run = run_worker("ImageResize", {"width": 64, "format": fmt}, media.png_zip())
        succeeded(run, fmt)
        assert ZIP_SECRET not in run.upload.body
        assert b"PK\x03\x04" not in run.upload.body


@pytest.mark.parametrize(
    ("options", "size"),
    [
        ({"width": 32}, (32, 24)),
        ({"width": 30, "height": 30, "fit": "cover"}, (30, 30)),
        ({"width": 30, "height": 30, "fit": "contain", "format": "png"}, (30, 30)),
        ({"width": 30, "height": 10, "fit": "fill", "format": "webp"}, (30, 10)),
        ({"width": 32, "format": "webp"}, (32, 24)),  # cwebp -resize
        ({"width": 640}, (64, 48)),  # never enlarged by default
        ({"width": 128, "allowUpscale": True, "format": "avif"}, (128, 96)),
        ({"height": 24, "format": "gif"}, (32, 24)),
        ({"height": 24, "format": "bmp"}, (32, 24)),
        ({"height": 24, "format": "tiff"}, (32, 24)),
        ({"height": 24, "format": "jpeg"}, (32, 24)),
    ],
)
def test_image_resize(run_worker, media, options, size) -> None:
    run = run_worker("ImageResize", options, media.png())
    fmt = options.get("format", "png")  # default: the input's format
    result = succeeded(run, fmt)
    assert (result["width"], result["height"]) == size
    stream = decode_image(run.output)
    assert (stream["width"], stream["height"]) == size


def test_image_resize_applies_orientation_first(run_worker, media) -> None:
    run = run_worker("ImageResize", {"height": 32}, media.jpeg_exif())
    result = succeeded(run, "jpeg")
    assert (result["width"], result["height"]) == (24, 32)


def test_image_resize_keeps_gif_animation(run_worker, media) -> None:
    run = run_worker("ImageResize", {"width": 32}, media.gif_animated())
    succeeded(run, "gif")
    stream = decode_image(run.output)
    assert (stream["width"], stream["height"], stream["nb_read_frames"]) == (32, 24, "10")


# ---------------------------------------------------------------- videos


@pytest.mark.parametrize(
    ("container", "codec", "preset"),
    [
        ("mp4", "h264", "ultrafast"),
        ("mp4", "h265", "ultrafast"),
        ("mp4", "av1", "ultrafast"),
        ("webm", "vp9", "ultrafast"),
        ("webm", "av1", "ultrafast"),
        ("mkv", "h264", "veryfast"),
        ("mkv", "vp9", "ultrafast"),
    ],
)
def test_video_convert(run_worker, media, container, codec, preset) -> None:
    options = {"container": container, "codec": codec, "preset": preset}
    run = run_worker("VideoConvert", options, media.mp4())
    result = succeeded(run, container)
    assert (result["width"], result["height"]) == (160, 120)
    assert result["duration"] == pytest.approx(2.0, abs=0.1)
    report = ffprobe(run.output)
    assert report["format"]["format_name"] == FORMAT_NAMES[container]
    stream = video_stream(report)
    assert stream["codec_name"] == CODEC_NAMES[codec]
    assert stream["pix_fmt"] == "yuv420p"
    assert any(s["codec_type"] == "audio" for s in report["streams"])
    progress = run.event("progress")
    assert progress
    assert progress[-1]["percent"] == 100.0
    assert all(0 <= p["percent"] <= 100 for p in progress)


@pytest.mark.parametrize(
    ("source", "size", "audio"),
    [
        ("mkv10", (160, 120), True),
        ("avi", (160, 120), True),
        ("ts", (160, 120), True),
        ("mov", (160, 120), True),
        ("webm_silent", (160, 120), False),
        ("odd_video", (160, 120), True),
        ("phone", (120, 160), True),
    ],
)
def test_video_convert_inputs(run_worker, media, source, size, audio) -> None:
    options = {"container": "mp4", "preset": "ultrafast"}
    run = run_worker("VideoConvert", options, getattr(media, source)())
    result = succeeded(run, "mp4")
    assert (result["width"], result["height"]) == size
    report = ffprobe(run.output)
    stream = video_stream(report)
    assert displayed(stream) == size
    assert stream["pix_fmt"] == "yuv420p"
    assert any(s["codec_type"] == "audio" for s in report["streams"]) == audio


@pytest.mark.parametrize(
    ("source", "options", "size"),
    [
        ("mp4", {"degrees": 90}, (120, 160)),
        ("mp4", {"degrees": 180}, (160, 120)),
        ("phone", {"degrees": 270}, (160, 120)),
        ("webm_silent", {"degrees": 270}, (120, 160)),
        ("mp4", {"degrees": 90, "metadataOnly": True}, (120, 160)),
        ("phone", {"degrees": 90, "metadataOnly": True}, (160, 120)),
    ],
)
def test_video_rotate(run_worker, media, source, options, size) -> None:
    run = run_worker("VideoRotate", options, getattr(media, source)())
    fmt = "webm" if source.startswith("webm") else "mp4"
    result = succeeded(run, fmt)
    assert (result["width"], result["height"]) == size
    stream = video_stream(ffprobe(run.output))
    assert displayed(stream) == size
    if options.get("metadataOnly"):
        original = video_stream(ffprobe(getattr(media, source)()))
        assert (stream["width"], stream["height"]) == (original["width"], original["height"])


def test_rotation_direction_is_clockwise(run_worker, media, tmp_path) -> None:
    """Re-encoded and metadata-only rotations both display like `transpose=1` (clockwise)."""
    expected = tmp_path / "cw.png"
    ffmpeg("-i", str(media.mp4()), "-vf", "transpose=1", "-frames:v", "1", str(expected))
    for metadata_only in (False, True):
        run = run_worker("VideoRotate", {"degrees": 90, "metadataOnly": metadata_only}, media.mp4())
        succeeded(run, "mp4")
        frame = tmp_path / f"frame-{metadata_only}.png"
        ffmpeg("-i", str(run.output), "-frames:v", "1", str(frame))  # autorotate applies
        psnr = subprocess.run(
            [
                "ffmpeg",
                "-hide_banner",
                "-i",
                str(frame),
                "-i",
                str(expected),
                "-lavfi",
                "psnr",
                "-f",
                "null",
                "-",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        average = psnr.rsplit("average:", 1)[1].split()[0]
        assert average == "inf" or float(average) > 25, (metadata_only, psnr)


@pytest.mark.parametrize(
    ("source", "options", "size"),
    [
        ("mp4", {"width": 80}, (80, 60)),
        ("odd_video", {"width": 81}, (80, 60)),
        ("mp4", {"width": 99, "height": 33, "keepAspect": False}, (98, 32)),
        ("phone", {"height": 80}, (60, 80)),
        ("webm_silent", {"width": 320}, (320, 240)),
    ],
)
def test_video_resize(run_worker, media, source, options, size) -> None:
    run = run_worker("VideoResize", options, getattr(media, source)())
    fmt = "webm" if source.startswith("webm") else "mp4"
    result = succeeded(run, fmt)
    assert (result["width"], result["height"]) == size
    assert displayed(video_stream(ffprobe(run.output))) == size


def test_video_trim(run_worker, media) -> None:
    run = run_worker("VideoTrim", {"start": "00:00:00.500", "end": "00:00:01.500"}, media.mp4())
    result = succeeded(run, "mp4")
    assert result["duration"] == pytest.approx(1.0, abs=0.08)
    report = ffprobe(run.output, "-count_frames")
    assert int(video_stream(report)["nb_read_frames"]) == 25  # 1 s at 25 fps, frame-accurate
    assert run.event("progress")[-1]["percent"] == 100.0


def test_video_trim_end_past_the_end_keeps_the_rest(run_worker, media) -> None:
    run = run_worker("VideoTrim", {"start": "00:00:01", "end": "00:10:00"}, media.webm_silent())
    result = succeeded(run, "webm")
    assert result["duration"] == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
def test_video_thumbnail(run_worker, media, fmt: str) -> None:
    run = run_worker("VideoThumbnail", {"timestamp": "00:00:01.200", "format": fmt}, media.phone())
    result = succeeded(run, fmt)
    assert (result["width"], result["height"]) == (120, 160)
    stream = decode_image(run.output)
    assert (stream["width"], stream["height"]) == (120, 160)


@pytest.mark.parametrize("fmt", ["webp", "avif", "jpeg", "png", "gif", "bmp", "tiff"])
def test_header_only_verification(run_worker, media, fmt: str) -> None:
    """MEDIAFLOW_VERIFY_DECODE=0 still checks type and size (from the output's header)."""
    env = {"MEDIAFLOW_VERIFY_DECODE": "0"}
    run = run_worker("ImageResize", {"width": 32, "format": fmt}, media.png(), env)
    result = succeeded(run, fmt)
    assert (result["width"], result["height"]) == (32, 24)
    stream = decode_image(run.output)
    assert (stream["width"], stream["height"]) == (32, 24)


def test_upscale_beyond_the_pixel_limit_is_refused(run_worker, media) -> None:
    env = {"MEDIAFLOW_MAX_PIXELS": "10000"}
    run = run_worker("ImageResize", {"width": 640, "allowUpscale": True}, media.png(), env)
    assert run.returncode == 65, run.termination
    assert "output" in run.termination["message"]
