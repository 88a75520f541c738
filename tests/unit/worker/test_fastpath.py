"""The start-up shortcuts keep the checks: the early encoder, libmagic, http.client
transfers, and the decode that overlaps the upload."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mediaflow_core.libmagic import mime_type, mime_type_of_buffer
from mediaflow_core.media import IMAGE_TYPES
from mediaflow_core.options import OptionsError, parse_options
from mediaflow_worker.errors import InternalError, TransientError
from mediaflow_worker.headers import read_image_header
from mediaflow_worker.pipeline import (
    check_output,
    early_image_convert,
    finish_decode,
    process_image,
    validate_options,
)
from mediaflow_worker.probe import Limits
from mediaflow_worker.settings import Settings
from mediaflow_worker.tools import start_tool
from mediaflow_worker.transfer import fetch

from .conftest import ffmpeg, url_dir


def settings(operation: str, options: str, work: Path | None = None) -> Settings:
    return Settings(
        operation=operation,
        options=options,
        input_url="http://127.0.0.1/in",
        output_url="http://127.0.0.1/out",
        work_dir=str(work or "/nonexistent"),
    )


# ---------------------------------------------------------------- the early guess

FORMATS = ["webp", "avif", "png", "WEBP", "", None, 1]
QUALITIES = [85, 1, 100, 0, 101, -5, 85.0, 85.5, "85", True, None, "x"]
LOSSLESS = [False, True, 0, 1, "true", None, "no"]
MISSING = object()


def _options_grid():
    for fmt, quality, lossless in itertools.product(
        [*FORMATS, MISSING], [*QUALITIES, MISSING], [*LOSSLESS, MISSING]
    ):
        data = {}
        for key, value in (("format", fmt), ("quality", quality), ("lossless", lossless)):
            if value is not MISSING:
                data[key] = value
        yield json.dumps(data)
    yield from (
        '{"format": "webp", "extra": 1}',
        '{"format": "webp", "Quality": 80}',
        '{"format": "webp", "quality": 80, "quality": 90}',
        '["webp"]',
        "null",
        "not json",
        "",
    )


def test_the_guess_never_accepts_what_pydantic_refuses_nor_differs_from_it() -> None:
    guessed = 0
    for text in _options_grid():
        guess = early_image_convert(settings("ImageConvert", text))
        if guess is None:
            continue  # pydantic decides before anything is downloaded
        guessed += 1
        opts = parse_options("ImageConvert", text)  # raises if the guess let a bad one through
        assert (opts.format.value, opts.quality, opts.lossless) == guess, text
    assert guessed > 10


def test_what_the_operator_sends_takes_the_early_path() -> None:
    from mediaflow_core.options import ImageConvertOptions

    for fmt, lossless in (("webp", False), ("webp", True), ("avif", False)):
        sent = ImageConvertOptions(format=fmt, quality=70, lossless=lossless).model_dump_json(
            by_alias=True, exclude_none=True
        )
        assert early_image_convert(settings("ImageConvert", sent)) == (fmt, 70, lossless)
    for operation, options in (
        ("ImageConvert", '{"format": "png"}'),
        ("ImageResize", '{"format": "webp", "width": 10}'),
        ("VideoConvert", '{"container": "mp4"}'),
    ):
        assert early_image_convert(settings(operation, options)) is None


def test_validate_options_is_pydantic(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="lossless is only supported for webp"):
        validate_options(settings("ImageConvert", '{"format": "avif", "lossless": true}'))
    with pytest.raises(OptionsError):
        parse_options("ImageConvert", '{"format": "avif", "lossless": true}')


def test_an_early_encoder_that_differs_from_the_plan_is_killed_and_replaced(
    tmp_path: Path,
) -> None:
    src = tmp_path / "input"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x64", "-frames:v", "1", str(src) + ".png")
    Path(str(src) + ".png").rename(src)
    media = IMAGE_TYPES["image/png"]
    header = read_image_header(str(src), "png", 10)
    assert header is not None
    s = settings("ImageConvert", '{"format": "webp", "quality": 60}', tmp_path)
    opts = validate_options(s)
    impostor = start_tool(["sleep", "30"], tmp_path)
    dst, fmt, size = process_image(opts, header, src, media, s, tmp_path, impostor)
    assert impostor.proc.returncode == -signal.SIGKILL
    assert (fmt, size) == ("webp", (96, 64))
    assert dst.read_bytes()[:4] == b"RIFF"


@pytest.mark.parametrize("fmt", ["webp", "avif"])
def test_the_early_path_is_taken_and_the_output_checked(run_worker, media, fmt) -> None:
    run = run_worker(
        "ImageConvert",
        {"format": fmt, "quality": 70},
        media.png("320x240", name="early-320x240.png"),
    )
    assert run.returncode == 0, run.termination
    converts = run.event("convert")
    assert converts == [
        {"event": "convert", "tool": "cwebp" if fmt == "webp" else "avifenc", "format": fmt,
         "filters": [], "validated": False}
    ]  # fmt: skip
    assert not run.event("early-convert-discarded")
    assert run.termination["width"] == 320
    assert run.upload is not None
    assert len(run.upload.body) == run.termination["size"]
    names = [e["event"] for e in run.events]
    assert names.index("upload") < names.index("verified") < names.index("done")


def _imported(stderr: str) -> set[str]:
    """Module names from `-X importtime` lines (PYTHONPROFILEIMPORTTIME=1)."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_a_plain_image_convert_never_loads_pydantic(run_worker, media) -> None:
    # pydantic's import is ~0.3 s of CPU, against 0.04 s of cwebp on a 640x480 photo: the
    # exact reading of early_image_convert stands for it (the grid test above), and the
    # termination message is written without it (the operator validates it on reading).
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    src = media.png("320x240", name="nopydantic-320x240.png")
    run = run_worker("ImageConvert", {"format": "webp", "quality": 70}, src, env=profile)
    assert run.returncode == 0, run.termination
    assert run.termination["format"] == "webp"
    loaded = _imported(run.stderr)
    assert "mediaflow_worker.pipeline" in loaded  # the profile is there
    assert not {m for m in loaded if m.startswith(("pydantic", "mediaflow_core.options"))}
    # Anything the exact reading does not cover is validated by pydantic, as before.
    run = run_worker("ImageResize", {"width": 100}, src, env=profile)
    assert run.returncode == 0, run.termination
    assert "mediaflow_core.options" in _imported(run.stderr)


def test_the_success_message_is_what_the_model_writes() -> None:
    from mediaflow_core.termination import WorkerResult, read_termination
    from mediaflow_worker.report import success_message

    for result in (
        {"size": 10, "contentType": "image/webp", "format": "webp", "width": 640,
         "height": 480, "duration": None},
        {"size": 0, "contentType": "video/mp4", "format": "mp4", "width": 1920,
         "height": 1080, "duration": 12.345},
        {"size": 7, "contentType": "video/mp4", "format": "mp4", "width": None,
         "height": None, "duration": 1.0},
    ):  # fmt: skip
        text = success_message(result)
        assert text == WorkerResult.model_validate(result).to_json()
        assert read_termination(text) == WorkerResult.model_validate(result)


def test_an_oriented_jpeg_does_not_start_early(run_worker, media) -> None:
    run = run_worker("ImageConvert", {"format": "webp"}, media.jpeg_exif())
    assert run.returncode == 0, run.termination
    assert [e["tool"] for e in run.event("convert")] == ["ffmpeg"]
    assert "validated" not in run.event("convert")[0]


def test_sigterm_during_the_early_encode_kills_it(http_server, tmp_path) -> None:
    big = tmp_path / "big.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=2560x1600", "-vf", "noise=alls=30:allf=t",
           "-frames:v", "1", str(big))  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "MEDIAFLOW_OPERATION": "ImageConvert",
        "MEDIAFLOW_OPTIONS": '{"format": "webp", "lossless": true}',
        **url_dir(
            tmp_path / "urls",
            http_server.serve(big, "big-early.png"),
            f"{http_server.base}/out/never-early",
        ),
        "MEDIAFLOW_WORK_DIR": str(work),
        "MEDIAFLOW_TERMINATION_LOG": str(tmp_path / "term"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mediaflow_worker"], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if '"convert"' in line:
            break
    time.sleep(0.05)  # pydantic is validating the options now
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 75
    assert list(work.iterdir()) == []
    assert "never-early" not in http_server.uploads
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert str(work).encode() not in cmdline.read_bytes(), "a tool survived"
        except OSError:
            continue


# ---------------------------------------------------------------- libmagic


def test_libmagic_names_what_the_bytes_are_whatever_the_file_is_called(
    media, tmp_path: Path
) -> None:
    text = tmp_path / "playlist.mp4"
    text.write_text("#EXTM3U\n#EXTINF:1,\nhttp://127.0.0.1/x.ts\n")
    svg = tmp_path / "x.png"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>')
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    expected = {
        media.png(): "image/png",
        media.jpeg_exif(): "image/jpeg",
        media.webp(): "image/webp",
        media.gif_animated(): "image/gif",
        media.mp4(): "video/mp4",
        svg: "image/svg+xml",
        empty: "inode/x-empty",  # a file; the empty buffer is application/x-empty
    }
    for path, mime in expected.items():
        assert mime_type(str(path)) == mime, path
    assert not mime_type(str(text)).startswith("video/")  # a playlist named .mp4
    for path in [*expected.keys() - {empty}, media.bmp(), media.tiff(), media.avif(), media.ts()]:
        # The API sniffs the first 64 KiB of an upload: the same answer as the whole file.
        assert mime_type_of_buffer(path.read_bytes()[:65536]) == mime_type(str(path)), path
    with pytest.raises(FileNotFoundError):
        mime_type(str(tmp_path / "missing"))


def test_libmagic_answers_from_many_threads_at_once(media) -> None:
    from concurrent.futures import ThreadPoolExecutor

    heads = [media.png().read_bytes()[:4096], media.mp4().read_bytes()[:65536], b"plain text\n"]
    want = ["image/png", "video/mp4", "text/plain"]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(mime_type_of_buffer, heads * 200))
    assert got == want * 200


# ---------------------------------------------------------------- transfers


def _raw_server(response: bytes) -> str:
    """A one-shot server that answers any request with `response` and closes."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)

    def serve() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(response)
        sock.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}/x?X-Amz-Signature=s"


def test_a_download_cut_short_is_transient(tmp_path: Path) -> None:
    url = _raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 400)
    with pytest.raises(TransientError, match="400 of 1000 bytes"):
        fetch(url, tmp_path / "in", 10_000, 30)


def test_a_chunked_download_is_read_whole_and_capped(tmp_path: Path) -> None:
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (b"a" * 300, b"b" * 200)) + b"0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    url = _raw_server(head + body)
    assert fetch(url, tmp_path / "in", 10_000, 30) == 500
    assert (tmp_path / "in").read_bytes() == b"a" * 300 + b"b" * 200
    url = _raw_server(head + body)
    with pytest.raises(Exception, match="larger than the 450-byte limit"):
        fetch(url, tmp_path / "in2", 450, 30)


def test_content_encoding_is_not_undone(tmp_path: Path) -> None:
    import gzip

    packed = gzip.compress(b"\0" * 100_000)
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed)
    assert fetch(_raw_server(head + packed), tmp_path / "in", 10_000, 30) == len(packed)


# ---------------------------------------------------------------- decode overlapping the upload


def test_the_decode_is_left_running_and_its_failure_fails_the_job(tmp_path: Path) -> None:
    png, out = tmp_path / "in.png", tmp_path / "out.webp"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240", "-frames:v", "1", str(png))
    subprocess.run(["cwebp", "-quiet", str(png), "-o", str(out)], check=True)
    result, decoder = check_output(out, "webp", (320, 240), Limits(), tmp_path, decode=True)
    assert decoder is not None
    assert result["width"] == 320
    finish_decode(decoder)
    # Damage inside the VP8 data (a cut file is refused by the structure walk at once).
    data = bytearray(out.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 256] = random.Random(7).randbytes(256)  # noqa: S311 (fixed damage)
    out.write_bytes(bytes(data))
    result, decoder = check_output(out, "webp", (320, 240), Limits(), tmp_path, decode=True)
    assert decoder is not None
    with pytest.raises(InternalError, match="does not decode"):
        finish_decode(decoder)
    # A wrong size is refused before anything is started or uploaded.
    with pytest.raises(InternalError, match="expected 10x10"):
        check_output(out, "webp", (10, 10), Limits(), tmp_path, decode=True)
    assert not list(tmp_path.glob(".dwebp*"))
