"""The planner: (typed options, what was learned of the input, limits) -> a Plan. Pure.

A Plan is everything the executor needs and nothing it must decide: the commands (argument
lists) in order, the intermediate files, and the expected outputs that verification holds the
files to. The operation is the class of the validated options (mediaflow_core.options); `plan`
dispatches on it once. Every refusal that depends on the input and the options together (an
output over the pixel limit, a timestamp past the end, a metadata-only rotation of a WebM) is
made here, before any tool runs.

A Plan carries a tuple of outputs: every operation plans one output, named `OUTPUT`, except
an ImageConvert with renditions (issue 12, item 3), which plans one decode step (ffmpeg, one
run: the input oriented and scaled to every distinct size as uncompressed PNG frames) and one
encode step per rendition, each output named by its rendition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from mediaflow_core.media import IMAGE_TYPES, MediaType
from mediaflow_core.options import (
    ImageConvertOptions,
    ImageRenditionsOptions,
    ImageResizeOptions,
    OperationOptions,
    VideoConvertOptions,
    VideoResizeOptions,
    VideoRotateOptions,
    VideoThumbnailOptions,
    VideoTrimOptions,
)

from . import plans
from .errors import InternalError, InvalidInput
from .headers import ImageHeader
from .probe import Limits, MediaInfo

OUTPUT = "output"  # the name of a plan's only output today (the Job's output URL)
NO_OUTPUT = "the conversion produced no output from this input"


@dataclass(frozen=True, slots=True)
class ImageSource:
    """An image input, sniffed, with its header read and checked against the limits."""

    path: Path
    media: MediaType
    header: ImageHeader


@dataclass(frozen=True, slots=True)
class VideoSource:
    """A video input, sniffed, probed with its forced demuxer and checked against the limits."""

    path: Path
    media: MediaType
    info: MediaInfo


Source = ImageSource | VideoSource


@dataclass(frozen=True, slots=True)
class Step:
    """One tool run. A non-zero exit means the input could not be converted (`subject` names
    the input in that message: "image" or "video")."""

    args: tuple[str, ...]
    subject: Literal["image", "video"]
    # "tool": the worker's per-tool time limit (Settings.tool_timeout) applies; "pod": only the
    # pod's activeDeadlineSeconds bounds it (video encodes run for as long as the video needs).
    deadline: Literal["tool", "pod"] = "tool"
    # Output duration in seconds when the tool reports `-progress pipe:1` (video encodes).
    progress: float | None = None
    # Files no later step reads, removed once this step succeeded (scratch space is bounded).
    releases: tuple[Path, ...] = ()
    # Fields of the step's `convert` log line (tool, format, filters / container, codec).
    notes: Mapping[str, object] = field(default_factory=dict)

    @property
    def tool(self) -> str:
        """The program this step runs."""
        return self.args[0]


@dataclass(frozen=True, slots=True)
class Output:
    """A file a plan must produce, and what verification holds it to."""

    name: str  # which destination it is uploaded to
    path: Path
    format: str  # an ImageFormat, ThumbnailFormat or Container value
    content_type: str
    width: int
    height: int
    duration: float | None = None  # expected seconds of a video output (reported, not compared)
    missing: str = NO_OUTPUT  # the InvalidInput message when the file is absent or empty

    @property
    def size(self) -> tuple[int, int]:
        """Expected (width, height)."""
        return self.width, self.height


@dataclass(frozen=True, slots=True)
class Plan:
    """Commands to run in order, the scratch files between them, the outputs they produce."""

    steps: tuple[Step, ...]
    outputs: tuple[Output, ...]
    intermediates: tuple[Path, ...] = ()


def plan(
    options: OperationOptions, source: Source, limits: Limits, threads: int, work: Path
) -> Plan:
    """The Plan of one operation on one inspected input; InvalidInput when it cannot be done.

    The operation is the class of `options`; its input must have been inspected as its kind
    (header for images, ffprobe for videos), or this is a worker bug (InternalError).
    """
    match options, source:
        case ImageConvertOptions(), ImageSource():
            return _image_plan(
                plans.image_job_for_convert(source.media, options, *_header_fields(source)),
                source,
                limits,
                threads,
                work,
            )
        case ImageRenditionsOptions(), ImageSource():
            return _renditions_plan(options, source, limits, threads, work)
        case ImageResizeOptions(), ImageSource():
            return _image_plan(
                plans.image_job_for_resize(source.media, options, *_header_fields(source)),
                source,
                limits,
                threads,
                work,
            )
        case VideoConvertOptions(), VideoSource():
            job = plans.video_convert_job(source.media, source.info, options)
            return _encode_plan(job, source, limits, threads, work)
        case VideoRotateOptions(), VideoSource():
            return _rotate_plan(options, source, limits, threads, work)
        case VideoResizeOptions(), VideoSource():
            width, height = _video_size(source.info)
            w, h = plans.video_resize_size(width, height, options)
            job = plans.default_video_job(
                source.media, source.info, [f"scale={w}:{h}", "setsar=1"], (w, h)
            )
            return _encode_plan(job, source, limits, threads, work)
        case VideoTrimOptions(), VideoSource():
            return _trim_plan(options, source, limits, threads, work)
        case VideoThumbnailOptions(), VideoSource():
            return _thumbnail_plan(options, source, limits, threads, work)
    raise InternalError(
        f"no plan for {type(options).__name__} on an input inspected as {type(source).__name__}"
    )


# ---------------------------------------------------------------- images


def _header_fields(source: ImageSource) -> tuple[int, int, int, bool]:
    header = source.header
    return header.width, header.height, header.orientation, header.animated


def _image_plan(
    job: plans.ImageJob, source: ImageSource, limits: Limits, threads: int, work: Path
) -> Plan:
    out_w, out_h = job.out_size
    if out_w * out_h > limits.max_pixels:
        raise InvalidInput(
            f"the requested output of {out_w}x{out_h} exceeds the "
            f"{limits.max_pixels / 1e6:g}-megapixel limit"
        )
    fmt = job.out_format.value
    src, dst = source.path, work / f"output.{fmt}"
    notes = {"format": fmt, "filters": tuple(job.filters)}
    output = Output(OUTPUT, dst, fmt, plans.CONTENT_TYPES[fmt], out_w, out_h)
    if job.tool == "cwebp":
        args = plans.cwebp_args(
            str(src), str(dst), job.quality, job.lossless, threads, resize=job.plain_scale
        )
        return Plan((_image_step(args, (src,), notes),), (output,))
    if job.tool == "avifenc":
        args = plans.avifenc_args(str(src), str(dst), job.quality, threads)
        return Plan((_image_step(args, (src,), notes),), (output,))
    if job.tool == "ffmpeg+avifenc":
        # avifenc reads neither GIF, BMP, TIFF, WebP nor AVIF, and applies no filter: ffmpeg
        # writes the oriented/resized first frame as a fast PNG, which avifenc encodes.
        frame = work / "frame.png"
        first = plans.image_ffmpeg_args(
            job, str(src), str(frame), threads, limits.max_pixels, intermediate=True
        )
        second = plans.avifenc_args(str(frame), str(dst), job.quality, threads)
        steps = (_image_step(first, (src,), notes), _image_step(second, (frame,), notes))
        return Plan(steps, (output,), intermediates=(frame,))
    args = plans.image_ffmpeg_args(job, str(src), str(dst), threads, limits.max_pixels)
    return Plan((_image_step(args, (src,), notes),), (output,))


def _image_step(args: list[str], releases: tuple[Path, ...], notes: Mapping[str, object]) -> Step:
    return Step(tuple(args), "image", "tool", None, releases, notes)


# The decode step's frames are read back by cwebp, avifenc or ffmpeg (forced PNG demuxer).
_FRAME_MEDIA = IMAGE_TYPES["image/png"]


def _renditions_plan(
    options: ImageRenditionsOptions, source: ImageSource, limits: Limits, threads: int, work: Path
) -> Plan:
    """One decode of the input (orientation applied, the first frame of an animation) to an
    uncompressed PNG per distinct output size, then one encode per rendition from its size's
    frame. Each frame is released by the last encode that reads it."""
    header = source.header
    display = plans.oriented_size(header.width, header.height, header.orientation)
    sizes = [plans.rendition_size(*display, r.width, r.height) for r in options.renditions]
    for (out_w, out_h), rendition in zip(sizes, options.renditions, strict=True):
        if out_w * out_h > limits.max_pixels:
            raise InvalidInput(
                f"rendition {rendition.name} of {out_w}x{out_h} exceeds the "
                f"{limits.max_pixels / 1e6:g}-megapixel limit"
            )
    distinct = list(dict.fromkeys(sizes))
    frames = tuple(work / f"decoded-{n}.png" for n in range(len(distinct)))
    decode_args = plans.renditions_decode_args(
        source.media,
        str(source.path),
        plans.ORIENTATION_FILTERS.get(header.orientation, []),
        display,
        list(zip(distinct, map(str, frames), strict=True)),
        threads,
        limits.max_pixels,
    )
    decode = Step(
        tuple(decode_args), "image", "tool", None, (source.path,), {"decode": len(distinct)}
    )
    frame_of = [frames[distinct.index(size)] for size in sizes]
    last_use = {frame: n for n, frame in enumerate(frame_of)}
    steps, outputs = [decode], []
    for n, (rendition, (out_w, out_h)) in enumerate(zip(options.renditions, sizes, strict=True)):
        fmt = rendition.format.value
        frame, dst = frame_of[n], work / f"rendition-{rendition.name}.{fmt}"
        args = plans.rendition_encode_args(
            fmt, rendition.quality, str(frame), str(dst), _FRAME_MEDIA, threads, limits.max_pixels
        )
        releases = (frame,) if last_use[frame] == n else ()
        notes = {"format": fmt, "rendition": rendition.name}
        steps.append(Step(tuple(args), "image", "tool", None, releases, notes))
        content_type = plans.CONTENT_TYPES[fmt]
        outputs.append(Output(rendition.name, dst, fmt, content_type, out_w, out_h))
    return Plan(tuple(steps), tuple(outputs), intermediates=frames)


# ---------------------------------------------------------------- videos


def _video_size(info: MediaInfo) -> tuple[int, int]:
    # check_video guarantees both (a VideoSource has passed it).
    return info.width or 0, info.height or 0


def _encode_plan(
    job: plans.VideoJob, source: VideoSource, limits: Limits, threads: int, work: Path
) -> Plan:
    """A re-encode to the job's container, with progress."""
    fmt = job.container.value
    dst = work / f"output.{fmt}"
    args = plans.video_ffmpeg_args(
        job,
        source.info,
        str(source.path),
        str(dst),
        threads,
        limits.max_pixels,
        limits.max_duration_seconds,
    )
    notes = {"container": fmt, "codec": job.codec.value}
    step = Step(tuple(args), "video", "pod", job.duration or 0.0, (source.path,), notes)
    width, height = job.out_size
    output = Output(OUTPUT, dst, fmt, plans.CONTENT_TYPES[fmt], width, height, job.duration)
    return Plan((step,), (output,))


def _rotate_plan(
    options: VideoRotateOptions, source: VideoSource, limits: Limits, threads: int, work: Path
) -> Plan:
    width, height = _video_size(source.info)
    if not options.metadata_only:
        rw, rh = plans.rotated_size(width, height, options.degrees)
        filters = plans.ROTATE_FILTERS[options.degrees] + plans.even_crop_filters(rw, rh)
        size = (plans.even(rw), plans.even(rh))
        job = plans.default_video_job(source.media, source.info, filters, size)
        return _encode_plan(job, source, limits, threads, work)
    if source.media.name not in ("mp4", "mov"):
        raise InvalidInput(
            "metadataOnly rotation needs an MP4 or MOV input; this one is "
            f"{source.media.name}; set metadataOnly to false to re-encode"
        )
    dst = work / "output.mp4"
    args = plans.metadata_rotation_args(
        source.media, source.info, options.degrees, str(source.path), str(dst), limits.max_pixels
    )
    step = Step(tuple(args), "video", "pod", None, (source.path,), {"container": "mp4"})
    rw, rh = plans.rotated_size(width, height, options.degrees)
    output = Output(OUTPUT, dst, "mp4", plans.CONTENT_TYPES["mp4"], rw, rh, source.info.duration)
    return Plan((step,), (output,))


def _trim_plan(
    options: VideoTrimOptions, source: VideoSource, limits: Limits, threads: int, work: Path
) -> Plan:
    width, height = _video_size(source.info)
    duration = source.info.duration or 0.0
    start, end = options.start_seconds, options.end_seconds
    if start >= duration:
        raise InvalidInput(f"start {options.start} is past the end of the video ({duration:.3f} s)")
    size = (plans.even(width), plans.even(height))
    job = plans.default_video_job(
        source.media, source.info, plans.even_crop_filters(width, height), size
    )
    # Audio is re-encoded: a copied stream cannot be cut at the exact frame.
    trimmed = replace(job, start=start, duration=min(end, duration) - start, copy_audio=False)
    return _encode_plan(trimmed, source, limits, threads, work)


def _thumbnail_plan(
    options: VideoThumbnailOptions, source: VideoSource, limits: Limits, threads: int, work: Path
) -> Plan:
    width, height = _video_size(source.info)
    duration = source.info.duration or 0.0
    if options.timestamp_seconds >= duration:
        raise InvalidInput(
            f"timestamp {options.timestamp} is past the end of the video ({duration:.3f} s)"
        )
    fmt = options.format.value
    dst = work / f"output.{fmt}"
    args = plans.thumbnail_args(
        source.media,
        options.format,
        options.timestamp_seconds,
        str(source.path),
        str(dst),
        threads,
        limits.max_pixels,
    )
    step = Step(tuple(args), "video", "pod", None, (source.path,), {"format": fmt})
    output = Output(
        OUTPUT,
        dst,
        fmt,
        plans.CONTENT_TYPES[fmt],
        width,
        height,
        missing=f"the video has no frame at {options.timestamp}",
    )
    return Plan((step,), (output,))
