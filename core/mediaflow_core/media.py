"""Allowed input types: what libmagic calls them, and which ffmpeg demuxer each one is forced to.

The worker sniffs each input file against these allowlists; the API sniffs the head of each
upload against the same ones before it stores a byte, so both judge the bytes alike."""

from __future__ import annotations

from typing import NamedTuple


class UnsupportedMedia(ValueError):  # noqa: N818 - the worker reports it as InvalidInput
    """The content is not one of the accepted types; the message names what was found."""


class MediaType(NamedTuple):
    """An accepted input type."""

    name: str  # short name: jpeg, png, ..., mp4, webm, matroska, avi, mpegts
    kind: str  # "image" or "video"
    demuxer: str  # forced with -f, and the only entry of -format_whitelist


IMAGE_TYPES: dict[str, MediaType] = {
    "image/jpeg": MediaType("jpeg", "image", "jpeg_pipe"),
    "image/png": MediaType("png", "image", "png_pipe"),
    "image/gif": MediaType("gif", "image", "gif"),
    "image/webp": MediaType("webp", "image", "webp_pipe"),
    "image/avif": MediaType("avif", "image", "mov"),
    "image/bmp": MediaType("bmp", "image", "bmp_pipe"),
    "image/x-ms-bmp": MediaType("bmp", "image", "bmp_pipe"),
    "image/tiff": MediaType("tiff", "image", "tiff_pipe"),
}
VIDEO_TYPES: dict[str, MediaType] = {
    "video/mp4": MediaType("mp4", "video", "mov"),
    "video/quicktime": MediaType("mov", "video", "mov"),
    "video/x-m4v": MediaType("mp4", "video", "mov"),
    "video/webm": MediaType("webm", "video", "matroska"),
    "video/x-matroska": MediaType("matroska", "video", "matroska"),
    "video/x-msvideo": MediaType("avi", "video", "avi"),
    "video/mp2t": MediaType("mpegts", "video", "mpegts"),
}

_TS_PACKET = 188
# What classify reads of a file's head (MPEG-TS sync bytes).
HEAD_BYTES = _TS_PACKET * 16


def looks_like_mpegts(head: bytes) -> bool:
    """True if `head` starts with at least 5 MPEG-TS packets (sync byte every 188 bytes).

    libmagic 5.44 calls MPEG-TS `application/octet-stream`, so the sync pattern is checked here.
    """
    packets = min(len(head) // _TS_PACKET, 16)
    return packets >= 5 and all(head[i * _TS_PACKET] == 0x47 for i in range(packets))


def classify(mime: str, head: bytes, kind: str) -> MediaType:
    """The accepted type for a sniffed MIME type, or UnsupportedMedia naming what was found."""
    if mime == "application/octet-stream" and looks_like_mpegts(head):
        mime = "video/mp2t"
    table = IMAGE_TYPES if kind == "image" else VIDEO_TYPES
    if mime in table:
        return table[mime]
    if kind == "image":
        allowed = "JPEG, PNG, GIF, WebP, AVIF, BMP or TIFF"
    else:
        allowed = "MP4/MOV, WebM, Matroska, AVI or MPEG-TS"
    found = f"an audio-only file ({mime})" if mime.startswith("audio/") else f"{mime} content"
    raise UnsupportedMedia(
        f"the input is {found}, not {allowed}; names and declared types are ignored"
    )
