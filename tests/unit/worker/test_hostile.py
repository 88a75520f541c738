"""Hostile and broken inputs: each is refused as invalid input (exit 65) with no side effect; HTTP
failures map to the documented exit codes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mediaflow_core.media import VIDEO_TYPES
from mediaflow_worker.pipeline import probe
from mediaflow_worker.probe import Limits

from .conftest import png_bomb, url_dir

LOCAL_SECRET = "mediaflow-local-secret-7f3a9c"  # noqa: S105 - a marker, not a credential


def refused(run, fragment: str = "") -> None:
    assert run.returncode == 65, (run.termination, run.stdout[-2000:], run.stderr[-2000:])
    assert run.termination["reason"] == "InvalidInput"
    assert fragment in run.termination["message"], run.termination["message"]
    assert run.upload is None, "nothing may be uploaded"


def hls_playlist(tmp_path: Path, port: int) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text(LOCAL_SECRET + "\n")
    playlist = tmp_path / "video.mp4"
    playlist.write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:10.0,\nhttp://127.0.0.1:{port}/segment.ts\n"
        f"#EXTINF:10.0,\nfile://{secret}\n"
        f"#EXTINF:10.0,\n{secret}\n#EXT-X-ENDLIST\n"
    )
    return playlist


@pytest.mark.parametrize("operation", ["VideoConvert", "VideoThumbnail", "ImageConvert"])
def test_hls_playlist_named_mp4(run_worker, tmp_path, listener, operation) -> None:
    options = {"container": "mp4"} if operation == "VideoConvert" else {}
    if operation == "ImageConvert":
        options = {"format": "png"}
    run = run_worker(operation, options, hls_playlist(tmp_path, listener.port))
    refused(run, "text/plain")
    time.sleep(0.2)
    assert listener.connections == 0
    assert LOCAL_SECRET not in run.stdout + run.stderr + str(run.termination)


def test_forced_demuxer_stops_hls_even_past_the_sniffer(tmp_path, listener) -> None:
    """Defence in depth: ffprobe told the file is MP4 never reads it as a playlist."""
    playlist = hls_playlist(tmp_path, listener.port)
    work = tmp_path / "w"
    work.mkdir()
    with pytest.raises(Exception, match="cannot be read") as info:
        probe(playlist, VIDEO_TYPES["video/mp4"], Limits(), work)
    time.sleep(0.2)
    assert listener.connections == 0
    assert LOCAL_SECRET not in str(info.value)


def test_ffconcat(run_worker, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(LOCAL_SECRET)
    concat = tmp_path / "clip.mp4"
    concat.write_text(f"ffconcat version 1.0\nfile '{secret}'\nfile '/etc/passwd'\n")
    run = run_worker("VideoConvert", {"container": "webm"}, concat)
    refused(run, "text/plain")
    assert LOCAL_SECRET not in run.stdout + run.stderr


def test_truncated_mp4(run_worker, media, tmp_path) -> None:
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(media.mp4().read_bytes()[:4000])
    run = run_worker("VideoConvert", {"container": "mp4"}, truncated)
    refused(run, "cannot be read")


@pytest.mark.parametrize(
    ("content", "mime"),
    [
        (
            '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            '<image href="file:///etc/passwd"/></svg>',
            "svg",
        ),
        (
            'push graphic-context\nviewbox 0 0 640 480\nfill "url(https://127.0.0.1/x.jpg)"\n'
            "pop graphic-context\n",
            "mvg",
        ),
    ],
)
def test_svg_and_mvg_named_png(run_worker, tmp_path, content, mime) -> None:
    path = tmp_path / "photo.png"
    path.write_text(content)
    run = run_worker("ImageConvert", {"format": "webp"}, path)
    refused(run, mime)


@pytest.mark.parametrize("fmt", ["webp", "avif", "png"])
def test_png_bomb_refused_fast_without_allocating(run_worker, tmp_path, fmt) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(20000, 20000))
    run = run_worker("ImageConvert", {"format": fmt}, bomb)
    refused(run, "20000x20000")
    # Refused from the header: no decoder allocated the picture (cwebp would have taken
    # 1.76 GB) and no encoder started. Time is no evidence on a shared machine (the worker's
    # own seconds went past 1.0 under load); bench/worker_overhead.py measures speed. The
    # bound below only catches a decode that runs to the end.
    assert run.max_rss_kb < 150_000, run.max_rss_kb
    assert run.seconds < 30.0, run.seconds
    assert not run.event("convert"), "no encoder may have started"


def test_gif_with_thousands_of_frames(run_worker, media) -> None:
    run = run_worker("ImageConvert", {"format": "webp"}, media.gif_many_frames(3000))
    refused(run, "more than 2000 frames")
    tighter = run_worker(
        "ImageResize", {"width": 1}, media.gif_animated(), env={"MEDIAFLOW_MAX_FRAMES": "5"}
    )
    refused(tighter, "more than 5 frames")


def test_limits_from_the_environment(run_worker, media) -> None:
    refused(
        run_worker(
            "ImageConvert", {"format": "png"}, media.png(), {"MEDIAFLOW_MAX_PIXELS": "1000"}
        ),
        "megapixels",
    )
    refused(
        run_worker(
            "VideoConvert",
            {"container": "mp4"},
            media.mp4(),
            {"MEDIAFLOW_MAX_DURATION_SECONDS": "1"},
        ),
        "lasts 2 s",
    )
    refused(
        run_worker(
            "ImageConvert", {"format": "png"}, media.png(), {"MEDIAFLOW_MAX_INPUT_BYTES": "100"}
        ),
        "limit is 100",
    )


def test_wrong_kind_and_audio_only(run_worker, media) -> None:
    refused(run_worker("VideoConvert", {"container": "mp4"}, media.png()), "image/png")
    refused(run_worker("ImageConvert", {"format": "png"}, media.mp4()), "video/mp4")
    refused(run_worker("VideoThumbnail", {}, media.audio_only()), "audio-only")


def test_timestamps_past_the_end(run_worker, media) -> None:
    refused(run_worker("VideoThumbnail", {"timestamp": "00:00:02"}, media.mp4()), "past the end")
    refused(
        run_worker("VideoTrim", {"start": "00:00:05", "end": "00:00:06"}, media.mp4()),
        "past the end",
    )


def test_bad_options_and_metadata_only_webm(run_worker, media) -> None:
    refused(run_worker("VideoConvert", '{"container": "avi"}', media.mp4()), "container")
    refused(run_worker("Transcode", "{}", media.mp4()), "unknown operation")
    refused(
        run_worker("VideoRotate", {"degrees": 90, "metadataOnly": True}, media.webm_silent()),
        "metadataOnly rotation needs an MP4 or MOV input",
    )


def test_http_failures(run_worker, http_server, media) -> None:
    http_server.statuses["gone.png"] = 404
    run = run_worker("ImageConvert", {"format": "png"}, f"{http_server.base}/in/gone.png?sig=1")
    assert run.returncode == 66
    assert run.termination["reason"] == "InputNotFound"
    assert "HTTP 404" in run.termination["message"]
    http_server.statuses["broken.png"] = 503
    run = run_worker("ImageConvert", {"format": "png"}, f"{http_server.base}/in/broken.png")
    assert run.returncode == 75
    assert run.termination["reason"] == "TransientError"
    http_server.redirects["local.png"] = "file:///etc/passwd"
    run = run_worker("ImageConvert", {"format": "png"}, f"{http_server.base}/in/local.png")
    refused(run, "http or https")
    http_server.redirects["hop.png"] = (
        "/in/" + http_server.serve(media.png(), "target.png").split("/in/")[1]
    )
    run = run_worker("ImageConvert", {"format": "png"}, f"{http_server.base}/in/hop.png")
    assert run.returncode == 0, run.termination
    refused(run_worker("ImageConvert", {"format": "png"}, "ftp://127.0.0.1/x.png"), "http")


def test_unreachable_output_is_transient(run_worker, media, tmp_path) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    run = run_worker(
        "ImageConvert",
        {"format": "png"},
        media.png(),
        output_url=f"http://127.0.0.1:{port}/out?X-Amz-Signature=secret-signature",
    )
    assert run.returncode == 75
    assert run.termination["reason"] == "TransientError"
    assert "secret-signature" not in run.stdout + str(run.termination)


def test_sigterm_stops_the_tool_and_cleans_up(http_server, media, tmp_path) -> None:
    """A stopped pod (deadline, cancellation) leaves no tool running and no files behind."""
    import os

    work = tmp_path / "work"
    work.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "MEDIAFLOW_OPERATION": "VideoConvert",
        "MEDIAFLOW_OPTIONS": '{"container": "mp4", "codec": "av1", "preset": "veryslow"}',
        **url_dir(
            tmp_path / "urls",
            http_server.serve(media.mp4(), "slow.mp4"),
            f"{http_server.base}/out/never",
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
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 75
    assert list(work.iterdir()) == []
    assert "TransientError" in (tmp_path / "term").read_text()
    assert "never" not in http_server.uploads
