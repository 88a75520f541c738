"""Pure decisions of the worker: headers, sniff classification, limits, geometry, arguments,
progress, settings, reports."""

import io
import json
import struct
import time

import pytest

from mediaflow_core.media import (
    IMAGE_TYPES,
    VIDEO_TYPES,
    UnsupportedMedia,
    classify,
    looks_like_mpegts,
)
from mediaflow_core.options import (
    Container,
    ImageConvertOptions,
    ImageResizeOptions,
    Preset,
    VideoCodec,
    VideoResizeOptions,
)
from mediaflow_worker import plans
from mediaflow_worker.errors import InvalidInput
from mediaflow_worker.headers import (
    HeaderError,
    avif_header,
    bmp_header,
    exif_orientation,
    gif_header,
    jpeg_header,
    png_header,
    webp_header,
)
from mediaflow_worker.probe import Limits, MediaInfo, check_image, check_video, parse_probe
from mediaflow_worker.progress import ProgressTracker
from mediaflow_worker.report import failure_message, redact, redact_url
from mediaflow_worker.settings import ConfigError, settings_from_env

from .conftest import EXIF_SECRET, exif_app1, png_bomb, tiny_gif, url_dir

PNG = IMAGE_TYPES["image/png"]
JPEG = IMAGE_TYPES["image/jpeg"]
GIF = IMAGE_TYPES["image/gif"]
MP4 = VIDEO_TYPES["video/mp4"]
WEBM = VIDEO_TYPES["video/webm"]

# ---------------------------------------------------------------- headers


def test_png_bomb_header_is_read_without_allocating() -> None:
    data = png_bomb(20000, 20000)
    started = time.perf_counter()
    header = png_header(data)
    with pytest.raises(InvalidInput, match="20000x20000"):
        check_image(header.width, header.height, header.frames, Limits())
    assert time.perf_counter() - started < 0.05


def test_png_apng_frames_and_truncation() -> None:
    data = png_bomb(10, 10)
    actl = struct.pack(">I4sII", 8, b"acTL", 5000, 0) + b"\x00\x00\x00\x00"
    apng = data[:33] + actl + data[33:]
    assert png_header(apng).frames == 5000
    with pytest.raises(HeaderError):
        png_header(data[:20])
    with pytest.raises(HeaderError):
        png_header(b"GIF89a" + data[6:])


def test_jpeg_header_reads_sof_and_exif_orientation() -> None:
    sof = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 48, 64) + b"\x03" + b"\x00" * 9
    data = b"\xff\xd8" + exif_app1(6, EXIF_SECRET) + sof + b"\xff\xda"
    header = jpeg_header(io.BytesIO(data))
    assert (header.width, header.height, header.orientation) == (64, 48, 6)
    with pytest.raises(HeaderError):
        jpeg_header(io.BytesIO(b"\xff\xd8\xff\xda\x00\x02"))
    with pytest.raises(HeaderError):
        jpeg_header(io.BytesIO(b"\x89PNG"))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_both_byte_orders(orientation: int) -> None:
    big = exif_app1(orientation, b"x")[4:]
    assert exif_orientation(big) == orientation
    little = (
        b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x112, 3, 1, orientation, 0)
    )
    assert exif_orientation(little) == orientation
    assert exif_orientation(b"garbage") == 1


def test_gif_frames_counted_and_capped() -> None:
    header = gif_header(io.BytesIO(tiny_gif(3000)), stop_after=2000)
    assert header.frames == 2001  # stops as soon as the limit is passed
    assert header.animated
    assert gif_header(io.BytesIO(tiny_gif(1)), stop_after=10).frames == 1
    with pytest.raises(HeaderError):
        gif_header(io.BytesIO(tiny_gif(3)[:-20]), stop_after=10)


def test_webp_and_bmp_headers() -> None:
    vp8x = b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x02\x00\x00\x00"
    vp8x += (99).to_bytes(3, "little") + (49).to_bytes(3, "little")
    header = webp_header(vp8x)
    assert (header.width, header.height, header.animated) == (100, 50, True)
    bmp = b"BM" + b"\x00" * 12 + struct.pack("<Iii", 40, 64, -48)
    assert (bmp_header(bmp).width, bmp_header(bmp).height) == (64, 48)


# ---------------------------------------------------------------- sniffing and limits


def test_classify_allowlists() -> None:
    assert classify("image/png", b"", "image") is PNG
    assert classify("video/quicktime", b"", "video").demuxer == "mov"
    ts = (b"\x47" + b"\x00" * 187) * 10
    assert looks_like_mpegts(ts)
    assert classify("application/octet-stream", ts, "video").demuxer == "mpegts"
    for mime, kind in [
        ("text/plain", "video"),
        ("image/svg+xml", "image"),
        ("image/x-mvg", "image"),
        ("video/mp4", "image"),
        ("image/png", "video"),
        ("application/octet-stream", "video"),
    ]:
        with pytest.raises(UnsupportedMedia, match="not"):
            classify(mime, b"\x00" * 2000, kind)
    with pytest.raises(UnsupportedMedia, match="audio-only"):
        classify("audio/x-m4a", b"", "video")


def test_limits() -> None:
    limits = Limits(max_pixels=1000, max_frames=10, max_duration_seconds=60)
    check_image(10, 100, 10, limits)
    with pytest.raises(InvalidInput, match="megapixels"):
        check_image(10, 101, 1, limits)
    with pytest.raises(InvalidInput, match="more than 10 frames"):
        check_image(1, 1, 11, limits)
    check_video(MediaInfo(10, 10, 60, video_codec="h264"), limits)
    with pytest.raises(InvalidInput, match="lasts 61 s"):
        check_video(MediaInfo(10, 10, 61, video_codec="h264"), limits)
    with pytest.raises(InvalidInput, match="audio-only"):
        check_video(MediaInfo(duration=1, audio_codec="aac"), limits)
    with pytest.raises(InvalidInput, match="duration"):
        check_video(MediaInfo(10, 10, None, video_codec="h264"), limits)


def test_parse_probe_rotation_swaps_display_size() -> None:
    report = {
        "streams": [
            {
                "codec_type": "video",
                "codec_name": "h264",
                "width": 160,
                "height": 120,
                "side_data_list": [{"rotation": -90}],
            },
            {"codec_type": "audio", "codec_name": "aac"},
        ],
        "format": {"duration": "2.5"},
    }
    info = parse_probe(report)
    assert (info.width, info.height, info.rotation, info.duration) == (120, 160, 90, 2.5)
    assert info.audio_codec == "aac"
    assert parse_probe({"streams": [], "format": {"duration": "N/A"}}).duration is None


# ---------------------------------------------------------------- geometry


def resize(**kw: object) -> ImageResizeOptions:
    return ImageResizeOptions.model_validate(kw)


@pytest.mark.parametrize(
    ("source", "options", "expected"),
    [
        ((640, 480), {"width": 320}, (320, 240, 320, 240, "none")),
        ((640, 480), {"height": 120}, (160, 120, 160, 120, "none")),
        ((640, 480), {"width": 100, "height": 100}, (100, 75, 100, 75, "none")),
        ((64, 48), {"width": 640}, (64, 48, 64, 48, "none")),  # no upscale
        ((64, 48), {"width": 640, "allowUpscale": True}, (640, 480, 640, 480, "none")),
        ((640, 480), {"width": 100, "height": 100, "fit": "cover"}, (133, 100, 100, 100, "crop")),
        ((64, 48), {"width": 100, "height": 100, "fit": "cover"}, (64, 48, 64, 48, "none")),
        ((640, 480), {"width": 100, "height": 100, "fit": "contain"}, (100, 75, 100, 100, "pad")),
        ((640, 480), {"width": 100, "height": 100, "fit": "fill"}, (100, 100, 100, 100, "none")),
        ((64, 48), {"width": 100, "height": 10, "fit": "fill"}, (64, 10, 64, 10, "none")),
    ],
)
def test_image_geometry(source, options, expected) -> None:
    g = plans.image_geometry(*source, resize(**options))
    assert (g.scale_w, g.scale_h, g.width, g.height, g.mode) == expected


def test_video_resize_is_even_and_keeps_aspect() -> None:
    assert plans.video_resize_size(161, 121, VideoResizeOptions(width=81)) == (80, 60)
    assert plans.video_resize_size(1920, 1080, VideoResizeOptions(width=1280, height=1280)) == (
        1280,
        720,
    )
    assert plans.video_resize_size(
        160, 120, VideoResizeOptions(width=99, height=33, keep_aspect=False)
    ) == (98, 32)
    assert plans.video_resize_size(160, 120, VideoResizeOptions(height=51, keep_aspect=False)) == (
        160,
        50,
    )
    assert plans.even_crop_filters(161, 121) == ["crop=160:120:0:0"]
    assert plans.even_crop_filters(160, 120) == []


# ---------------------------------------------------------------- arguments


def test_quality_scales() -> None:
    assert plans.jpeg_qscale(100) == 2
    assert plans.jpeg_qscale(1) == 31
    assert plans.avif_quantizer(100) == 0
    assert plans.avif_quantizer(1) == 63
    assert plans.jpeg_qscale(85) < plans.jpeg_qscale(50)


def assert_hardened(args: list[str], demuxer: str) -> None:
    assert args[:3] == ["ffmpeg", "-nostdin", "-hide_banner"]
    i = args.index("-i")
    before = args[:i]
    assert before[before.index("-f") + 1] == demuxer
    assert before[before.index("-protocol_whitelist") + 1] == "file"
    assert before[before.index("-format_whitelist") + 1] == demuxer
    assert "-threads" in before
    assert "-max_pixels" in before
    assert args[i + 1].startswith("file:")
    assert "-map_metadata" in args


def test_image_tool_choice() -> None:
    def job(fmt: str, media=PNG, orientation=1, animated=False):
        return plans.image_job_for_convert(
            media, ImageConvertOptions(format=fmt), 64, 48, orientation, animated
        )

    assert job("webp").tool == "cwebp"
    assert job("webp", orientation=6).tool == "ffmpeg"  # orientation first
    assert job("webp", GIF).tool == "ffmpeg"
    assert job("webp", GIF, animated=True).keeps_animation
    assert job("avif").tool == "avifenc"
    assert job("avif", GIF).tool == "ffmpeg+avifenc"
    assert job("avif", JPEG, orientation=8).tool == "ffmpeg+avifenc"
    assert job("png", JPEG, orientation=6).out_size == (48, 64)
    assert job("gif", GIF, animated=True).keeps_animation
    assert not job("png", GIF, animated=True).keeps_animation


def test_image_ffmpeg_args_are_hardened_and_strip_metadata() -> None:
    job = plans.image_job_for_resize(
        JPEG, resize(width=32, height=32, fit="cover", format="jpeg"), 64, 48, 6, False
    )
    args = plans.image_ffmpeg_args(job, "/w/input", "/w/out.jpg", 2, 1000)
    assert_hardened(args, "jpeg_pipe")
    assert "-noautorotate" in args
    vf = args[args.index("-vf") + 1]
    assert vf.startswith("transpose=1,scale=")
    assert args[args.index("-frames:v") + 1] == "1"
    gif = plans.image_job_for_convert(GIF, ImageConvertOptions(format="gif"), 8, 8, 1, True)
    gif_args = plans.image_ffmpeg_args(gif, "/w/input", "/w/out.gif", 1, 1000)
    assert "-frames:v" not in gif_args
    assert "paletteuse=new=1" in gif_args[gif_args.index("-filter_complex") + 1]


def test_standalone_encoder_args() -> None:
    cwebp = plans.cwebp_args("/w/in", "/w/out", 80, False, 2)
    assert cwebp[:4] == ["cwebp", "-quiet", "-metadata", "none"]
    assert "-mt" in cwebp
    assert cwebp[-2:] == ["--", "/w/in"]
    assert "-lossless" in plans.cwebp_args("/w/in", "/w/out", 80, True, 1)
    assert "-mt" not in plans.cwebp_args("/w/in", "/w/out", 80, True, 1)
    avif = plans.avifenc_args("/w/in", "/w/out", 100, 3)
    assert avif[avif.index("--jobs") + 1] == "3"
    assert avif[avif.index("--min") + 1] == avif[avif.index("--max") + 1] == "0"
    assert "--ignore-exif" in avif
    assert "--ignore-xmp" in avif


def video_info(**kw: object) -> MediaInfo:
    base = {
        "width": 160,
        "height": 120,
        "duration": 2.0,
        "video_codec": "h264",
        "audio_codec": "aac",
    }
    return MediaInfo(**{**base, **kw})


@pytest.mark.parametrize(
    ("codec", "expect"),
    [
        (VideoCodec.H264, ["libx264", "-preset", "fast"]),
        (VideoCodec.H265, ["libx265", "-preset", "fast"]),
        (VideoCodec.VP9, ["libvpx-vp9", "-crf", "30", "-b:v", "0", "-deadline", "good"]),
        (VideoCodec.AV1, ["libsvtav1", "-crf", "30", "-preset", "8"]),
    ],
)
def test_video_codec_args(codec: VideoCodec, expect: list[str]) -> None:
    args = plans.video_codec_args(codec, 30, Preset.FAST, 2, Container.MKV)
    joined = " ".join(args)
    assert " ".join(expect) in joined
    assert args[-2:] == ["-pix_fmt", "yuv420p"]


def test_audio_choices() -> None:
    assert plans.audio_args(Container.MP4, VideoCodec.H264, None, True) == ["-an"]
    assert plans.audio_args(Container.MP4, VideoCodec.H264, "aac", True) == ["-c:a", "copy"]
    assert plans.audio_args(Container.MP4, VideoCodec.H264, "aac", False)[1] == "aac"
    assert plans.audio_args(Container.WEBM, VideoCodec.VP9, "aac", True)[1] == "libopus"
    assert plans.audio_args(Container.MKV, VideoCodec.H264, "pcm_s16le", True)[1] == "aac"


def test_video_ffmpeg_args_trim_and_progress() -> None:
    info = video_info()
    job = plans.default_video_job(MP4, info, [], (160, 120))
    job = plans.VideoJob(**{**job.__dict__, "start": 0.5, "duration": 1.0, "copy_audio": False})
    args = plans.video_ffmpeg_args(job, info, "/w/in", "/w/out.mp4", 1, 1000)
    assert_hardened(args, "mov")
    i = args.index("-i")
    assert args[args.index("-ss") + 1] == "0.500"
    assert args.index("-ss") < i
    assert args[args.index("-t") + 1] == "1.000"
    assert args[args.index("-progress") + 1] == "pipe:1"
    assert args[-3:] == ["-f", "mp4", "file:/w/out.mp4"]
    convert = plans.default_video_job(MP4, info, [], (160, 120))
    capped = plans.video_ffmpeg_args(convert, info, "/w/in", "/w/o", 1, 1000, 14400)
    assert capped[capped.index("-t") + 1] == "14400.000"
    webm = plans.default_video_job(WEBM, info, [], (160, 120))
    assert (webm.container, webm.codec) == (Container.WEBM, VideoCodec.VP9)


def test_metadata_rotation_negates_for_ffmpeg_51() -> None:
    args = plans.metadata_rotation_args(MP4, video_info(rotation=90), 90, "/w/in", "/w/o", 10)
    assert "rotate=180" in args
    assert args[args.index("-c") + 1] == "copy"
    args = plans.metadata_rotation_args(MP4, video_info(rotation=0), 90, "/w/in", "/w/o", 10)
    assert "rotate=270" in args


# ---------------------------------------------------------------- progress, settings, reports


def test_progress_throttled_and_capped() -> None:
    now = [0.0]
    tracker = ProgressTracker(10.0, interval=1.0, clock=lambda: now[0])
    assert tracker.feed("frame=1") is None
    assert tracker.feed("out_time_us=N/A") is None
    assert tracker.feed("out_time_us=2500000") == 25.0
    now[0] = 0.5
    assert tracker.feed("out_time_ms=5000000") is None  # within the interval
    now[0] = 1.6
    assert tracker.feed("out_time_us=12000000") == 99.9  # never 100 before the end
    assert tracker.feed("progress=end") == 100.0
    assert ProgressTracker(None).feed("out_time_us=1") is None


def test_settings_from_env(tmp_path) -> None:
    env = {
        "MEDIAFLOW_OPERATION": "ImageConvert",
        **url_dir(tmp_path / "urls", "http://x/in?X-Amz-Signature=a", "http://x/out\n"),
    }
    settings = settings_from_env(env)
    assert settings.input_url == "http://x/in?X-Amz-Signature=a"
    assert settings.output_url == "http://x/out"  # a trailing newline is no part of it
    assert settings.work_dir == "/work"
    assert settings.termination_log == "/dev/termination-log"
    assert settings.threads == 1
    assert settings.limits.max_input_bytes == 2 * 1024**3
    assert settings.limits.max_pixels == 100_000_000
    assert settings.limits.max_frames == 2000
    assert settings.limits.max_duration_seconds == 4 * 3600
    tuned = settings_from_env({**env, "MEDIAFLOW_THREADS": "4", "MEDIAFLOW_MAX_FRAMES": "5"})
    assert (tuned.threads, tuned.limits.max_frames) == (4, 5)
    with pytest.raises(ConfigError, match="MEDIAFLOW_THREADS must be an integer"):
        settings_from_env({**env, "MEDIAFLOW_THREADS": "many"})
    with pytest.raises(ConfigError, match="MEDIAFLOW_OPERATION"):
        settings_from_env({k: v for k, v in env.items() if k != "MEDIAFLOW_OPERATION"})


def test_the_urls_come_only_from_the_secret_volume(tmp_path) -> None:
    """One way in: URL environment variables are no longer read, a missing or empty file is a
    broken pod (exit 78), and the default folder is where the operator mounts the Secret."""
    from mediaflow_core.constants import URL_DIR

    assert URL_DIR == "/var/run/secrets/mediaflow"
    env = {
        "MEDIAFLOW_OPERATION": "ImageConvert",
        "MEDIAFLOW_INPUT_URL": "http://x/in",
        "MEDIAFLOW_OUTPUT_URL": "http://x/out",
        "MEDIAFLOW_URL_DIR": str(tmp_path / "none"),
    }
    with pytest.raises(ConfigError, match=f"cannot read {tmp_path}/none/input-url") as error:
        settings_from_env(env)
    assert error.value.exit_code == 78
    url_dir(tmp_path / "half", "http://x/in", "")
    with pytest.raises(ConfigError, match="output-url is empty"):
        settings_from_env({**env, "MEDIAFLOW_URL_DIR": str(tmp_path / "half")})


def test_reports_never_carry_signatures() -> None:
    url = "https://user:pw@minio:9000/b/k.png?X-Amz-Signature=abc&X-Amz-Credential=x"
    assert redact_url(url) == "https://minio:9000/b/k.png"
    assert "abc" not in redact(f"failed: {url} gone")
    message = json.loads(failure_message("InvalidInput", "x" * 5000))
    assert len(json.dumps(message).encode()) < 4096
    assert message["reason"] == "InvalidInput"


def test_avif_header_reads_ispe() -> None:
    def box(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", 8 + len(body)) + kind + body

    ispe = box(b"ispe", b"\x00\x00\x00\x00" + struct.pack(">II", 3840, 2160))
    meta = box(
        b"meta", b"\x00\x00\x00\x00" + box(b"hdlr", b"\x00" * 24) + box(b"iprp", box(b"ipco", ispe))
    )
    data = box(b"ftyp", b"avif\x00\x00\x00\x00mif1") + meta
    header = avif_header(data)
    assert (header.width, header.height) == (3840, 2160)
    with pytest.raises(HeaderError):
        avif_header(box(b"ftyp", b"avif\x00\x00\x00\x00") + box(b"mdat", b"\x00" * 8))


def test_threads_auto_follows_the_cpus_the_worker_may_run_on(tmp_path) -> None:
    import os

    from mediaflow_worker.settings import settings_from_env

    env = {"MEDIAFLOW_OPERATION": "ImageConvert", "MEDIAFLOW_URL_DIR": str(tmp_path)}
    (tmp_path / "input-url").write_text("http://127.0.0.1/in")
    (tmp_path / "output-url").write_text("http://127.0.0.1/out")
    auto = settings_from_env({**env, "MEDIAFLOW_THREADS": "auto"})
    assert auto.threads == min(16, len(os.sched_getaffinity(0)))
    assert settings_from_env({**env, "MEDIAFLOW_THREADS": "3"}).threads == 3
