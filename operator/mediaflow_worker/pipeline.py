"""One job end to end: validate the options, fetch, sniff, inspect, plan, execute.

The steps before the plan are where hostile input is refused before any decoder runs: the
options are validated by the shared pydantic models before anything is downloaded, the type is
sniffed from the content, and dimensions, frames and duration are read from headers (or
ffprobe with the forced demuxer) and checked against the limits. `planner.plan` then decides
everything from what was learned, and `executor.execute` runs and verifies it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mediaflow_core.formats import Operation
from mediaflow_core.libmagic import mime_type
from mediaflow_core.media import HEAD_BYTES, MediaType, UnsupportedMedia, classify
from mediaflow_core.options import (
    ImageRenditionsOptions,
    OperationOptions,
    OptionsError,
    parse_options,
)

from . import cost, planner
from .errors import InvalidInput
from .executor import execute
from .headers import ImageHeader, read_image_header
from .planner import OUTPUT, ImageSource, Source, VideoSource
from .probe import Limits, MediaInfo, check_image, check_video, ffprobe_args, parse_probe_output
from .report import log
from .settings import ConfigError, Settings
from .tools import run_tool
from .transfer import fetch

PROBE_TIMEOUT = 120.0


def validate_options(settings: Settings) -> OperationOptions:
    """The operation's options, validated by the shared pydantic models (the one authority)."""
    try:
        return parse_options(settings.operation, settings.options)
    except OptionsError as exc:
        raise InvalidInput(str(exc)) from None


def sniff(path: str, kind: str) -> MediaType:
    """Sniff the file's type with libmagic and check it against the `kind` allowlist."""
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


def inspect_video(src: Path, media: MediaType, limits: Limits, work: Path) -> MediaInfo:
    """Streams, dimensions and duration from ffprobe (forced demuxer), checked against the
    limits before any decoder runs."""
    info = probe(src, media, limits, work)
    check_video(info, limits)
    log(
        "inspected",
        type=media.name,
        width=info.width,
        height=info.height,
        duration=info.duration,
        rotation=info.rotation,
        audio=info.audio_codec,
    )
    return info


def learn(src: Path, kind: str, limits: Limits, work: Path) -> Source:
    """Sniff and inspect the downloaded input as an image or a video (`kind`)."""
    media = sniff(str(src), kind)
    log("sniffed", type=media.name, size=src.stat().st_size)
    if kind == "video":
        return VideoSource(src, media, inspect_video(src, media, limits, work))
    return ImageSource(src, media, inspect_image(src, media, limits, work))


def make_work_dir(parent: str) -> Path:
    """A fresh private directory under `parent` (what tempfile.mkdtemp does)."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    while True:
        path = Path(parent) / f"mediaflow-{os.urandom(6).hex()}"
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return path


def destinations(options: OperationOptions, settings: Settings) -> dict[str, str]:
    """Where each output of the plan goes: the one output URL, or one per rendition
    (ConfigError when the Secret lacks one: an operator bug, not the user's)."""
    if not isinstance(options, ImageRenditionsOptions):
        if not settings.output_url:
            raise ConfigError("the worker has no output URL")
        return {OUTPUT: settings.output_url}
    urls = dict(settings.output_urls)
    missing = [r.name for r in options.renditions if not urls.get(r.name)]
    if missing:
        raise ConfigError(f"the worker has no output URL for the renditions {', '.join(missing)}")
    return {r.name: urls[r.name] for r in options.renditions}


def result_of(options: OperationOptions, results: list[dict]) -> dict:
    """The termination message's fields: the one output's; with renditions the first
    rendition's, and every rendition's by name (keys, sizes, dimensions: never a URL)."""
    if not isinstance(options, ImageRenditionsOptions):
        (result,) = results
        return result
    renditions = [
        {"name": r.name, **{k: v for k, v in result.items() if k != "duration"}}
        for r, result in zip(options.renditions, results, strict=True)
    ]
    return {**results[0], "renditions": renditions}


def run(settings: Settings) -> dict:
    """Do the whole job; raise a WorkerError on failure. The work directory is always cleaned.

    Returns the result (the termination message's fields).
    """
    options = validate_options(settings)  # before anything is downloaded
    where = destinations(options, settings)
    kind = "video" if Operation(settings.operation).is_video else "image"
    work = make_work_dir(settings.work_dir)
    try:
        src = work / "input"
        size = fetch(
            settings.input_url,
            src,
            settings.limits.max_input_bytes,
            settings.fetch_timeout,
            public_only=settings.input_public_only,
        )
        if (meter := cost.current()) is not None:
            meter.add_input(size)
        source = learn(src, kind, settings.limits, work)
        job_plan = planner.plan(options, source, settings.limits, settings.threads, work)
        return result_of(options, execute(job_plan, work, settings, where))
    finally:
        # Every tool was killed and reaped by run_tool/execute on the way out.
        shutil.rmtree(work, ignore_errors=True)
