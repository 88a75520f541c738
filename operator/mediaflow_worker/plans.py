"""Pure pieces of plans: output sizes, quality scales and the argument lists of every tool run
(planner.py puts them together into a Plan)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mediaflow_core.formats import (
    DEFAULT_CRF,
    Container,
    FitMode,
    ImageFormat,
    Preset,
    ThumbnailFormat,
    VideoCodec,
)
from mediaflow_core.media import MediaType

from .commands import (  # noqa: F401 - re-exported: plans is where commands are looked up
    AVIFENC_READS,
    CONTENT_TYPES,
    CWEBP_READS,
    OUTPUT_DEMUXERS,
    avif_quantizer,
    avifenc_args,
    cwebp_args,
)
from .probe import MediaInfo, hardened_input

if TYPE_CHECKING:  # annotations only
    from mediaflow_core.options import (
        ImageConvertOptions,
        ImageResizeOptions,
        VideoConvertOptions,
        VideoResizeOptions,
    )


# EXIF orientation -> ffmpeg filters that make the pixels look as the orientation says.
ORIENTATION_FILTERS: dict[int, list[str]] = {
    1: [],
    2: ["hflip"],
    3: ["hflip", "vflip"],
    4: ["vflip"],
    5: ["transpose=0"],
    6: ["transpose=1"],
    7: ["transpose=3"],
    8: ["transpose=2"],
}


# ---------------------------------------------------------------- quality scales


def jpeg_qscale(quality: int) -> int:
    """Quality 1-100 (higher better) -> mjpeg -q:v 31-2 (lower better)."""
    return round(31 - (quality - 1) * 29 / 99)


# ---------------------------------------------------------------- image geometry


@dataclass(frozen=True)
class ImageGeometry:
    """Scale to (scale_w, scale_h), then crop or pad to (width, height)."""

    scale_w: int
    scale_h: int
    width: int
    height: int
    mode: str = "none"  # none | crop | pad

    def filters(self, source: tuple[int, int]) -> list[str]:
        """ffmpeg filters producing this geometry from a `source`-sized picture."""
        chain = []
        if (self.scale_w, self.scale_h) != source:
            chain.append(f"scale={self.scale_w}:{self.scale_h}:flags=lanczos")
        if self.mode == "crop":
            chain.append(f"crop={self.width}:{self.height}")
        elif self.mode == "pad":
            chain += [
                "format=rgba",
                f"pad={self.width}:{self.height}:(ow-iw)/2:(oh-ih)/2:color=black@0",
            ]
        if chain:
            chain.append("setsar=1")
        return chain


def _scaled(size: int, factor: float) -> int:
    return max(1, round(size * factor))


def image_geometry(src_w: int, src_h: int, opts: ImageResizeOptions) -> ImageGeometry:
    """Output geometry of an image resize (source size is as displayed, orientation applied)."""
    # cover, contain and fill always have both sides (the model checks); inside may lack one.
    box_w, box_h = opts.width or 0, opts.height or 0
    up = opts.allow_upscale
    if opts.fit is FitMode.FILL:
        width = box_w if up else min(box_w, src_w)
        height = box_h if up else min(box_h, src_h)
        return ImageGeometry(width, height, width, height)
    factors = [f for f in (box_w / src_w, box_h / src_h) if f > 0]
    if opts.fit is FitMode.COVER:
        factor = max(factors) if up else min(max(factors), 1.0)
        scale_w, scale_h = _scaled(src_w, factor), _scaled(src_h, factor)
        width, height = min(box_w, scale_w), min(box_h, scale_h)
        mode = "crop" if (width, height) != (scale_w, scale_h) else "none"
        return ImageGeometry(scale_w, scale_h, width, height, mode)
    factor = min(factors) if up else min(min(factors), 1.0)
    scale_w, scale_h = min(_scaled(src_w, factor), box_w or 10**9), _scaled(src_h, factor)
    scale_h = min(scale_h, box_h or 10**9)
    if opts.fit is FitMode.CONTAIN:
        mode = "pad" if (scale_w, scale_h) != (box_w, box_h) else "none"
        return ImageGeometry(scale_w, scale_h, box_w, box_h, mode)
    return ImageGeometry(scale_w, scale_h, scale_w, scale_h)


# ---------------------------------------------------------------- image commands


@dataclass(frozen=True)
class ImageJob:
    """Everything an image conversion needs, decided up front."""

    media: MediaType
    out_format: ImageFormat
    quality: int
    lossless: bool
    src_w: int  # as stored
    src_h: int
    orientation: int
    animated: bool
    geometry: ImageGeometry | None = None

    @property
    def display_size(self) -> tuple[int, int]:
        """Size after applying the EXIF orientation."""
        if self.orientation >= 5:
            return self.src_h, self.src_w
        return self.src_w, self.src_h

    @property
    def out_size(self) -> tuple[int, int]:
        """Expected output size."""
        if self.geometry:
            return self.geometry.width, self.geometry.height
        return self.display_size

    @property
    def filters(self) -> list[str]:
        """Orientation, then resize."""
        chain = list(ORIENTATION_FILTERS.get(self.orientation, []))
        if self.geometry:
            chain += self.geometry.filters(self.display_size)
        return chain

    @property
    def plain_scale(self) -> tuple[int, int] | None:
        """The output size when the job only scales a still picture (no orientation to
        apply, no crop or pad): an encoder's own rescaler can do it. None otherwise."""
        geometry = self.geometry
        if geometry is None or self.animated or self.orientation != 1 or geometry.mode != "none":
            return None
        size = geometry.width, geometry.height
        return None if size == self.display_size else size

    @property
    def keeps_animation(self) -> bool:
        """Animated input to an animation-capable output stays animated."""
        return self.animated and self.out_format in (ImageFormat.GIF, ImageFormat.WEBP)

    @property
    def tool(self) -> str:
        """cwebp, avifenc, ffmpeg, or ffmpeg+avifenc (ffmpeg writes a PNG for avifenc)."""
        direct = not self.filters and not self.animated
        if self.out_format is ImageFormat.WEBP:
            cwebp_can = direct or self.plain_scale is not None
            return "cwebp" if cwebp_can and self.media.name in CWEBP_READS else "ffmpeg"
        if self.out_format is ImageFormat.AVIF:
            return "avifenc" if direct and self.media.name in AVIFENC_READS else "ffmpeg+avifenc"
        return "ffmpeg"


def oriented_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """The size as displayed: EXIF orientations 5-8 swap the sides."""
    return (height, width) if orientation >= 5 else (width, height)


def rendition_size(
    src_w: int, src_h: int, width: int | None, height: int | None
) -> tuple[int, int]:
    """A rendition's size: fit inside width x height (either may be absent), keeping the
    aspect ratio, never enlarged (ImageResize's `inside` without upscaling)."""
    factors = [f for f in ((width or 0) / src_w, (height or 0) / src_h) if f > 0]
    factor = min([*factors, 1.0])
    out_w = min(_scaled(src_w, factor), width or src_w)
    out_h = min(_scaled(src_h, factor), height or src_h)
    return out_w, out_h


def renditions_decode_args(
    media: MediaType,
    src: str,
    orientation_filters: list[str],
    display: tuple[int, int],
    frames: list[tuple[tuple[int, int], str]],
    threads: int,
    max_pixels: int,
) -> list[str]:
    """One ffmpeg run that decodes the input once (hardened, first frame) and writes it, oriented,
    at every size of `frames` ((width, height), path) as an uncompressed PNG."""
    head = ffmpeg_head(media, src, threads, max_pixels)
    head.insert(head.index("-f"), "-noautorotate")
    labels = [f"[s{n}]" for n in range(len(frames))]
    graph = f"[0:v]{','.join([*orientation_filters, f'split={len(frames)}'])}{''.join(labels)}"
    args = []
    for n, ((width, height), path) in enumerate(frames):
        scale = "null" if (width, height) == display else f"scale={width}:{height}:flags=lanczos"
        graph += f";{labels[n]}{scale},setsar=1[o{n}]"
        args += ["-map", f"[o{n}]", "-frames:v", "1", "-c:v", "png", "-compression_level", "0"]
        args += ["-f", "image2", "-update", "1", f"file:{path}"]
    return [*head, "-filter_complex", graph, "-map_metadata", "-1", "-threads", str(threads), *args]


def rendition_encode_args(
    fmt: str,
    quality: int,
    frame: str,
    dst: str,
    frame_media: MediaType,
    threads: int,
    max_pixels: int,
) -> list[str]:
    """The encode of one rendition from its decoded PNG frame: cwebp, avifenc, or ffmpeg
    (PNG, JPEG) reading the frame with the PNG demuxer forced."""
    if fmt == "webp":
        return cwebp_args(frame, dst, quality, False, threads)
    if fmt == "avif":
        return avifenc_args(frame, dst, quality, threads)
    head = ffmpeg_head(frame_media, frame, threads, max_pixels)
    encode = image_encode_args(fmt, quality, False, False)
    return [*head, "-frames:v", "1", "-map_metadata", "-1", *encode, f"file:{dst}"]


def image_job_for_convert(
    media: MediaType,
    opts: ImageConvertOptions,
    w: int,
    h: int,
    orientation: int,
    animated: bool,
) -> ImageJob:
    """ImageJob of an ImageConvert."""
    return ImageJob(media, opts.format, opts.quality, opts.lossless, w, h, orientation, animated)


def image_job_for_resize(
    media: MediaType, opts: ImageResizeOptions, w: int, h: int, orientation: int, animated: bool
) -> ImageJob:
    """ImageJob of an ImageResize (output format defaults to the input's)."""
    out_format = opts.format or ImageFormat(media.name)
    job = ImageJob(media, out_format, opts.quality, False, w, h, orientation, animated)
    return ImageJob(**{**job.__dict__, "geometry": image_geometry(*job.display_size, opts)})


def ffmpeg_head(media: MediaType, path: str, threads: int, max_pixels: int) -> list[str]:
    """The hardened start of every ffmpeg command, up to and including the input."""
    return [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-threads",
        str(threads),
        *hardened_input(media, max_pixels),
        "-i",
        f"file:{path}",
    ]


def _strip_metadata() -> list[str]:
    return ["-map_metadata", "-1", "-map_chapters", "-1", "-fflags", "+bitexact"]


def image_encode_args(fmt: str, quality: int, lossless: bool, animated: bool) -> list[str]:
    """ffmpeg encoder and muxer options for one image format."""
    if fmt == "webp":
        encoder = "libwebp_anim" if animated else "libwebp"
        args = ["-c:v", encoder, "-quality", str(quality)]
        if lossless:
            args += ["-lossless", "1"]
        return [*args, "-loop", "0", "-f", "webp"] if animated else [*args, "-f", "webp"]
    if fmt == "gif":
        return ["-c:v", "gif", "-loop", "0", "-f", "gif"] if animated else ["-f", "gif"]
    if fmt == "jpeg":
        args = ["-c:v", "mjpeg", "-q:v", str(jpeg_qscale(quality)), "-pix_fmt", "yuvj444p"]
        return [*args, "-f", "image2", "-update", "1"]
    codec = {"png": "png", "bmp": "bmp", "tiff": "tiff"}[fmt]
    return ["-c:v", codec, "-f", "image2", "-update", "1"]


def _filter_args(filters: list[str], gif: bool) -> list[str]:
    if gif:
        # Per-frame palettes: a global palette would buffer every frame of an animation.
        graph = ",".join([*filters, "split[a][b]"]) if filters else "split[a][b]"
        graph += ";[a]palettegen=stats_mode=single[p];[b][p]paletteuse=new=1"
        return ["-filter_complex", graph]
    return ["-vf", ",".join(filters)] if filters else []


def image_ffmpeg_args(
    job: ImageJob, src: str, dst: str, threads: int, max_pixels: int, *, intermediate: bool = False
) -> list[str]:
    """ffmpeg command of an image job; `intermediate` writes a fast PNG for avifenc instead."""
    head = ffmpeg_head(job.media, src, threads, max_pixels)
    head.insert(head.index("-f"), "-noautorotate")
    fmt = "png" if intermediate else job.out_format.value
    gif = fmt == "gif"
    args = [*head, *_filter_args(job.filters, gif)]
    if not job.keeps_animation or intermediate:
        args += ["-frames:v", "1"]
    args += ["-map_metadata", "-1", "-threads", str(threads)]
    if intermediate:
        args += ["-c:v", "png", "-compression_level", "0", "-f", "image2", "-update", "1"]
    else:
        args += image_encode_args(fmt, job.quality, job.lossless, job.keeps_animation)
    return [*args, f"file:{dst}"]


# ---------------------------------------------------------------- video geometry


def even(value: float) -> int:
    """Round down to an even number, at least 2."""
    return max(2, int(value) // 2 * 2)


def video_resize_size(src_w: int, src_h: int, opts: VideoResizeOptions) -> tuple[int, int]:
    """Even output size of a video resize (source as displayed)."""
    w, h = opts.width, opts.height
    if not opts.keep_aspect:
        return even(w or src_w), even(h or src_h)
    factors = [f for f in ((w or 0) / src_w, (h or 0) / src_h) if f > 0]
    factor = min(factors)
    return even(round(src_w * factor)), even(round(src_h * factor))


# ---------------------------------------------------------------- video commands

_VP9_SPEED = {  # preset -> (deadline, cpu-used)
    Preset.ULTRAFAST: ("realtime", 8),
    Preset.SUPERFAST: ("realtime", 7),
    Preset.VERYFAST: ("good", 5),
    Preset.FASTER: ("good", 4),
    Preset.FAST: ("good", 3),
    Preset.MEDIUM: ("good", 2),
    Preset.SLOW: ("good", 1),
    Preset.SLOWER: ("good", 0),
    Preset.VERYSLOW: ("best", 0),
}
_SVTAV1_PRESET = {  # SVT-AV1 presets run 0 (slowest) to 13 (fastest)
    Preset.ULTRAFAST: 12,
    Preset.SUPERFAST: 11,
    Preset.VERYFAST: 10,
    Preset.FASTER: 9,
    Preset.FAST: 8,
    Preset.MEDIUM: 7,
    Preset.SLOW: 5,
    Preset.SLOWER: 4,
    Preset.VERYSLOW: 2,
}
# Audio codecs each container takes as they are (otherwise re-encoded).
_AUDIO_COPY = {
    Container.MP4: {"aac", "mp3", "ac3", "eac3", "alac"},
    Container.WEBM: {"opus", "vorbis"},
    Container.MKV: {"aac", "mp3", "ac3", "eac3", "opus", "vorbis", "flac", "alac", "dts"},
}
MUXERS = {Container.MP4: "mp4", Container.WEBM: "webm", Container.MKV: "matroska"}


def video_codec_args(
    codec: VideoCodec, crf: int, preset: Preset, threads: int, container: Container
) -> list[str]:
    """Encoder options; always 8-bit 4:2:0 so every player can decode the output."""
    if codec is VideoCodec.H264:
        args = ["-c:v", "libx264", "-preset", preset.value, "-crf", str(crf)]
    elif codec is VideoCodec.H265:
        args = ["-c:v", "libx265", "-preset", preset.value, "-crf", str(crf)]
        args += ["-x265-params", f"log-level=error:pools={threads}"]
        if container is Container.MP4:
            args += ["-tag:v", "hvc1"]  # what Apple players need to recognise HEVC in MP4
    elif codec is VideoCodec.VP9:
        deadline, cpu = _VP9_SPEED[preset]
        args = ["-c:v", "libvpx-vp9", "-crf", str(crf), "-b:v", "0"]
        args += ["-deadline", deadline, "-cpu-used", str(cpu), "-row-mt", "1"]
    else:
        args = ["-c:v", "libsvtav1", "-crf", str(crf), "-preset", str(_SVTAV1_PRESET[preset])]
        args += ["-svtav1-params", f"lp={threads}"]
    return [*args, "-pix_fmt", "yuv420p"]


def audio_args(container: Container, codec: VideoCodec, audio_codec: str | None, copy: bool):
    """Audio options: none without audio, copy when allowed and compatible, else re-encode."""
    if audio_codec is None:
        return ["-an"]
    if copy and audio_codec in _AUDIO_COPY[container]:
        return ["-c:a", "copy"]
    if container is Container.MP4 or (
        container is Container.MKV and codec in (VideoCodec.H264, VideoCodec.H265)
    ):
        return ["-c:a", "aac", "-b:a", "128k"]
    return ["-c:a", "libopus", "-b:a", "96k"]


def container_for_input(media: MediaType) -> Container:
    """Container of rotate/resize/trim outputs: WebM stays WebM, Matroska stays MKV, else MP4."""
    return {"webm": Container.WEBM, "matroska": Container.MKV}.get(media.name, Container.MP4)


@dataclass(frozen=True)
class VideoJob:
    """A video re-encode, decided up front."""

    media: MediaType
    container: Container
    codec: VideoCodec
    crf: int
    preset: Preset
    filters: list[str] = field(default_factory=list)
    out_size: tuple[int, int] = (0, 0)
    start: float | None = None
    duration: float | None = None  # of the output, for progress
    copy_audio: bool = True


def video_ffmpeg_args(
    job: VideoJob,
    info: MediaInfo,
    src: str,
    dst: str,
    threads: int,
    max_pixels: int,
    max_seconds: float | None = None,
) -> list[str]:
    """ffmpeg command of a video re-encode, with progress on stdout.

    `max_seconds` caps the output even if the container understated its duration.
    """
    head = ffmpeg_head(job.media, src, threads, max_pixels)
    if job.start is not None:
        # Before -i: fast seek; with re-encoding ffmpeg still cuts at the exact frame.
        head[head.index("-i") : head.index("-i")] = ["-ss", f"{job.start:.3f}"]
    args = [*head, "-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn"]
    if job.start is not None and job.duration is not None:
        args += ["-t", f"{job.duration:.3f}"]
    elif max_seconds is not None:
        args += ["-t", f"{max_seconds:.3f}"]
    args += ["-vf", ",".join(job.filters)] if job.filters else []
    args += video_codec_args(job.codec, job.crf, job.preset, threads, job.container)
    args += audio_args(job.container, job.codec, info.audio_codec, job.copy_audio)
    args += ["-threads", str(threads), *_strip_metadata()]
    if job.container is Container.MP4:
        args += ["-movflags", "+faststart"]
    return [
        *args,
        "-progress",
        "pipe:1",
        "-nostats",
        "-f",
        MUXERS[job.container],
        f"file:{dst}",
    ]


def even_crop_filters(width: int, height: int) -> list[str]:
    """Crop one pixel off odd dimensions (4:2:0 encoders need even sizes)."""
    if width % 2 or height % 2:
        return [f"crop={even(width)}:{even(height)}:0:0"]
    return []


def video_convert_job(
    media: MediaType, info: MediaInfo, opts: VideoConvertOptions, *, start: float | None = None
) -> VideoJob:
    """VideoJob of a VideoConvert (check_video guarantees the dimensions)."""
    width, height = info.width or 0, info.height or 0
    return VideoJob(
        media,
        opts.container,
        opts.effective_codec,
        opts.effective_crf,
        opts.preset,
        even_crop_filters(width, height),
        (even(width), even(height)),
        start,
        info.duration,
    )


def default_video_job(media: MediaType, info: MediaInfo, filters: list[str], size: tuple[int, int]):
    """VideoJob for rotate/resize/trim: the input's container family, its default codec."""
    container = container_for_input(media)
    codec = VideoCodec.VP9 if container is Container.WEBM else VideoCodec.H264
    return VideoJob(
        media,
        container,
        codec,
        DEFAULT_CRF[codec],
        Preset.MEDIUM if codec is VideoCodec.H264 else Preset.FAST,
        filters,
        size,
        None,
        info.duration,
    )


ROTATE_FILTERS = {90: ["transpose=1"], 180: ["hflip", "vflip"], 270: ["transpose=2"]}


def rotated_size(width: int, height: int, degrees: int) -> tuple[int, int]:
    """Size after a clockwise rotation."""
    return (height, width) if degrees in (90, 270) else (width, height)


def metadata_rotation_args(
    media: MediaType, info: MediaInfo, degrees: int, src: str, dst: str, max_pixels: int
) -> list[str]:
    """Stream-copy command that only changes the display rotation.

    Debian's ffmpeg 5.1 turns `-metadata:s:v rotate=N` into a display matrix that players apply
    as N degrees counter-clockwise (ffprobe reports rotation=N), so the clockwise total is negated.
    """
    clockwise = (info.rotation + degrees) % 360
    head = ffmpeg_head(media, src, 1, max_pixels)
    return [
        *head,
        "-map",
        "0:v:0",
        "-map",
        "0:a:0?",
        "-c",
        "copy",
        *_strip_metadata(),
        "-metadata:s:v:0",
        f"rotate={(360 - clockwise) % 360}",
        "-f",
        "mp4",
        f"file:{dst}",
    ]


def thumbnail_args(
    media: MediaType,
    fmt: ThumbnailFormat,
    seconds: float,
    src: str,
    dst: str,
    threads: int,
    max_pixels: int,
) -> list[str]:
    """ffmpeg command writing one frame at `seconds`."""
    head = ffmpeg_head(media, src, threads, max_pixels)
    head[head.index("-i") : head.index("-i")] = ["-ss", f"{seconds:.3f}"]
    args = [*head, "-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn", "-map_metadata", "-1"]
    return [*args, *image_encode_args(fmt.value, 85, False, False), f"file:{dst}"]
