"""Renditions (issue 12, item 3): the plan is one decode and one encode per rendition (pure),
and the worker makes them with the real tools: formats sniffed, sizes fitted, never enlarged,
the input decoded once, the termination message small."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mediaflow_core.libmagic import mime_type
from mediaflow_core.media import IMAGE_TYPES
from mediaflow_core.options import ImageRenditionsOptions, parse_options
from mediaflow_core.termination import TERMINATION_LIMIT, WorkerResult, read_termination
from mediaflow_worker.errors import InvalidInput
from mediaflow_worker.headers import ImageHeader
from mediaflow_worker.planner import ImageSource, plan
from mediaflow_worker.probe import Limits
from tests.media import make_photo

from .conftest import SIGNATURE, ffprobe, png_bomb

pytestmark = pytest.mark.unit

WORK = Path("/w")
SRC = WORK / "input"
JPEG = IMAGE_TYPES["image/jpeg"]


def renditions(*items: dict) -> ImageRenditionsOptions:
    options = parse_options("ImageConvert", {"renditions": list(items)})
    assert isinstance(options, ImageRenditionsOptions)
    return options


SET = renditions(
    {"name": "w320-webp", "format": "webp", "width": 320},
    {"name": "w640-webp", "format": "webp", "width": 640},
    {"name": "w320-avif", "format": "avif", "width": 320, "quality": 60},
    {"name": "w640-avif", "format": "avif", "width": 640},
    {"name": "big-jpeg", "format": "jpeg", "width": 4000},
    {"name": "h100-png", "format": "png", "height": 100},
)


def photo(width=1600, height=900, orientation=1) -> ImageSource:
    return ImageSource(SRC, JPEG, ImageHeader(width, height, 1, orientation, False))


def test_the_plan_decodes_once_and_encodes_once_per_rendition() -> None:
    p = plan(SET, photo(), Limits(), 2, WORK)
    readers = [s for s in p.steps if f"file:{SRC}" in s.args or str(SRC) in s.args]
    assert len(readers) == 1, "the input is decoded by exactly one step"
    decode, *encodes = p.steps
    assert decode is readers[0]
    assert decode.tool == "ffmpeg"
    assert decode.releases == (SRC,)
    assert "-noautorotate" in decode.args
    assert [s.tool for s in encodes] == ["cwebp", "cwebp", "avifenc", "avifenc", "ffmpeg", "ffmpeg"]
    # One frame per distinct size (320, 640, the photo's own for 4000, 100 high): four.
    assert p.intermediates == tuple(WORK / f"decoded-{n}.png" for n in range(4))
    assert [(o.name, o.format, o.size) for o in p.outputs] == [
        ("w320-webp", "webp", (320, 180)),
        ("w640-webp", "webp", (640, 360)),
        ("w320-avif", "avif", (320, 180)),
        ("w640-avif", "avif", (640, 360)),
        ("big-jpeg", "jpeg", (1600, 900)),  # never enlarged
        ("h100-png", "png", (178, 100)),
    ]
    # Each frame goes once its last reader is done; every rendition reads a frame, not the input.
    released = [frame for step in encodes for frame in step.releases]
    assert sorted(released) == sorted(p.intermediates)
    assert all(str(SRC) not in " ".join(s.args) for s in encodes)


def test_the_plan_applies_the_orientation_once_in_the_decode() -> None:
    p = plan(
        renditions({"name": "a", "format": "webp", "width": 450}),
        photo(orientation=6),
        Limits(),
        1,
        WORK,
    )
    assert "transpose=1" in " ".join(p.steps[0].args)
    assert p.outputs[0].size == (450, 800)  # displayed 900x1600


def test_a_rendition_over_the_pixel_limit_is_refused_before_any_tool() -> None:
    with pytest.raises(InvalidInput, match="rendition a of 1600x900 exceeds"):
        plan(
            renditions({"name": "a", "format": "png"}),
            photo(),
            Limits(max_pixels=1_000_000),
            1,
            WORK,
        )


def url_files(tmp_path: Path, urls: dict[str, str]) -> None:
    """The Secret's `output-url-<name>` files, beside the input-url that run_worker writes to
    the folder of its first run (urls0)."""
    folder = tmp_path / "urls0"
    folder.mkdir(exist_ok=True)
    for name, url in urls.items():
        (folder / f"output-url-{name}").write_text(url)


@pytest.fixture(scope="module")
def real_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_photo(tmp_path_factory.mktemp("photo") / "photo.jpg", "1280x720")


def test_webp_and_avif_at_two_widths_from_one_decode(run_worker, http_server, real_photo, tmp_path):
    names = ["w320-webp", "w640-webp", "w320-avif", "w2000-avif"]
    options = {
        "renditions": [
            {"name": "w320-webp", "format": "webp", "width": 320},
            {"name": "w640-webp", "format": "webp", "width": 640, "quality": 70},
            {"name": "w320-avif", "format": "avif", "width": 320},
            {"name": "w2000-avif", "format": "avif", "width": 2000},
        ]
    }
    prefix = f"r-{tmp_path.name}"
    url_files(tmp_path, {n: f"{http_server.base}/out/{prefix}-{n}?{SIGNATURE}" for n in names})
    run = run_worker("ImageConvert", options, real_photo)
    assert run.returncode == 0, run.stdout + run.stderr
    converts = run.event("convert")
    # One decode (the only step that reads the input), then one encode per rendition.
    assert [e["tool"] for e in converts] == ["ffmpeg", "cwebp", "cwebp", "avifenc", "avifenc"]
    assert converts[0]["decode"] == 3  # 320, 640 and the photo's own 1280 for 2000 wide
    expected = {
        "w320-webp": ("image/webp", 320, 180),
        "w640-webp": ("image/webp", 640, 360),
        "w320-avif": ("image/avif", 320, 180),
        "w2000-avif": ("image/avif", 1280, 720),  # never enlarged
    }
    for name, (content_type, width, height) in expected.items():
        upload = http_server.uploads[f"{prefix}-{name}"]
        assert upload.content_type == content_type
        path = tmp_path / f"{name}.out"
        path.write_bytes(upload.body)
        assert mime_type(str(path)) == content_type
        stream = ffprobe(path)["streams"][0]
        assert (stream["width"], stream["height"]) == (width, height), name
    message = read_termination(json.dumps(run.termination))
    assert isinstance(message, WorkerResult)
    assert message.renditions is not None
    assert [(r.name, r.content_type, r.width, r.height) for r in message.renditions] == [
        (n, *expected[n]) for n in names
    ]
    assert (message.width, message.content_type) == (320, "image/webp")  # the first's
    assert len(run.event("verified")) == 4


def test_twelve_renditions_with_long_urls_keep_the_message_small(
    run_worker, http_server, real_photo, tmp_path
):
    prefix = f"t-{tmp_path.name}"
    long_query = f"{SIGNATURE}&X-Amz-Security-Token={'t' * 1500}"
    items, urls = [], {}
    for n in range(12):
        name = f"r{n:02d}-" + "x" * 28
        fmt = ("webp", "png", "jpeg", "avif")[n % 4]
        items.append({"name": name, "format": fmt, "width": 16 + 8 * n})
        urls[name] = f"{http_server.base}/out/{prefix}-{name}?{long_query}"
    url_files(tmp_path, urls)
    run = run_worker("ImageConvert", {"renditions": items}, real_photo)
    assert run.returncode == 0, run.stdout + run.stderr
    text = json.dumps(run.termination, separators=(",", ":"))
    assert len(text.encode()) < TERMINATION_LIMIT
    assert "X-Amz" not in text
    assert "http" not in text
    assert len(run.termination["renditions"]) == 12
    assert "X-Amz-Signature" not in run.stdout


def test_a_missing_rendition_url_is_a_broken_environment(run_worker, real_photo, tmp_path):
    url_files(tmp_path, {"a": "http://127.0.0.1:9/a"})
    options = {"renditions": [{"name": "a", "format": "webp"}, {"name": "b", "format": "png"}]}
    run = run_worker("ImageConvert", options, real_photo)
    assert run.returncode == 78
    assert "renditions b" in run.termination["message"]


def test_a_hostile_input_is_refused_from_its_header(run_worker, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(60000, 60000))
    url_files(tmp_path, {"a": "http://127.0.0.1:9/a"})
    options = {"renditions": [{"name": "a", "format": "webp", "width": 100}]}
    run = run_worker("ImageConvert", options, bomb)
    assert run.returncode == 65, run.stdout
    assert run.termination["reason"] == "InvalidInput"
    assert run.event("convert") == []
