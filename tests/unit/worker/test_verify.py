"""Output verification decodes WebP and AVIF with their own decoders (dwebp, avifdec): a broken
body behind a good header is caught."""

import subprocess
from pathlib import Path

import pytest

from mediaflow_worker.errors import InternalError
from mediaflow_worker.pipeline import verify
from mediaflow_worker.probe import Limits

from .conftest import ffmpeg

ENCODERS = {
    "webp": lambda src, out: ["cwebp", "-quiet", "-q", "80", src, "-o", out],
    "avif": lambda src, out: ["avifenc", "-s", "10", src, out],
}


@pytest.fixture(params=sorted(ENCODERS))
def encoded(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    fmt = request.param
    png = tmp_path / "in.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240", "-frames:v", "1", str(png))
    out = tmp_path / f"out.{fmt}"
    subprocess.run(ENCODERS[fmt](str(png), str(out)), check=True, capture_output=True)
    return fmt, out


def test_a_good_output_verifies(encoded: tuple[str, Path], tmp_path: Path) -> None:
    fmt, path = encoded
    result = verify(path, fmt, (320, 240), Limits(), tmp_path, decode=True)
    assert (result["width"], result["height"], result["contentType"]) == (320, 240, f"image/{fmt}")


def test_a_truncated_output_does_not_verify_when_decoding(
    encoded: tuple[str, Path], tmp_path: Path
) -> None:
    fmt, path = encoded
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])  # header intact, picture data cut
    with pytest.raises(InternalError, match="does not decode"):
        verify(path, fmt, (320, 240), Limits(), tmp_path, decode=True)
    # Header-only verification cannot see it: that is what decoding is for.
    assert verify(path, fmt, (320, 240), Limits(), tmp_path, decode=False)["width"] == 320
