"""The executor: run a Plan's steps, verify every output, upload it (the I/O around planner.py).

Verification holds each output to what the plan expects: libmagic's type, the header and a walk
of the whole file's structure, the size, and a decode (ffprobe; or dwebp/avifdec for WebP and
AVIF, running while the upload does). Nothing here decides what to run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from mediaflow_core.libmagic import mime_type
from mediaflow_core.media import MediaType

from . import cost
from .commands import CONTENT_TYPES, OUTPUT_DEMUXERS
from .errors import InternalError, InvalidInput
from .headers import check_structure, output_header
from .planner import Output, Plan, Step
from .probe import ffprobe_args, parse_probe_output
from .progress import ProgressTracker
from .report import log
from .settings import Settings
from .tools import RunningTool, run_tool, start_tool
from .transfer import upload

PROBE_TIMEOUT = 120.0


def run_step(step: Step, work: Path, settings: Settings) -> None:
    """Run one step; InvalidInput when the tool refuses the input."""
    log("convert", tool=step.tool, **step.notes)
    on_line = None
    if step.progress is not None:
        tracker = ProgressTracker(step.progress)

        def on_line(line: str) -> None:
            percent = tracker.feed(line)
            if percent is not None:
                log("progress", percent=percent)

    timeout = settings.tool_timeout if step.deadline == "tool" else None
    res = run_tool(list(step.args), work, timeout=timeout, on_line=on_line)
    if res.returncode != 0:
        tail = res.stderr_tail or "decoder error"
        raise InvalidInput(f"the {step.subject} could not be converted: {tail}")
    for path in step.releases:
        path.unlink(missing_ok=True)
    if step.progress is not None:
        log("progress", percent=100.0)


def execute(
    plan: Plan, work: Path, settings: Settings, destinations: Mapping[str, str]
) -> list[dict]:
    """Run `plan` in `work`, then check and upload each output to `destinations[output.name]`.

    Returns the results (the termination message's fields) in the plan's order. An output is
    uploaded only once its type, header, structure and size passed; a full decode left running
    by `check_output` overlaps its upload, and the job succeeds only if it passed too.
    """
    started = time.monotonic()
    for step in plan.steps:
        run_step(step, work, settings)
    for path in plan.intermediates:
        path.unlink(missing_ok=True)
    log("converted", seconds=round(time.monotonic() - started, 3))
    results = []
    for output in plan.outputs:
        result, decoder = check_output(output, work, settings.verify_decode)
        try:
            # An output that then fails to decode has been uploaded, but the job fails (exit
            # 70, no result): the operator publishes nothing, and the retry overwrites it.
            upload(output.path, destinations[output.name], result["contentType"])
            if (meter := cost.current()) is not None:
                meter.add_output(result["size"])
            if decoder is not None:
                finish_decode(decoder)
        finally:
            if decoder is not None:
                decoder.kill()
        log("verified", width=result["width"], height=result["height"])
        results.append(result)
    return results


# ---------------------------------------------------------------- verification

_MIME_ALIASES = {"image/x-ms-bmp": "image/bmp", "video/quicktime": "video/mp4"}
VIDEO_FORMATS = ("mp4", "webm", "mkv")

# Commands that fully decode one output file and exit non-zero when it does not decode.
# dwebp -yuv: the whole bitstream decoded (VP8 with loop filter, or VP8L; alpha included, as
# YUVA), only the final YUV->RGBA conversion skipped: ~12 % faster than -pam, 12 MB of 4K
# samples instead of 33 MB, and the same failures (a cut file is NOT_ENOUGH_DATA either way).
NATIVE_DECODERS = {
    "webp": lambda path: ["dwebp", "-quiet", path, "-yuv", "-o", "/dev/null"],
    "avif": lambda path: ["avifdec", "--info", path],
}


def check_output(output: Output, work: Path, decode: bool) -> tuple[dict, RunningTool | None]:
    """Check the file is `output.format` with the expected size; returns the result and, for
    WebP and AVIF with `decode`, the format's own decoder still running on it (see
    `finish_decode`).

    Type, header and size are checked before this returns; so is everything ffprobe reports
    (other formats, videos). Only the full decode of WebP/AVIF is left running, so that it can
    overlap the upload; the job succeeds only once `finish_decode` has passed.
    """
    path, fmt, expected = output.path, output.format, output.size
    if not path.exists() or path.stat().st_size == 0:
        raise InvalidInput(output.missing)
    mime = mime_type(str(path))
    content_type = CONTENT_TYPES[fmt]
    if _MIME_ALIASES.get(mime, mime) != content_type:
        raise InternalError(f"the output is {mime}, expected {content_type}")
    video = fmt in VIDEO_FORMATS
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


def verify(output: Output, work: Path, decode: bool) -> dict:
    """Check the file is what `output` expects and (if `decode`) that it decodes."""
    result, decoder = check_output(output, work, decode)
    if decoder is not None:
        finish_decode(decoder)
    return result
