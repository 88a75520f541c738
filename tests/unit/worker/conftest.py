"""Worker test fixtures: generated media, a loopback HTTP server, the worker as a process."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.environment import Listener, counting_listener

LOOPBACK = "127.0.0.1"  # the only address these tests ever bind or contact
SIGNATURE = "X-Amz-Signature=secret-signature"  # must never appear in logs


# ---------------------------------------------------------------- HTTP server


@dataclass
class Upload:
    """A PUT the server received."""

    body: bytes
    content_type: str | None
    content_length: str | None


@dataclass
class FileServer:
    """GET /in/NAME serves a registered file; PUT /out/NAME stores the body."""

    base: str
    files: dict[str, Path] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    # Every request in the order served: "GET name" / "PUT name".
    requests: list[str] = field(default_factory=list)

    def serve(self, path: Path, name: str | None = None) -> str:
        """Register a file; returns its URL (with a fake signature in the query)."""
        name = name or path.name
        self.files[name] = path
        return f"{self.base}/in/{name}?{SIGNATURE}"


def _handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            name = self.path.split("?")[0].removeprefix("/in/")
            server.requests.append(f"GET {name}")
            if name in server.statuses:
                self.send_response(server.statuses[name])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if name in server.redirects:
                self.send_response(302)
                self.send_header("Location", server.redirects[name])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path = server.files.get(name)
            if path is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            name = self.path.split("?")[0].removeprefix("/out/")
            server.requests.append(f"PUT {name}")
            server.uploads[name] = Upload(
                body, self.headers.get("Content-Type"), self.headers.get("Content-Length")
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@pytest.fixture(scope="session")
def http_server() -> Iterator[FileServer]:
    """A threaded HTTP server on 127.0.0.1 only."""
    state = FileServer(base="")
    httpd = ThreadingHTTPServer((LOOPBACK, 0), _handler(state))
    state.base = f"http://{LOOPBACK}:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    """Counts every connection attempt made to it on 127.0.0.1."""
    with counting_listener(LOOPBACK) as state:
        yield state


# ---------------------------------------------------------------- media


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly; fail the test on error."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        env={**os.environ, "SVT_LOG": "1"},
    )


def ffprobe(path: Path, *extra: str) -> dict[str, Any]:
    """ffprobe JSON of streams and format (independent of the worker's own check)."""
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            *extra,
            "-show_streams",
            "-show_format",
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def exif_app1(orientation: int, description: bytes) -> bytes:
    """An APP1 Exif segment with Orientation, ImageDescription and a GPS IFD (big-endian)."""
    entries_ifd0 = 3
    ifd0 = 8
    ifd0_size = 2 + 12 * entries_ifd0 + 4
    desc_off = ifd0 + ifd0_size
    desc = description + b"\x00"
    gps_off = desc_off + len(desc)
    gps_entries = 2
    gps_size = 2 + 12 * gps_entries + 4
    rational_off = gps_off + gps_size
    tiff = b"MM\x00\x2a" + struct.pack(">I", ifd0)
    tiff += struct.pack(">H", entries_ifd0)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)  # Orientation
    tiff += struct.pack(">HHII", 0x010E, 2, len(desc), desc_off)  # ImageDescription
    tiff += struct.pack(">HHII", 0x8825, 4, 1, gps_off)  # GPS IFD pointer
    tiff += struct.pack(">I", 0)
    tiff += desc
    tiff += struct.pack(">H", gps_entries)
    tiff += struct.pack(">HHI4s", 0x0001, 2, 2, b"N\x00\x00\x00")  # GPSLatitudeRef
    tiff += struct.pack(">HHII", 0x0002, 5, 3, rational_off)  # GPSLatitude
    tiff += struct.pack(">I", 0)
    tiff += struct.pack(">6I", 48, 1, 51, 1, 30, 1)
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def tiny_gif(frames: int) -> bytes:
    """A 1x1 GIF with `frames` frames, built by hand (fast even for thousands of frames)."""
    out = bytearray(
        b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    )
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frame = b"\x21\xf9\x04\x00\x01\x00\x00\x00" + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
    frame += b"\x02\x02\x44\x01\x00"
    out += frame * frames + b"\x3b"
    return bytes(out)


def png_bomb(width: int, height: int) -> bytes:
    """A small PNG whose IHDR claims width x height."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 3_000_000, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


EXIF_SECRET = b"mediaflow-secret-exif-description"
ZIP_SECRET = b"mediaflow-secret-zip-payload"


class Media:
    """Generates each test file once per session, on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _make(self, name: str, build) -> Path:
        path = self.root / name
        if not path.exists():
            build(path)
        return path

    def png(self, size: str = "64x48", name: str = "plain.png") -> Path:
        return self._make(
            name,
            lambda p: ffmpeg("-f", "lavfi", "-i", f"testsrc2=s={size}", "-frames:v", "1", str(p)),
        )

    def png16(self) -> Path:
        return self._make(
            "deep.png",
            lambda p: ffmpeg(
                "-f",
                "lavfi",
                "-i",
                "testsrc2=s=64x48",
                "-frames:v",
                "1",
                "-pix_fmt",
                "rgb48be",
                str(p),
            ),
        )

    def png_rgba(self) -> Path:
        return self._make(
            "alpha.png",
            lambda p: ffmpeg(
                "-f",
                "lavfi",
                "-i",
                "testsrc2=s=64x48",
                "-frames:v",
                "1",
                "-vf",
                "format=rgba,colorchannelmixer=aa=0.5",
                str(p),
            ),
        )

    def odd_png(self) -> Path:
        # testsrc2 rounds sizes to even numbers; scaling afterwards does not.
        return self.converted(self.png(), "odd.png", "-vf", "scale=65:49")

    def jpeg_exif(self) -> Path:
        """64x48 as stored, EXIF orientation 6 (displayed 48x64), with GPS and a description."""

        def build(p: Path) -> None:
            plain = self.root / "plain-exif-source.jpg"
            ffmpeg("-i", str(self.png()), str(plain))
            data = plain.read_bytes()
            p.write_bytes(data[:2] + exif_app1(6, EXIF_SECRET) + data[2:])

        return self._make("exif.jpg", build)

    def converted(self, source: Path, name: str, *args: str) -> Path:
        return self._make(name, lambda p: ffmpeg("-i", str(source), *args, str(p)))

    def bmp(self) -> Path:
        return self.converted(self.png(), "in.bmp")

    def tiff(self) -> Path:
        return self.converted(self.png(), "in.tiff")

    def webp(self) -> Path:
        return self.converted(self.png(), "in.webp")

    def avif(self) -> Path:
        def build(p: Path) -> None:
            subprocess.run(
                ["avifenc", "-s", "10", str(self.png()), str(p)], check=True, capture_output=True
            )

        return self._make("in.avif", build)

    def gif_animated(self) -> Path:
        return self._make(
            "anim.gif",
            lambda p: ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=10", "-t", "1", str(p)),
        )

    def gif_many_frames(self, frames: int = 3000) -> Path:
        return self._make("many.gif", lambda p: p.write_bytes(tiny_gif(frames)))

    def png_zip(self) -> Path:
        def build(p: Path) -> None:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                z.writestr("payload.txt", ZIP_SECRET * 10)
            p.write_bytes(self.png().read_bytes() + buf.getvalue())

        return self._make("zip.png", build)

    def video(
        self,
        name: str = "in.mp4",
        *args: str,
        size: str = "160x120",
        seconds: str = "2",
        audio: bool = True,
    ) -> Path:
        def build(p: Path) -> None:
            inputs = ["-f", "lavfi", "-i", f"testsrc2=s={size}:r=25"]
            if audio:
                inputs += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
            ffmpeg(*inputs, "-t", seconds, *args, str(p))

        return self._make(name, build)

    def mp4(self) -> Path:
        return self.video(
            "in.mp4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"
        )

    def mov(self) -> Path:
        return self.video(
            "in.mov", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"
        )

    def webm_silent(self) -> Path:
        return self.video(
            "silent.webm",
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            audio=False,
        )

    def mkv10(self) -> Path:
        return self.video(
            "deep.mkv",
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p10le",
            "-x265-params",
            "log-level=error",
        )

    def avi(self) -> Path:
        return self.video("in.avi", "-c:v", "mpeg4")

    def ts(self) -> Path:
        return self.video("in.ts", "-c:v", "libx264", "-preset", "ultrafast", "-f", "mpegts")

    def odd_video(self) -> Path:
        return self.video(
            "odd.mp4",
            "-vf",
            "scale=161:121",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv444p",
        )

    def phone(self) -> Path:
        """Landscape 160x120 pixels, flagged to display 90 degrees clockwise (120x160)."""

        def build(p: Path) -> None:
            # Debian's ffmpeg 5.1 writes `rotate=N` as N degrees counter-clockwise: 270 here.
            ffmpeg("-i", str(self.mp4()), "-c", "copy", "-metadata:s:v:0", "rotate=270", str(p))

        return self._make("phone.mp4", build)

    def audio_only(self) -> Path:
        return self._make(
            "audio.m4a",
            lambda p: ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(p)),
        )


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    """Session-wide generated media."""
    return Media(tmp_path_factory.mktemp("media"))


# ---------------------------------------------------------------- the worker as a process


@dataclass
class WorkerRun:
    """What one worker process did."""

    returncode: int
    stdout: str
    stderr: str
    termination: dict[str, Any]
    events: list[dict[str, Any]]
    upload: Upload | None
    output: Path | None
    seconds: float
    max_rss_kb: int

    def event(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]


# Runs the worker as its child and writes the worker's peak RSS (KiB) to argv[1]. Linux hands
# a process the peak RSS of the one that forked it at exec time, so measured straight from
# pytest (hundreds of MB after the integration tests) the worker's number would be pytest's.
RSS_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def url_dir(directory: Path, input_url: str, output_url: str) -> dict[str, str]:
    """Write the URL files as the pod's Secret volume holds them; the worker's environment
    naming that folder."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "input-url").write_text(input_url)
    (directory / "output-url").write_text(output_url)
    return {"MEDIAFLOW_URL_DIR": str(directory)}


@pytest.fixture
def run_worker(http_server: FileServer, tmp_path: Path):
    """Run `python -m mediaflow_worker` against a served input; returns a WorkerRun."""
    counter = iter(range(10_000))

    def run(
        operation: str,
        options: dict[str, Any] | str,
        source: Path | str,
        env: dict[str, str] | None = None,
        output_url: str | None = None,
    ) -> WorkerRun:
        n = next(counter)
        work = tmp_path / f"work{n}"
        work.mkdir()
        term = tmp_path / f"term{n}"
        out_name = f"out-{tmp_path.name}-{n}"
        url = source if isinstance(source, str) else http_server.serve(source, f"{n}-{source.name}")
        full_env = {
            "PATH": os.environ["PATH"],
            "MEDIAFLOW_OPERATION": operation,
            "MEDIAFLOW_OPTIONS": options if isinstance(options, str) else json.dumps(options),
            **url_dir(
                tmp_path / f"urls{n}",
                url,
                output_url or f"{http_server.base}/out/{out_name}?{SIGNATURE}",
            ),
            "MEDIAFLOW_WORK_DIR": str(work),
            "MEDIAFLOW_TERMINATION_LOG": str(term),
            **(env or {}),
        }
        started = time.monotonic()
        rss_file = tmp_path / f"rss{n}"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                RSS_LAUNCHER,
                str(rss_file),
                sys.executable,
                "-m",
                "mediaflow_worker",
            ],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Read both pipes in threads, then reap with wait4 for this child's own peak RSS.
        streams: dict[str, str] = {}
        readers = [
            threading.Thread(target=lambda k=k, f=f: streams.__setitem__(k, f.read()))
            for k, f in (("out", proc.stdout), ("err", proc.stderr))
        ]
        for reader in readers:
            reader.start()
        proc.wait()
        for reader in readers:
            reader.join()
        seconds = time.monotonic() - started
        stdout, stderr, max_rss = streams["out"], streams["err"], int(rss_file.read_text())
        events = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        termination = json.loads(term.read_text()) if term.exists() else {}
        upload = http_server.uploads.get(out_name)
        output = None
        if upload is not None:
            output = tmp_path / f"{out_name}.bin"
            output.write_bytes(upload.body)
        # The worker must leave its work directory empty, whatever happened.
        assert list(work.iterdir()) == [], list(work.iterdir())
        return WorkerRun(
            proc.returncode, stdout, stderr, termination, events, upload, output, seconds, max_rss
        )

    return run


def have(tool: str) -> bool:
    """True if a tool is on PATH."""
    return shutil.which(tool) is not None
