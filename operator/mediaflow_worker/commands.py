"""Output formats' content types and demuxers, and the standalone encoders' commands.

`plans` re-exports all of it; the operator's tests read CONTENT_TYPES from here.
"""

from __future__ import annotations

CONTENT_TYPES: dict[str, str] = {
    "webp": "image/webp",
    "avif": "image/avif",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
}
# The ffmpeg demuxer that must read each output format back (verification).
OUTPUT_DEMUXERS: dict[str, str] = {
    "webp": "webp_pipe",
    "avif": "mov",
    "png": "png_pipe",
    "jpeg": "jpeg_pipe",
    "gif": "gif",
    "bmp": "bmp_pipe",
    "tiff": "tiff_pipe",
    "mp4": "mov",
    "webm": "matroska",
    "mkv": "matroska",
}
# Inputs the standalone encoders read themselves (no ffmpeg pass in between).
CWEBP_READS = {"jpeg", "png", "tiff", "webp"}
AVIFENC_READS = {"jpeg", "png"}


def avif_quantizer(quality: int) -> int:
    """Quality 1-100 -> AV1 quantizer 63-0 (0 is lossless)."""
    return round((100 - quality) * 63 / 99)


def cwebp_args(
    src: str,
    dst: str,
    quality: int,
    lossless: bool,
    threads: int,
    resize: tuple[int, int] | None = None,
) -> list[str]:
    """cwebp command; metadata is never copied. `resize`: cwebp's own rescaler to exactly
    that size (a tenth of ffmpeg's time for a small photo)."""
    args = ["cwebp", "-quiet", "-metadata", "none"]
    args += ["-lossless"] if lossless else ["-q", str(quality)]
    if threads > 1:
        args.append("-mt")
    if resize is not None:
        args += ["-resize", str(resize[0]), str(resize[1])]
    return [*args, "-o", dst, "--", src]


def avifenc_args(src: str, dst: str, quality: int, threads: int) -> list[str]:
    """avifenc command; EXIF and XMP are dropped (orientation was applied before, if any)."""
    q = str(avif_quantizer(quality))
    return [
        "avifenc",
        "--jobs",
        str(threads),
        "--speed",
        "6",
        "--depth",
        "8",
        "--min",
        q,
        "--max",
        q,
        "--ignore-exif",
        "--ignore-xmp",
        "--",
        src,
        dst,
    ]
