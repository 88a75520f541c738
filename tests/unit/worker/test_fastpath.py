"""What keeps a job's fixed cost small keeps the checks: options validated by the models before
the download, the encoder started straight from the plan, libmagic, http.client transfers, and
the decode that overlaps the upload."""

from __future__ import annotations

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
from mediaflow_core.options import ImageConvertOptions, OptionsError, parse_options
from mediaflow_worker.errors import InternalError, InvalidInput, TransientError
from mediaflow_worker.executor import check_output, finish_decode
from mediaflow_worker.pipeline import validate_options
from mediaflow_worker.planner import OUTPUT, Output
from mediaflow_worker.settings import Settings
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


# ---------------------------------------------------------------- options and the encoder


def test_validate_options_is_pydantic(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="lossless is only supported for webp"):
        validate_options(settings("ImageConvert", '{"format": "avif", "lossless": true}'))
    with pytest.raises(OptionsError):
        parse_options("ImageConvert", '{"format": "avif", "lossless": true}')
    # What the operator sends reads back as the model it was written from.
    sent = ImageConvertOptions(format="webp", quality=70, lossless=True)
    text = sent.model_dump_json(by_alias=True, exclude_none=True)
    assert validate_options(settings("ImageConvert", text)) == sent


@pytest.mark.parametrize("fmt", ["webp", "avif"])
def test_a_plain_convert_runs_the_encoder_alone_and_the_output_is_checked(
    run_worker, media, fmt
) -> None:
    run = run_worker(
        "ImageConvert",
        {"format": fmt, "quality": 70},
        media.png("320x240", name="plain-320x240.png"),
    )
    assert run.returncode == 0, run.termination
    converts = run.event("convert")
    assert converts == [
        {"event": "convert", "tool": "cwebp" if fmt == "webp" else "avifenc", "format": fmt,
         "filters": []}
    ]  # fmt: skip
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


def test_every_job_validates_its_options_with_the_models(run_worker, media) -> None:
    # The option models are the one authority: the plain ImageConvert the operator sends most
    # often is validated by pydantic like every other document (no exact reading beside it).
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    src = media.png("320x240", name="models-320x240.png")
    for operation, options in (("ImageConvert", {"format": "webp", "quality": 70}),
                               ("ImageResize", {"width": 100})):  # fmt: skip
        run = run_worker(operation, options, src, env=profile)
        assert run.returncode == 0, run.termination
        loaded = _imported(run.stderr)
        assert "mediaflow_worker.pipeline" in loaded  # the profile is there
        assert "mediaflow_core.options" in loaded
    # Invalid options are refused before anything is downloaded.
    run = run_worker("ImageConvert", {"format": "webp", "quality": 85.5}, src)
    assert run.returncode == 65
    assert not run.event("fetch")
    assert "quality" in run.termination["message"]


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


def test_an_oriented_jpeg_goes_through_ffmpeg(run_worker, media) -> None:
    run = run_worker("ImageConvert", {"format": "webp"}, media.jpeg_exif())
    assert run.returncode == 0, run.termination
    assert [e["tool"] for e in run.event("convert")] == ["ffmpeg"]
    assert run.event("convert")[0]["filters"] == ["transpose=1"]


def test_sigterm_during_the_encode_kills_it(http_server, tmp_path) -> None:
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
    time.sleep(0.05)  # cwebp is encoding now
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
    expected = Output(OUTPUT, out, "webp", "image/webp", 320, 240)
    result, decoder = check_output(expected, tmp_path, decode=True)
    assert decoder is not None
    assert result["width"] == 320
    finish_decode(decoder)
    # Damage inside the VP8 data (a cut file is refused by the structure walk at once).
    data = bytearray(out.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 256] = random.Random(7).randbytes(256)  # noqa: S311 (fixed damage)
    out.write_bytes(bytes(data))
    result, decoder = check_output(expected, tmp_path, decode=True)
    assert decoder is not None
    with pytest.raises(InternalError, match="does not decode"):
        finish_decode(decoder)
    # A wrong size is refused before anything is started or uploaded.
    with pytest.raises(InternalError, match="expected 10x10"):
        check_output(Output(OUTPUT, out, "webp", "image/webp", 10, 10), tmp_path, decode=True)
    assert not list(tmp_path.glob(".dwebp*"))
