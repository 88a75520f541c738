"""One job end to end: fetch, sniff, inspect, convert, verify, upload (the I/O around plans.py).

Start-up cost matters next to a one-second cwebp run, so this module imports nothing heavy at
the top: `plans` and the option models (pydantic, ~0.3 s of CPU) are imported when needed. A
plain ImageConvert to WebP or AVIF is read exactly without pydantic (`early_image_convert`) and
never loads it; its encoder starts right after the input's checks, and its output is used only
if the plan made from those options leads to exactly the command that was started.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from mediaflow_core.media import HEAD_BYTES, MediaType, UnsupportedMedia, classify

from .commands import (
    AVIFENC_READS,
    CONTENT_TYPES,
    CWEBP_READS,
    OUTPUT_DEMUXERS,
    avifenc_args,
    cwebp_args,
)
from .errors import InternalError, InvalidInput
from .headers import ImageHeader, check_structure, output_header, read_image_header
from .probe import Limits, MediaInfo, check_image, check_video, ffprobe_args, parse_probe_output
from .report import log
from .settings import Settings
from .tools import RunningTool, run_tool, start_tool
from .transfer import fetch, upload

PROBE_TIMEOUT = 120.0
IMAGE_TIMEOUT = 1800.0


def sniff(path: str, kind: str) -> MediaType:
    """Sniff the file's type with libmagic and check it against the `kind` allowlist."""
    from mediaflow_core.libmagic import mime_type  # deferred: only this step needs libmagic

    mime = mime_type(path)
    with Path(path).open("rb") as stream:
        head = stream.read(HEAD_BYTES)
    try:
        return classify(mime, head, kind)
    except UnsupportedMedia as exc:
        raise InvalidInput(str(exc)) from None


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


# ---------------------------------------------------------------- options


def validate_options(settings: Settings) -> Any:
    """The operation's options, validated by the shared pydantic models (for every document
    `early_image_convert` does not read exactly)."""
    from mediaflow_core.options import OptionsError, parse_options

    try:
        return parse_options(settings.operation, settings.options)
    except OptionsError as exc:
        raise InvalidInput(str(exc)) from None


EARLY_FORMATS = ("webp", "avif")


def early_image_convert(settings: Settings) -> tuple[str, int, bool] | None:
    """(format, quality, lossless) of a plain ImageConvert to WebP or AVIF, read from the raw
    JSON without pydantic; None whenever there is any doubt (then pydantic validates first).

    An exact reading of a narrow subset: exactly these keys, a format of two, an int quality
    in 1..100 (not a bool, not a float), a bool lossless only with webp. test_fastpath checks
    over a grid of option documents that pydantic accepts everything this accepts and reads it
    the same, so for these documents the result is the validated options, and the worker does
    not load pydantic (0.3 s of CPU, against 0.04 s of cwebp for a 640x480 photo).
    """
    if settings.operation != "ImageConvert":
        return None
    try:
        data = json.loads(settings.options)
    except ValueError:
        return None
    if not isinstance(data, dict) or not set(data) <= {"format", "quality", "lossless"}:
        return None
    fmt, quality, lossless = (
        data.get("format"),
        data.get("quality", 85),
        data.get("lossless", False),
    )
    if fmt not in EARLY_FORMATS or type(quality) is not int or not 1 <= quality <= 100:
        return None
    if type(lossless) is not bool or (lossless and fmt != "webp"):
        return None
    return fmt, quality, lossless


def start_early_encoder(
    guess: tuple[str, int, bool],
    header: ImageHeader,
    media: MediaType,
    src: Path,
    work: Path,
    threads: int,
) -> RunningTool | None:
    """Start cwebp/avifenc with the guessed options if the plan will surely be that tool."""
    fmt, quality, lossless = guess
    if header.orientation != 1 or header.animated:
        return None  # ffmpeg applies orientation / keeps animation: the plan decides
    dst = str(work / f"output.{fmt}")
    if fmt == "webp" and media.name in CWEBP_READS:
        args = cwebp_args(str(src), dst, quality, lossless, threads)
    elif fmt == "avif" and media.name in AVIFENC_READS and not lossless:
        args = avifenc_args(str(src), dst, quality, threads)
    else:
        return None
    log("convert", tool=args[0], format=fmt, filters=[], validated=False)
    return start_tool(args, work)


# ---------------------------------------------------------------- images


def inspect_image(src: Path, media: MediaType, limits: Limits, work: Path) -> ImageHeader:
    """Dimensions, frames and orientation from the header (ffprobe for TIFF/AVIF), checked
    against the limits before any decoder runs."""
    header = read_image_header(str(src), media.name, limits.max_frames)
    if header is None:  # TIFF and AVIF: ffprobe, with -max_pixels guarding the decoder
        info = probe(src, media, limits, work)
        if not info.has_video or not info.width or not info.height:
            raise InvalidInput(f"the {media.name} file holds no picture")
        header = ImageHeader(info.width, info.height)
    check_image(header.width, header.height, header.frames, limits)
    if media.name == "webp" and header.animated:
        raise InvalidInput("animated WebP input is not supported; send a GIF or a still image")
    log(
        "inspected", type=media.name, width=header.width, height=header.height, frames=header.frames
    )
    return header


def process_image(
    opts: Any,
    header: ImageHeader,
    src: Path,
    media: MediaType,
    settings: Settings,
    work: Path,
    early: RunningTool | None = None,
) -> tuple[Path, str, tuple[int, int]]:
    """Convert or resize an image; returns (output, format, expected size).

    `early` is an encoder started before the plan was made: its output is taken only if the
    plan made from `opts` is exactly its command, else it is killed.
    """
    from . import plans

    width, height, orientation, animated = (
        header.width,
        header.height,
        header.orientation,
        header.animated,
    )
    if settings.operation == "ImageConvert":
        job = plans.image_job_for_convert(media, opts, width, height, orientation, animated)
    else:
        job = plans.image_job_for_resize(media, opts, width, height, orientation, animated)
    limits = settings.limits
    out_w, out_h = job.out_size
    if out_w * out_h > limits.max_pixels:
        raise InvalidInput(
            f"the requested output of {out_w}x{out_h} exceeds the "
            f"{limits.max_pixels / 1e6:g}-megapixel limit"
        )
    fmt = job.out_format.value
    dst = work / f"output.{fmt}"
    threads, max_pixels = settings.threads, limits.max_pixels
    direct = None
    if job.tool == "cwebp":
        direct = plans.cwebp_args(str(src), str(dst), job.quality, job.lossless, threads)
    elif job.tool == "avifenc":
        direct = plans.avifenc_args(str(src), str(dst), job.quality, threads)
    if early is not None:
        if direct is not None and early.args == direct:
            res = early.finish(settings.tool_timeout)
            _converted(res.returncode, "image", res.stderr_tail)
            return dst, fmt, job.out_size
        early.kill()  # the validated plan differs from the guess: start over, from the plan
        log("early-convert-discarded", tool=early.name)
    log("convert", tool=job.tool, format=fmt, filters=job.filters)
    if direct is not None:
        res = run_tool(direct, work, timeout=settings.tool_timeout)
    elif job.tool == "ffmpeg+avifenc":
        frame = work / "frame.png"
        res = run_tool(
            plans.image_ffmpeg_args(
                job, str(src), str(frame), threads, max_pixels, intermediate=True
            ),
            work,
            timeout=settings.tool_timeout,
        )
        _converted(res.returncode, "image", res.stderr_tail)
        src.unlink()
        res = run_tool(
            plans.avifenc_args(str(frame), str(dst), job.quality, threads),
            work,
            timeout=settings.tool_timeout,
        )
        frame.unlink(missing_ok=True)
    else:
        res = run_tool(
            plans.image_ffmpeg_args(job, str(src), str(dst), threads, max_pixels),
            work,
            timeout=settings.tool_timeout,
        )
    _converted(res.returncode, "image", res.stderr_tail)
    return dst, fmt, job.out_size


# ---------------------------------------------------------------- videos


def _encode(job: Any, info: MediaInfo, src: Path, dst: Path, settings: Settings, work: Path):
    from . import plans
    from .progress import ProgressTracker

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
    opts: Any, src: Path, media: MediaType, settings: Settings, work: Path
) -> tuple[Path, str, tuple[int, int]]:
    """Run a video operation; returns (output, format, expected size)."""
    from mediaflow_core.options import (
        VideoConvertOptions,
        VideoResizeOptions,
        VideoRotateOptions,
        VideoThumbnailOptions,
        VideoTrimOptions,
    )

    from . import plans

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
# dwebp -yuv: the whole bitstream decoded (VP8 with loop filter, or VP8L; alpha included, as
# YUVA), only the final YUV->RGBA conversion skipped: ~12 % faster than -pam, 12 MB of 4K
# samples instead of 33 MB, and the same failures (a cut file is NOT_ENOUGH_DATA either way).
NATIVE_DECODERS = {
    "webp": lambda path: ["dwebp", "-quiet", path, "-yuv", "-o", "/dev/null"],
    "avif": lambda path: ["avifdec", "--info", path],
}


def check_output(
    path: Path, fmt: str, expected: tuple[int, int], limits: Limits, work: Path, decode: bool
) -> tuple[dict, RunningTool | None]:
    """Check the output is `fmt` with the `expected` size; returns the result and, for WebP and
    AVIF with `decode`, the format's own decoder still running on it (see `finish_decode`).

    Type, header and size are checked before this returns; so is everything ffprobe reports
    (other formats, videos). Only the full decode of WebP/AVIF is left running, so that it can
    overlap the upload; the job succeeds only once `finish_decode` has passed.
    """
    from mediaflow_core.libmagic import mime_type

    if not path.exists() or path.stat().st_size == 0:
        raise InvalidInput("the conversion produced no output from this input")
    mime = mime_type(str(path))
    content_type = CONTENT_TYPES[fmt]
    if _MIME_ALIASES.get(mime, mime) != content_type:
        raise InternalError(f"the output is {mime}, expected {content_type}")
    video = fmt in ("mp4", "webm", "mkv")
    try:
        header = None if video else output_header(str(path), fmt)
        if header is not None:
            check_structure(str(path), fmt)  # microseconds: a cut file never reaches the PUT
    except InvalidInput as exc:
        raise InternalError(f"the output's header is broken: {exc}") from None
    duration = None
    decoder = None
    if header is not None and ((header.animated and fmt == "webp") or not decode):
        # Header and whole-file structure only: asked for, or animated WebP, which ffmpeg 5.1
        # cannot decode.
        width, height = header.width, header.height
    elif header is not None and fmt in NATIVE_DECODERS:
        # The format's own decoder: a full decode in under half of ffprobe's time (noisy 4K:
        # dwebp 0.29 s against 0.72 s, avifdec 0.54 s against 1.17 s), next to ~1 s encodes.
        width, height = header.width, header.height
        if (width, height) == expected:
            decoder = start_tool(NATIVE_DECODERS[fmt](str(path)), work)
    else:
        args = ffprobe_args(str(path), MediaType(fmt, "", OUTPUT_DEMUXERS[fmt]), 2**31 - 1)
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
    result = {
        "size": path.stat().st_size,
        "contentType": content_type,
        "format": fmt,
        "width": width,
        "height": height,
        "duration": round(duration, 3) if duration is not None else None,
    }
    return result, decoder


def finish_decode(decoder: RunningTool) -> None:
    """Wait for the decoder `check_output` started; InternalError if the output did not decode."""
    try:
        res = decoder.finish(PROBE_TIMEOUT)
    finally:
        decoder.kill()
    if res.returncode != 0:
        raise InternalError(f"the output does not decode: {res.stderr_tail}")


def verify(
    path: Path, fmt: str, expected: tuple[int, int], limits: Limits, work: Path, decode: bool
) -> dict:
    """Check the output is `fmt` with the `expected` size and (if `decode`) that it decodes."""
    result, decoder = check_output(path, fmt, expected, limits, work, decode)
    if decoder is not None:
        finish_decode(decoder)
    return result


# ---------------------------------------------------------------- the job


def make_work_dir(parent: str) -> Path:
    """A fresh private directory under `parent` (what tempfile.mkdtemp does, without its
    imports)."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    while True:
        path = Path(parent) / f"mediaflow-{os.urandom(6).hex()}"
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return path


def run(settings: Settings) -> dict:
    """Do the whole job; raise a WorkerError on failure. The work directory is always cleaned."""
    guess = early_image_convert(settings)
    # Without a guess, the options are validated before anything is downloaded.
    opts = validate_options(settings) if guess is None else None
    video = settings.operation.startswith("Video")  # valid: validated, or ImageConvert
    work = make_work_dir(settings.work_dir)
    running: list[RunningTool] = []  # killed on every way out
    try:
        src = work / "input"
        size = fetch(
            settings.input_url,
            src,
            settings.limits.max_input_bytes,
            settings.fetch_timeout,
            public_only=settings.input_public_only,
        )
        media = sniff(str(src), "video" if video else "image")
        log("sniffed", type=media.name, size=size)
        started = time.monotonic()
        if video:
            dst, fmt, expected = process_video(opts, src, media, settings, work)
        else:
            header = inspect_image(src, media, settings.limits, work)
            early = None
            if guess is not None:
                early = start_early_encoder(guess, header, media, src, work, settings.threads)
                if early is not None:
                    running.append(early)
                from . import plans  # after the start: its ~15 ms overlap the encoder

                fmt, quality, lossless = guess
                opts = plans.ConvertChoice(plans.ImageFormat(fmt), quality, lossless)
            dst, fmt, expected = process_image(opts, header, src, media, settings, work, early)
        log("converted", seconds=round(time.monotonic() - started, 3))
        src.unlink(missing_ok=True)
        result, decoder = check_output(
            dst, fmt, expected, settings.limits, work, settings.verify_decode
        )
        if decoder is not None:
            running.append(decoder)
        # The full decode (if any) overlaps the upload. An output that then fails to decode
        # has been uploaded, but the job fails (exit 70, no result): the operator publishes
        # nothing, and the retry overwrites the object.
        upload(dst, settings.output_url, result["contentType"])
        if decoder is not None:
            finish_decode(decoder)
        log("verified", width=result["width"], height=result["height"])
        return result
    finally:
        for tool in running:
            tool.kill()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
