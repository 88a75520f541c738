"""The planner (pure): every operation's Plan from typed options and what was learned of the
input; and the executor running a plan with two outputs of one decode."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mediaflow_core.media import IMAGE_TYPES, VIDEO_TYPES
from mediaflow_core.options import (
    ImageConvertOptions,
    ImageResizeOptions,
    VideoConvertOptions,
    VideoResizeOptions,
    VideoRotateOptions,
    VideoThumbnailOptions,
    VideoTrimOptions,
)
from mediaflow_worker.errors import InternalError, InvalidInput
from mediaflow_worker.executor import execute
from mediaflow_worker.headers import ImageHeader
from mediaflow_worker.planner import OUTPUT, ImageSource, Output, Plan, Step, VideoSource, plan
from mediaflow_worker.probe import Limits, MediaInfo
from mediaflow_worker.settings import Settings

from .conftest import SIGNATURE, ffmpeg

WORK = Path("/w")
SRC = WORK / "input"
PNG, JPEG, GIF = (IMAGE_TYPES[f"image/{n}"] for n in ("png", "jpeg", "gif"))
MP4, WEBM = VIDEO_TYPES["video/mp4"], VIDEO_TYPES["video/webm"]
LIMITS = Limits()


def image(media=PNG, width=640, height=480, orientation=1, animated=False) -> ImageSource:
    return ImageSource(SRC, media, ImageHeader(width, height, 1, orientation, animated))


def video(media=MP4, **info: object) -> VideoSource:
    base = {"width": 161, "height": 121, "duration": 10.0, "video_codec": "h264"}
    return VideoSource(SRC, media, MediaInfo(**{**base, **info}))


def planned(options, source, limits: Limits = LIMITS) -> Plan:
    return plan(options, source, limits, 2, WORK)


def only(p: Plan) -> Output:
    (output,) = p.outputs
    assert output.name == OUTPUT
    return output


# ---------------------------------------------------------------- images


def test_a_plain_webp_convert_is_one_cwebp_step_that_releases_the_input() -> None:
    p = planned(ImageConvertOptions(format="webp", quality=70), image())
    (step,) = p.steps
    assert step.tool == "cwebp"
    assert step.args[-2:] == ("--", str(SRC))
    assert (step.subject, step.deadline, step.progress, step.releases) == (
        "image",
        "tool",
        None,
        (SRC,),
    )
    assert dict(step.notes) == {"format": "webp", "filters": ()}
    assert only(p) == Output(OUTPUT, WORK / "output.webp", "webp", "image/webp", 640, 480)
    assert p.intermediates == ()


def test_avif_from_an_oriented_jpeg_goes_through_a_png_frame() -> None:
    p = planned(ImageConvertOptions(format="avif"), image(JPEG, 64, 48, orientation=6))
    first, second = p.steps
    frame = WORK / "frame.png"
    assert (first.tool, second.tool) == ("ffmpeg", "avifenc")
    assert first.args[-1] == f"file:{frame}"
    assert "transpose=1" in first.args
    assert (first.releases, second.releases, p.intermediates) == ((SRC,), (frame,), (frame,))
    assert second.args[-2:] == (str(frame), str(WORK / "output.avif"))
    assert only(p).size == (48, 64)  # the orientation turns it


def test_an_image_resize_plans_the_geometry_and_keeps_the_input_format() -> None:
    p = planned(ImageResizeOptions(width=100, height=100, fit="cover"), image(JPEG))
    (step,) = p.steps
    assert step.tool == "ffmpeg"
    assert only(p).format == "jpeg"
    assert only(p).size == (100, 100)
    assert "crop=100:100" in step.args[step.args.index("-vf") + 1]


def test_a_plain_resize_to_webp_is_cwebps_own_rescaler_and_anything_more_is_ffmpeg() -> None:
    p = planned(ImageResizeOptions(width=320, format="webp"), image(JPEG))
    (step,) = p.steps
    assert step.tool == "cwebp"
    assert tuple(step.args[step.args.index("-resize") + 1 :][:2]) == ("320", "240")
    assert only(p).size == (320, 240)
    # An orientation to apply, or a crop, needs ffmpeg's filters.
    oriented = planned(ImageResizeOptions(width=320, format="webp"), image(JPEG, orientation=6))
    cover = planned(ImageResizeOptions(width=100, height=100, fit="cover", format="webp"), image())
    assert [s.tool for s in oriented.steps + cover.steps] == ["ffmpeg", "ffmpeg"]
    # Nothing to scale: a plain encode.
    same = planned(ImageResizeOptions(width=640, format="webp"), image())
    assert "-resize" not in same.steps[0].args


def test_an_output_over_the_pixel_limit_is_refused_before_any_tool() -> None:
    options = ImageResizeOptions(width=4000, height=4000, fit="fill", allow_upscale=True)
    with pytest.raises(InvalidInput, match="4000x4000 exceeds the 10-megapixel limit"):
        planned(options, image(), Limits(max_pixels=10_000_000))


def test_an_animated_gif_stays_animated_as_webp() -> None:
    p = planned(ImageConvertOptions(format="webp"), image(GIF, 8, 8, animated=True))
    (step,) = p.steps
    assert step.tool == "ffmpeg"
    assert "libwebp_anim" in step.args
    assert "-frames:v" not in step.args


# ---------------------------------------------------------------- videos


def test_a_video_convert_is_one_encode_with_progress_under_the_pods_deadline() -> None:
    p = planned(VideoConvertOptions(container="webm"), video())
    (step,) = p.steps
    assert (step.tool, step.subject, step.deadline, step.progress) == (
        "ffmpeg",
        "video",
        "pod",
        10.0,
    )
    assert step.args[-3:] == ("-f", "webm", f"file:{WORK / 'output.webm'}")
    assert "crop=160:120:0:0" in step.args  # even sizes for 4:2:0
    assert dict(step.notes) == {"container": "webm", "codec": "vp9"}
    assert only(p) == Output(OUTPUT, WORK / "output.webm", "webm", "video/webm", 160, 120, 10.0)


def test_rotations() -> None:
    turned = planned(VideoRotateOptions(degrees=90), video())
    assert only(turned).size == (120, 160)
    assert "transpose=1,crop=120:160:0:0" in turned.steps[0].args
    flag = planned(VideoRotateOptions(degrees=270, metadata_only=True), video(rotation=90))
    (step,) = flag.steps
    assert step.progress is None
    assert step.args[step.args.index("-c") + 1] == "copy"
    assert only(flag).format == "mp4"
    assert only(flag).size == (121, 161)
    with pytest.raises(InvalidInput, match="metadataOnly rotation needs an MP4 or MOV input"):
        planned(VideoRotateOptions(degrees=90, metadata_only=True), video(WEBM))


def test_a_resize_keeps_the_container_family() -> None:
    p = planned(VideoResizeOptions(width=80), video(WEBM))
    assert only(p).format == "webm"
    assert only(p).size == (80, 60)
    assert "scale=80:60,setsar=1" in p.steps[0].args


def test_a_trim_cuts_exactly_and_refuses_a_start_past_the_end() -> None:
    p = planned(VideoTrimOptions(start="00:00:02", end="00:00:30"), video())
    (step,) = p.steps
    assert step.args[step.args.index("-ss") + 1] == "2.000"
    assert step.args[step.args.index("-t") + 1] == "8.000"  # the end is past the video's
    assert step.progress == 8.0
    assert only(p).duration == 8.0
    assert "copy" not in step.args  # audio re-encoded
    with pytest.raises(InvalidInput, match="start 00:00:10 is past the end"):
        planned(VideoTrimOptions(start="00:00:10", end="00:00:11"), video())


def test_a_thumbnail_names_its_missing_frame() -> None:
    p = planned(VideoThumbnailOptions(timestamp="00:00:01.500", format="png"), video())
    (step,) = p.steps
    assert step.progress is None
    assert step.args[-1] == f"file:{WORK / 'output.png'}"
    assert only(p).size == (161, 121)
    assert only(p).missing == "the video has no frame at 00:00:01.500"
    with pytest.raises(InvalidInput, match="timestamp 00:00:10 is past the end"):
        planned(VideoThumbnailOptions(timestamp="00:00:10"), video())


@pytest.mark.parametrize(
    "options",
    [
        ImageConvertOptions(format="png"),
        ImageResizeOptions(width=10),
        VideoConvertOptions(container="mp4"),
        VideoRotateOptions(degrees=180),
        VideoResizeOptions(width=10),
        VideoTrimOptions(start="00:00:00", end="00:00:01"),
        VideoThumbnailOptions(),
    ],
)
def test_every_plan_is_hardened_frozen_and_dispatched_on_its_input_kind(options) -> None:
    right = image() if type(options).__name__.startswith("Image") else video()
    p = planned(options, right)
    for step in p.steps:
        if step.tool == "ffmpeg":
            i = step.args.index("-i")
            assert step.args[i + 1] == f"file:{SRC}"
            assert step.args[step.args.index("-protocol_whitelist") + 1] == "file"
            assert step.args[step.args.index("-format_whitelist") + 1] == right.media.demuxer
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.steps = ()  # type: ignore[misc]
    wrong = video() if isinstance(right, ImageSource) else image()
    with pytest.raises(InternalError, match="no plan for"):
        planned(options, wrong)


# ---------------------------------------------------------------- the executor


def test_the_executor_verifies_and_uploads_every_output_of_one_decode(
    tmp_path: Path, http_server
) -> None:
    """One ffmpeg run decodes the input once and writes two renditions (issue 12 item 3's
    shape); each is checked against the plan and PUT to its own destination."""
    src = tmp_path / "input"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=96x64",
        "-frames:v",
        "1",
        "-c:v",
        "png",
        "-f",
        "image2",
        str(src),
    )
    small, big = tmp_path / "small.png", tmp_path / "big.jpeg"
    head = ["ffmpeg", "-nostdin", "-loglevel", "error", "-protocol_whitelist", "file"]
    args = (
        *head, "-f", "png_pipe", "-i", f"file:{src}",
        "-filter_complex", "split[a][b];[a]scale=48:32[s]",
        "-map", "[s]", "-f", "image2", "-update", "1", f"file:{small}",
        "-map", "[b]", "-f", "image2", "-update", "1", f"file:{big}",
    )  # fmt: skip
    two = Plan(
        (Step(args, "image", releases=(src,)),),
        (
            Output("small", small, "png", "image/png", 48, 32),
            Output("big", big, "jpeg", "image/jpeg", 96, 64),
        ),
    )
    settings = Settings("ImageConvert", "{}", "", "", work_dir=str(tmp_path))
    where = {name: f"{http_server.base}/out/two-{name}?{SIGNATURE}" for name in ("small", "big")}
    small_result, big_result = execute(two, tmp_path, settings, where)
    assert (small_result["width"], small_result["format"]) == (48, "png")
    assert (big_result["height"], big_result["contentType"]) == (64, "image/jpeg")
    assert http_server.uploads["two-small"].body == small.read_bytes()
    assert http_server.uploads["two-big"].body[:2] == b"\xff\xd8"
    assert not src.exists()  # released after the step
    # Nothing is uploaded that is not what the plan expects.
    wrong = Plan((), (Output("small", small, "png", "image/png", 10, 10),))
    with pytest.raises(InternalError, match="expected 10x10"):
        execute(wrong, tmp_path, settings, where)
