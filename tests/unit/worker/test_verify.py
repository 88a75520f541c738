"""Output verification decodes WebP with dwebp: a broken body behind a good header is caught."""

import subprocess
from pathlib import Path

import pytest

from mediaflow_worker.errors import InternalError
from mediaflow_worker.pipeline import verify
from mediaflow_worker.probe import Limits

from .conftest import ffmpeg


@pytest.fixture
def webp(tmp_path: Path) -> Path:
    png = tmp_path / "in.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240", "-frames:v", "1", str(png))
    out = tmp_path / "out.webp"
    subprocess.run(["cwebp", "-quiet", "-q", "80", str(png), "-o", str(out)], check=True)
    return out


def test_a_good_webp_verifies(webp: Path, tmp_path: Path) -> None:
    result = verify(webp, "webp", (320, 240), Limits(), tmp_path, decode=True)
    assert (result["width"], result["height"], result["contentType"]) == (320, 240, "image/webp")


def test_a_truncated_webp_does_not_verify_when_decoding(webp: Path, tmp_path: Path) -> None:
    data = webp.read_bytes()
    webp.write_bytes(data[: len(data) // 2])  # header intact, picture data cut
    with pytest.raises(InternalError, match="does not decode"):
        verify(webp, "webp", (320, 240), Limits(), tmp_path, decode=True)
    # Header-only verification cannot see it: that is what decoding is for.
    assert verify(webp, "webp", (320, 240), Limits(), tmp_path, decode=False)["width"] == 320
