"""Output verification: every image output is walked whole (chunks, boxes, end markers), so a cut
or padded file is refused at once; WebP and AVIF are also decoded by their own decoders (dwebp,
avifdec), which catches damage inside the compressed data."""

import random
import subprocess
from pathlib import Path

import pytest

from mediaflow_worker.errors import InternalError
from mediaflow_worker.executor import verify
from mediaflow_worker.headers import HeaderError, check_structure
from mediaflow_worker.planner import OUTPUT, Output

from .conftest import ffmpeg

ENCODERS = {
    "webp": lambda src, out: ["cwebp", "-quiet", "-q", "80", src, "-o", out],
    "avif": lambda src, out: ["avifenc", "-s", "10", src, out],
}


def expected(path: Path, fmt: str, size: tuple[int, int] = (320, 240)) -> Output:
    """What a plan would expect of this output."""
    return Output(OUTPUT, path, fmt, f"image/{fmt}", *size)


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
    result = verify(expected(path, fmt), tmp_path, decode=True)
    assert (result["width"], result["height"], result["contentType"]) == (320, 240, f"image/{fmt}")


def test_a_cut_output_is_refused_before_any_decode(
    encoded: tuple[str, Path], tmp_path: Path
) -> None:
    fmt, path = encoded
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])  # header intact, picture data cut
    for decode in (True, False):
        with pytest.raises(InternalError, match="header is broken"):
            verify(expected(path, fmt), tmp_path, decode=decode)


def test_a_damaged_webp_body_is_caught_by_the_full_decode_only(tmp_path: Path) -> None:
    # (AV1 decoders conceal damage: avifdec took 58 of 60 randomly damaged AVIFs without
    # complaint, so for AVIF the structure walk is what counts.)
    fmt, path = "webp", tmp_path / "out.webp"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240", "-frames:v", "1", str(tmp_path / "in.png"))
    subprocess.run(ENCODERS[fmt](str(tmp_path / "in.png"), str(path)), check=True)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    # Same size, every chunk intact; VP8's partitions then run out early (dwebp refused 49 of
    # 60 random 16-byte damages; this one always).
    data[middle : middle + 256] = random.Random(7).randbytes(256)  # noqa: S311 (fixed damage)
    path.write_bytes(bytes(data))
    with pytest.raises(InternalError, match="does not decode"):
        verify(expected(path, fmt), tmp_path, decode=True)
    # The structure walk cannot see inside compressed data: that is what decoding is for.
    assert verify(expected(path, fmt), tmp_path, decode=False)["width"] == 320


# Outputs as the worker makes them (ffmpeg for every image format, animated WebP included).
OUTPUTS = {
    "png": ["-frames:v", "1", "-f", "image2", "-c:v", "png"],
    "jpeg": ["-frames:v", "1", "-f", "image2", "-c:v", "mjpeg"],
    "gif": ["-frames:v", "3", "-f", "gif"],
    "bmp": ["-frames:v", "1", "-f", "image2", "-c:v", "bmp"],
    "webp": ["-frames:v", "3", "-c:v", "libwebp_anim", "-loop", "0", "-f", "webp"],
    "avif": ["-frames:v", "1", "-c:v", "libsvtav1", "-f", "avif"],
}


@pytest.mark.parametrize("fmt", sorted(OUTPUTS))
def test_the_structure_walk_takes_whole_files_and_refuses_cut_or_padded_ones(
    fmt: str, tmp_path: Path
) -> None:
    out = tmp_path / f"out.{fmt}"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x64:r=5", *OUTPUTS[fmt], str(out))
    data = out.read_bytes()
    check_structure(str(out), fmt)
    for broken in (data[:-1], data[: len(data) - 40], data + b"\0\0\0\0"):
        out.write_bytes(broken)
        with pytest.raises(HeaderError):
            check_structure(str(out), fmt)


def test_the_structure_walk_does_not_hold_the_file_in_memory(tmp_path: Path) -> None:
    import struct
    import tracemalloc
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    # A 64 MiB PNG (the walk checks chunks and CRCs, not pixels): what a 100-megapixel output
    # can weigh, beside a 512 MiB pod limit.
    big = tmp_path / "big.png"
    ihdr = struct.pack(">IIBBBBB", 8000, 8000, 8, 2, 0, 0, 0)
    big.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", bytes(64 << 20))
        + chunk(b"IEND", b"")
    )  # fmt: skip
    tracemalloc.start()
    try:
        check_structure(str(big), "png")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"the walk held {peak >> 20} MiB"
