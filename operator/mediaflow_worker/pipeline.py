"""One job end to end: fetch, sniff, inspect, convert, verify, upload (the I/O around plans.py)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mediaflow_operator.resources.options import (
    ImageConvertOptions,
    ImageResizeOptions,
    Operation,
    OptionsError,
    VideoConvertOptions,
    VideoResizeOptions,
    VideoRotateOptions,
    VideoThumbnailOptions,
    VideoTrimOptions,
    parse_options,
)

from . import plans
from .errors import InternalError, InvalidInput
from .headers import output_header, read_image_header
from .media import MediaType, sniff
from .probe import Limits, MediaInfo, check_image, check_video, ffprobe_args, parse_probe_output
from .progress import ProgressTracker
from .report import log
from .settings import Settings
from .tools import run_tool
from .transfer import fetch, upload

PROBE_TIMEOUT = 120.0
IMAGE_TIMEOUT = 1800.0


def probe(path: Path, media: MediaType, limits: Limits, work: Path) -> MediaInfo:
    """ffprobe with the forced demuxer; an unreadable file is invalid input."""
    result = run_tool(
        ffprobe_args(str(path), media, limits.max_pixels), work, timeout=PROBE_TIMEOUT
    )
    if result.returncode != 0:
        raise InvalidInput(f"the {media.name} file cannot be read: {result.stderr_tail}")
    return parse_probe_output(result.stdout)


def _converted(result_code: int, what: str, tail: str) -> None:
    if result_code != 0:
        raise InvalidInput(f"the {what} could not be converted: {tail or 'decoder error'}")


# ---------------------------------------------------------------- images


def process_image(
    op: Operation, opts: Any, src: Path, media: MediaType, settings: Settings, work: Path
) -> tuple[Path, str, tuple[int, int]]:
    """Convert or resize an image; returns (output, format, expected size)."""
    limits = settings.limits
    header = read_image_header(str(src), media.name, limits.max_frames)
    if header is None:  # TIFF and AVIF: ffprobe, with -max_pixels guarding the decoder
        info = probe(src, media, limits, work)
        if not info.has_video or not info.width or not info.height:
            raise InvalidInput(f"the {media.name} file holds no picture")
        width, height, frames, orientation, animated = info.width, info.height, 1, 1, False
    else:
        width, height, frames = header.width, header.height, header.frames
        orientation, animated = header.orientation, header.animated
    check_image(width, height, frames, limits)
    if media.name == "webp" and animated:
        raise InvalidInput("animated WebP input is not supported; send a GIF or a still image")
    log("inspected", type=media.name, width=width, height=height, frames=frames)
    if op is Operation.IMAGE_CONVERT:
        assert isinstance(opts, ImageConvertOptions)  # noqa: S101
        job = plans.image_job_for_convert(media, opts, width, height, orientation, animated)
    else:
        assert isinstance(opts, ImageResizeOptions)  # noqa: S101
        job = plans.image_job_for_resize(media, opts, width, height, orientation, animated)
    out_w, out_h = job.out_size
    if out_w * out_h > limits.max_pixels:
        raise InvalidInput(
            f"the requested output of {out_w}x{out_h} exceeds the "
            f"{limits.max_pixels / 1e6:g}-megapixel limit"
        )
    fmt = job.out_format.value
    dst = work / f"output.{fmt}"
    threads, max_pixels = settings.threads, limits.max_pixels
    log("convert", tool=job.tool, format=fmt, filters=job.filters)
    if job.tool == "cwebp":
        res = run_tool(
            plans.cwebp_args(str(src), str(dst), job.quality, job.lossless, threads),
            work,
            timeout=IMAGE_TIMEOUT,
        )
    elif job.tool == "avifenc":
        res = run_tool(
            plans.avifenc_args(str(src), str(dst), job.quality, threads),
            work,
            timeout=IMAGE_TIMEOUT,
        )
    elif job.tool == "ffmpeg+avifenc":
        frame = work / "frame.png"
        res = run_tool(
            plans.image_ffmpeg_args(
                job, str(src), str(frame), threads, max_pixels, intermediate=True
            ),
            work,
            timeout=IMAGE_TIMEOUT,
        )
        _converted(res.returncode, "image", res.stderr_tail)
        src.unlink()
        res = run_tool(
            plans.avifenc_args(str(frame), str(dst), job.quality, threads),
            work,
            timeout=IMAGE_TIMEOUT,
        )
        frame.unlink(missing_ok=True)
    else:
        res = run_tool(
            plans.image_ffmpeg_args(job, str(src), str(dst), threads, max_pixels),
            work,
            timeout=IMAGE_TIMEOUT,
        )
    _converted(res.returncode, "image", res.stderr_tail)
    return dst, fmt, job.out_size


# ---------------------------------------------------------------- videos


def _encode(job: plans.VideoJob, info: MediaInfo, src: Path, dst: Path, settings: Settings, work):
    tracker = ProgressTracker(job.duration)

    def on_line(line: str) -> None:
        percent = tracker.feed(line)
        if percent is not None:
            log("progress", percent=percent)

    limits = settings.limits
    args = plans.video_ffmpeg_args(
        job,
        info,
        str(src),
        str(dst),
        settings.threads,
        limits.max_pixels,
        limits.max_duration_seconds,
    )
    log("convert", tool="ffmpeg", container=job.container.value, codec=job.codec.value)
    res = run_tool(args, work, on_line=on_line)
    _converted(res.returncode, "video", res.stderr_tail)


def process_video(
    op: Operation, opts: Any, src: Path, media: MediaType, settings: Settings, work: Path
) -> tuple[Path, str, tuple[int, int]]:
    """Run a video operation; returns (output, format, expected size)."""
    info = probe(src, media, settings.limits, work)
    check_video(info, settings.limits)
    width, height, duration = info.width or 0, info.height or 0, info.duration or 0.0
    log(
        "inspected",
        type=media.name,
        width=info.width,
        height=info.height,
        duration=info.duration,
        rotation=info.rotation,
        audio=info.audio_codec,
    )
    size = (plans.even(width), plans.even(height))
    crop = plans.even_crop_filters(width, height)
    if isinstance(opts, VideoConvertOptions):
        job = plans.video_convert_job(media, info, opts)
    elif isinstance(opts, VideoRotateOptions):
        if opts.metadata_only:
            if media.name not in ("mp4", "mov"):
                raise InvalidInput(
                    "metadataOnly rotation needs an MP4 or MOV input; this one is "
                    f"{media.name}; set metadataOnly to false to re-encode"
                )
            dst = work / "output.mp4"
            args = plans.metadata_rotation_args(
                media, info, opts.degrees, str(src), str(dst), settings.limits.max_pixels
            )
            res = run_tool(args, work)
            _converted(res.returncode, "video", res.stderr_tail)
            return dst, "mp4", plans.rotated_size(width, height, opts.degrees)
        rw, rh = plans.rotated_size(width, height, opts.degrees)
        filters = plans.ROTATE_FILTERS[opts.degrees] + plans.even_crop_filters(rw, rh)
        job = plans.default_video_job(media, info, filters, (plans.even(rw), plans.even(rh)))
    elif isinstance(opts, VideoResizeOptions):
        w, h = plans.video_resize_size(width, height, opts)
        job = plans.default_video_job(media, info, [f"scale={w}:{h}", "setsar=1"], (w, h))
    elif isinstance(opts, VideoTrimOptions):
        start, end = opts.start_seconds, opts.end_seconds
        if start >= duration:
            raise InvalidInput(
                f"start {opts.start} is past the end of the video ({duration:.3f} s)"
            )
        job = plans.default_video_job(media, info, crop, size)
        job = plans.VideoJob(
            **{
                **job.__dict__,
                "start": start,
                "duration": min(end, duration) - start,
                "copy_audio": False,
            }
        )
    else:
        assert isinstance(opts, VideoThumbnailOptions)  # noqa: S101
        if opts.timestamp_seconds >= duration:
            raise InvalidInput(
                f"timestamp {opts.timestamp} is past the end of the video ({duration:.3f} s)"
            )
        fmt = opts.format.value
        dst = work / f"output.{fmt}"
        args = plans.thumbnail_args(
            media,
            opts.format,
            opts.timestamp_seconds,
            str(src),
            str(dst),
            settings.threads,
            settings.limits.max_pixels,
        )
        res = run_tool(args, work)
        _converted(res.returncode, "video", res.stderr_tail)
        if not dst.exists() or dst.stat().st_size == 0:
            raise InvalidInput(f"the video has no frame at {opts.timestamp}")
        return dst, fmt, (width, height)
    dst = work / f"output.{job.container.value}"
    _encode(job, info, src, dst, settings, work)
    log("progress", percent=100.0)
    return dst, job.container.value, job.out_size


# ---------------------------------------------------------------- verification

_MIME_ALIASES = {"image/x-ms-bmp": "image/bmp", "video/quicktime": "video/mp4"}


# Commands that fully decode one output file and exit non-zero when it does not decode.
NATIVE_DECODERS = {
    "webp": lambda path: ["dwebp", "-quiet", path, "-pam", "-o", "/dev/null"],
    "avif": lambda path: ["avifdec", "--info", path],
}


def verify(
    path: Path, fmt: str, expected: tuple[int, int], limits: Limits, work: Path, decode: bool
) -> dict:
    """Check the output is `fmt` with the `expected` size and (if `decode`) that it decodes."""
    import magic

    if not path.exists() or path.stat().st_size == 0:
        raise InvalidInput("the conversion produced no output from this input")
    mime = magic.from_file(str(path), mime=True)
    content_type = plans.CONTENT_TYPES[fmt]
    if _MIME_ALIASES.get(mime, mime) != content_type:
        raise InternalError(f"the output is {mime}, expected {content_type}")
    video = fmt in ("mp4", "webm", "mkv")
    try:
        header = None if video else output_header(str(path), fmt)
    except InvalidInput as exc:
        raise InternalError(f"the output's header is broken: {exc}") from None
    duration = None
    if header is not None and ((header.animated and fmt == "webp") or not decode):
        # Header only: asked for, or animated WebP, which ffmpeg 5.1 cannot decode.
        width, height = header.width, header.height
    elif header is not None and fmt in NATIVE_DECODERS:
        # The format's own decoder: a full decode in under half of ffprobe's time (noisy 4K:
        # dwebp 0.29 s against 0.72 s, avifdec 0.54 s against 1.17 s), next to ~1 s encodes.
        res = run_tool(NATIVE_DECODERS[fmt](str(path)), work, timeout=PROBE_TIMEOUT)
        if res.returncode != 0:
            raise InternalError(f"the output does not decode: {res.stderr_tail}")
        width, height = header.width, header.height
    else:
        args = ffprobe_args(str(path), MediaType(fmt, "", plans.OUTPUT_DEMUXERS[fmt]), 2**31 - 1)
        if fmt == "gif":
            args.insert(-1, "-count_frames")  # every frame of an animation decodes
        # Without -count_frames ffprobe still decodes a still image's frame to learn its format;
        # for video, the first frames. A full decode of a video would cost minutes.
        res = run_tool(args, work, timeout=PROBE_TIMEOUT)
        if res.returncode != 0:
            raise InternalError(f"the output does not decode: {res.stderr_tail}")
        info = parse_probe_output(res.stdout)
        width, height, duration = info.width, info.height, info.duration if video else None
    if (width, height) != expected:
        raise InternalError(f"the output is {width}x{height}, expected {expected[0]}x{expected[1]}")
    return {
        "size": path.stat().st_size,
        "contentType": content_type,
        "format": fmt,
        "width": width,
        "height": height,
        "duration": round(duration, 3) if duration is not None else None,
    }


# ---------------------------------------------------------------- the job


def run(settings: Settings) -> dict:
    """Do the whole job; raise a WorkerError on failure. The work directory is always cleaned."""
    try:
        opts = parse_options(settings.operation, settings.options)
    except OptionsError as exc:
        raise InvalidInput(str(exc)) from None
    op = Operation(settings.operation)
    Path(settings.work_dir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mediaflow-", dir=settings.work_dir))
    try:
        src = work / "input"
        size = fetch(
            settings.input_url, src, settings.limits.max_input_bytes, settings.fetch_timeout
        )
        media = sniff(str(src), "video" if op.is_video else "image")
        log("sniffed", type=media.name, size=size)
        process = process_video if op.is_video else process_image
        started = time.monotonic()
        dst, fmt, expected = process(op, opts, src, media, settings, work)
        log("converted", seconds=round(time.monotonic() - started, 3))
        src.unlink(missing_ok=True)
        result = verify(dst, fmt, expected, settings.limits, work, settings.verify_decode)
        log("verified", width=result["width"], height=result["height"])
        upload(dst, settings.output_url, result["contentType"])
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)
