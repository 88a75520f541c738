"""Small media made with the real ffmpeg for tests, and ffprobe to check results."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any


def ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True
    )


def make_photo(path: Path, size: str = "320x240") -> Path:
    """A JPEG photo-like test card."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s={size}:d=1", "-frames:v", "1", str(path))
    return path


def make_clip(path: Path, size: str = "320x240", seconds: float = 2) -> Path:
    """A short H.264 + AAC MP4 with moving picture and a tone."""
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=s={size}:r=25:d={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(path),
    )  # fmt: skip
    return path


def ffprobe(path: Path) -> dict[str, Any]:
    """Format and first video stream of a file, as ffprobe reports them."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_format", "-show_streams",
         "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    return json.loads(out)
