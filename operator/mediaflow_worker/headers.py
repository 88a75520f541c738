"""Dimensions, frame counts and EXIF orientation read from image headers, before any decoder runs.

These parsers read a few bytes and allocate nothing in proportion to what a header claims, so a
PNG that declares 20000x20000 is refused in microseconds.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, NamedTuple

from .errors import InvalidInput


class ImageHeader(NamedTuple):
    """What an image's header says."""

    width: int
    height: int
    frames: int = 1
    orientation: int = 1  # EXIF orientation, 1..8
    animated: bool = False


class HeaderError(InvalidInput):
    """The header is corrupt or truncated."""


def _need(data: bytes, size: int, what: str) -> None:
    if len(data) < size:
        raise HeaderError(f"the {what} header is truncated")


def exif_orientation(exif: bytes) -> int:
    """Orientation (1..8) from an EXIF TIFF structure (with or without the `Exif\\0\\0` prefix)."""
    if exif.startswith(b"Exif\x00\x00"):
        exif = exif[6:]
    if len(exif) < 8 or exif[:4] not in (b"II*\x00", b"MM\x00*"):
        return 1
    order = "<" if exif[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", exif, 4)
    if ifd + 2 > len(exif):
        return 1
    (count,) = struct.unpack_from(order + "H", exif, ifd)
    for i in range(min(count, 512)):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(exif):
            break
        tag, kind, _n = struct.unpack_from(order + "HHI", exif, entry)
        if tag == 0x0112 and kind == 3:  # Orientation, SHORT
            (value,) = struct.unpack_from(order + "H", exif, entry + 8)
            return value if 1 <= value <= 8 else 1
    return 1


def png_header(data: bytes) -> ImageHeader:
    """PNG: IHDR, plus acTL (APNG frame count) and eXIf (orientation) if before IDAT."""
    _need(data, 33, "PNG")
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise HeaderError("the PNG signature or IHDR chunk is missing")
    width, height = struct.unpack_from(">II", data, 16)
    frames, orientation, pos = 1, 1, 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IDAT" or kind == b"IEND":
            break
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"acTL" and len(body) >= 4:
            frames = max(1, struct.unpack_from(">I", body)[0])
        elif kind == b"eXIf":
            orientation = exif_orientation(body)
        pos += 12 + length
    return ImageHeader(width, height, frames, orientation, animated=False)


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_header(stream: BinaryIO) -> ImageHeader:
    """JPEG: walk the segments up to SOFn; APP1 Exif gives the orientation."""
    if stream.read(2) != b"\xff\xd8":
        raise HeaderError("the JPEG start-of-image marker is missing")
    orientation = 1
    while True:
        byte = stream.read(1)
        if not byte:
            raise HeaderError("the JPEG ends before its frame header")
        if byte != b"\xff":
            continue  # tolerate garbage between segments, as decoders do
        marker = stream.read(1)
        while marker == b"\xff":
            marker = stream.read(1)
        if not marker:
            raise HeaderError("the JPEG ends before its frame header")
        code = marker[0]
        if code in (0x01, *range(0xD0, 0xD9)):
            continue  # markers without a length
        raw = stream.read(2)
        _need(raw, 2, "JPEG segment")
        (length,) = struct.unpack(">H", raw)
        if length < 2:
            raise HeaderError("a JPEG segment has an impossible length")
        if code in _SOF_MARKERS:
            body = stream.read(5)
            _need(body, 5, "JPEG frame")
            _precision, height, width = struct.unpack(">BHH", body)
            return ImageHeader(width, height, 1, orientation)
        if code == 0xDA:
            raise HeaderError("the JPEG has image data before its frame header")
        if code == 0xE1 and orientation == 1:
            body = stream.read(length - 2)
            if body.startswith(b"Exif\x00\x00"):
                orientation = exif_orientation(body)
        else:
            stream.seek(length - 2, 1)


def gif_header(stream: BinaryIO, stop_after: int) -> ImageHeader:
    """GIF: logical screen size and the number of frames, counted up to `stop_after` + 1."""
    head = stream.read(13)
    _need(head, 13, "GIF")
    if head[:6] not in (b"GIF87a", b"GIF89a"):
        raise HeaderError("the GIF signature is missing")
    width, height, flags = struct.unpack_from("<HHB", head, 6)
    if flags & 0x80:
        stream.seek(3 << ((flags & 7) + 1), 1)
    frames = 0

    def skip_sub_blocks() -> None:
        while True:
            size = stream.read(1)
            if not size:
                raise HeaderError("the GIF is truncated")
            if size[0] == 0:
                return
            stream.seek(size[0], 1)

    while frames <= stop_after:
        intro = stream.read(1)
        if not intro or intro == b"\x3b":
            break
        if intro == b"\x21":  # extension: label, then sub-blocks
            stream.read(1)
            skip_sub_blocks()
        elif intro == b"\x2c":  # image descriptor
            desc = stream.read(9)
            _need(desc, 9, "GIF image")
            frames += 1
            if desc[8] & 0x80:
                stream.seek(3 << ((desc[8] & 7) + 1), 1)
            stream.read(1)  # LZW minimum code size
            skip_sub_blocks()
        else:
            break  # trailing garbage: decoders stop here too
    if frames == 0:
        raise HeaderError("the GIF holds no image")
    return ImageHeader(width, height, frames, 1, animated=frames > 1)


def webp_header(data: bytes) -> ImageHeader:
    """WebP: VP8, VP8L or VP8X canvas size and the animation flag."""
    _need(data, 30, "WebP")
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise HeaderError("the WebP RIFF header is missing")
    kind = data[12:16]
    if kind == b"VP8X":
        flags = data[20]
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        animated = bool(flags & 0x02)
        return ImageHeader(width, height, 2 if animated else 1, 1, animated)
    if kind == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise HeaderError("the WebP VP8 frame header is corrupt")
        width, height = struct.unpack_from("<HH", data, 26)
        return ImageHeader(width & 0x3FFF, height & 0x3FFF)
    if kind == b"VP8L":
        if data[20] != 0x2F:
            raise HeaderError("the WebP lossless header is corrupt")
        bits = int.from_bytes(data[21:25], "little")
        return ImageHeader((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    raise HeaderError("the WebP holds no known image chunk")


def bmp_header(data: bytes) -> ImageHeader:
    """BMP: the DIB header's width and height (negative height means top-down)."""
    _need(data, 26, "BMP")
    if data[:2] != b"BM":
        raise HeaderError("the BMP signature is missing")
    (dib,) = struct.unpack_from("<I", data, 14)
    if dib == 12:
        width, height = struct.unpack_from("<HH", data, 18)
    else:
        width, height = struct.unpack_from("<ii", data, 18)
    return ImageHeader(abs(width), abs(height))


def _boxes(data: bytes, start: int, end: int):
    """ISOBMFF boxes in data[start:end] as (type, body start, body end)."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def avif_header(data: bytes) -> ImageHeader:
    """AVIF: the first `ispe` (image spatial extents) property, meta/iprp/ipco/ispe."""
    _need(data, 16, "AVIF")
    if data[4:8] != b"ftyp":
        raise HeaderError("the AVIF ftyp box is missing")
    for kind, body, end in _boxes(data, 0, len(data)):
        if kind != b"meta":
            continue
        for kind2, body2, end2 in _boxes(data, body + 4, end):  # meta is a full box
            if kind2 != b"iprp":
                continue
            for kind3, body3, end3 in _boxes(data, body2, end2):
                if kind3 != b"ipco":
                    continue
                for kind4, body4, end4 in _boxes(data, body3, end3):
                    if kind4 == b"ispe" and end4 - body4 >= 12:
                        width, height = struct.unpack_from(">II", data, body4 + 4)
                        return ImageHeader(width, height)
    raise HeaderError("the AVIF has no image size property")


def read_image_header(path: str, name: str, max_frames: int) -> ImageHeader | None:
    """Header of an image file of type `name` (jpeg, png, ...); None if we have no parser."""
    with Path(path).open("rb") as stream:
        if name == "jpeg":
            return jpeg_header(stream)
        if name == "gif":
            return gif_header(stream, stop_after=max_frames)
        head = stream.read(256 * 1024)
    if name == "png":
        return png_header(head)
    if name == "webp":
        return webp_header(head)
    if name == "bmp":
        return bmp_header(head)
    return None


def output_header(path: str, fmt: str) -> ImageHeader | None:
    """Header of an image the worker wrote (format names as in ImageFormat); None for TIFF."""
    if fmt == "avif":
        with Path(path).open("rb") as stream:
            return avif_header(stream.read(256 * 1024))
    return read_image_header(path, fmt, max_frames=10**9)


# ------------------------------------------------------------- whole-file structure of outputs
#
# Without a full decode (MEDIAFLOW_VERIFY_DECODE=0, and animated WebP, which no installed tool
# decodes), an output is still walked from its first to its last byte: every chunk, box or
# segment length must land exactly on the next one and the file must end where its format says
# it ends. That catches a cut or padded file in about a millisecond; damage inside compressed
# data is left to the full decode. The walk seeks from header to header (PNG's CRCs are read in
# pieces): an output of hundreds of MB never sits in memory.


def _at(stream: BinaryIO, offset: int, size: int) -> bytes:
    stream.seek(offset)
    return stream.read(size)


def _riff_chunks(stream: BinaryIO, start: int, end: int, what: str) -> list[tuple[bytes, int, int]]:
    """RIFF chunks in [start, end) as (fourcc, body start, body end); they must fill it."""
    chunks, pos = [], start
    while pos < end:
        head = _at(stream, pos, 8)
        if pos + 8 > end or len(head) < 8:
            raise HeaderError(f"the {what} ends inside a chunk header")
        kind, size = head[:4], int.from_bytes(head[4:], "little")
        body_end = pos + 8 + size
        if body_end > end:
            raise HeaderError(f"the {what}'s {kind.decode('latin-1')!r} chunk runs past its end")
        chunks.append((kind, pos + 8, body_end))
        pos = body_end + (size & 1)  # chunks are padded to an even size
    if pos != end:
        raise HeaderError(f"the {what}'s last chunk is not padded to its end")
    return chunks


def _webp_image(stream: BinaryIO, chunks: list[tuple[bytes, int, int]]) -> tuple[int, int]:
    """The one VP8/VP8L bitstream of a still image or an animation frame, and its size; a
    VP8 key frame's first partition must fit in its chunk."""
    images = [chunk for chunk in chunks if chunk[0] in (b"VP8 ", b"VP8L")]
    if len(images) != 1:
        raise HeaderError(f"the WebP has {len(images)} image bitstreams where one belongs")
    kind, body, end = images[0]
    head = _at(stream, body, 10)
    if kind == b"VP8L":
        if end - body < 5 or head[0] != 0x2F:
            raise HeaderError("the WebP lossless header is corrupt")
        bits = int.from_bytes(head[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if end - body < 10 or head[3:6] != b"\x9d\x01\x2a":
        raise HeaderError("the WebP VP8 frame header is corrupt")
    tag = int.from_bytes(head[:3], "little")
    if tag & 1 or tag >> 5 > end - body - 10:
        raise HeaderError("the WebP VP8 frame is not a whole key frame")
    width, height = struct.unpack_from("<HH", head, 6)
    return width & 0x3FFF, height & 0x3FFF


def webp_structure(stream: BinaryIO, size: int) -> tuple[int, int]:
    """Walk a whole WebP file; returns its canvas size. HeaderError if anything does not fit."""
    head = _at(stream, 0, 12)
    _need(head, 12, "WebP")
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        raise HeaderError("the WebP RIFF header is missing")
    riff_end = 8 + int.from_bytes(head[4:8], "little")
    if riff_end != size:
        raise HeaderError(f"the WebP RIFF size says {riff_end} bytes, the file has {size}")
    chunks = _riff_chunks(stream, 12, riff_end, "WebP")
    if chunks[0][0] != b"VP8X":
        if len(chunks) != 1:
            raise HeaderError("a simple WebP holds more than its image chunk")
        return _webp_image(stream, chunks)
    _kind, body, end = chunks[0]
    vp8x = _at(stream, body, 10)
    if end - body < 10 or len(vp8x) < 10:
        raise HeaderError("the WebP VP8X chunk is truncated")
    canvas = (
        1 + int.from_bytes(vp8x[4:7], "little"),
        1 + int.from_bytes(vp8x[7:10], "little"),
    )
    if not vp8x[0] & 0x02:  # a still image (with alpha, ICC, EXIF or XMP chunks around it)
        if _webp_image(stream, chunks) != canvas:
            raise HeaderError("the WebP image is not the size of its canvas")
        return canvas
    frames = [chunk for chunk in chunks if chunk[0] == b"ANMF"]
    if not any(chunk[0] == b"ANIM" for chunk in chunks) or not frames:
        raise HeaderError("the animated WebP has no ANIM chunk or no frames")
    for _kind, body, end in frames:
        frame = _at(stream, body, 16)
        if end - body < 16 or len(frame) < 16:
            raise HeaderError("a WebP animation frame header is truncated")
        x = 2 * int.from_bytes(frame[0:3], "little")
        y = 2 * int.from_bytes(frame[3:6], "little")
        size_ = (
            1 + int.from_bytes(frame[6:9], "little"),
            1 + int.from_bytes(frame[9:12], "little"),
        )
        if _webp_image(stream, _riff_chunks(stream, body + 16, end, "WebP frame")) != size_:
            raise HeaderError("a WebP animation frame's bitstream is not its declared size")
        if x + size_[0] > canvas[0] or y + size_[1] > canvas[1]:
            raise HeaderError("a WebP animation frame lies outside the canvas")
    return canvas


def png_structure(stream: BinaryIO, size: int) -> None:
    """Walk a whole PNG: chunks with valid CRCs from IHDR to an IEND at the very end."""
    import zlib

    if _at(stream, 0, 8) != b"\x89PNG\r\n\x1a\n":
        raise HeaderError("the PNG signature is missing")
    pos, kind = 8, b""
    while kind != b"IEND":
        head = _at(stream, pos, 8)
        if len(head) < 8 or pos + 12 > size:
            raise HeaderError("the PNG ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", head)
        end = pos + 12 + length
        if end > size:
            raise HeaderError(f"the PNG's {kind.decode('latin-1')!r} chunk runs past its end")
        crc, left = zlib.crc32(kind), length
        while left:  # the CRC covers the type and the data, read a piece at a time
            piece = stream.read(min(left, 1 << 20))
            crc, left = zlib.crc32(piece, crc), left - len(piece)
        if int.from_bytes(stream.read(4), "big") != crc:
            raise HeaderError(f"the PNG's {kind.decode('latin-1')!r} chunk fails its CRC")
        pos = end
    if pos != size:
        raise HeaderError("the PNG has bytes after its IEND chunk")


def avif_structure(stream: BinaryIO, size: int) -> None:
    """Walk a whole AVIF: top-level boxes fill the file, with ftyp, meta and mdat."""
    kinds, pos = [], 0
    while pos < size:
        head = _at(stream, pos, 16)
        if len(head) < 8:
            raise HeaderError("the AVIF ends inside a box header")
        length, kind = struct.unpack_from(">I4s", head)
        header = 8
        if length == 1 and len(head) == 16:
            length, header = struct.unpack_from(">Q", head, 8)[0], 16
        elif length == 0:
            length = size - pos
        if length < header or pos + length > size:
            raise HeaderError("the AVIF's boxes do not fill the file (cut or padded)")
        kinds.append(kind)
        pos += length
    if kinds[:1] != [b"ftyp"] or b"meta" not in kinds or b"mdat" not in kinds:
        raise HeaderError("the AVIF lacks its ftyp, meta or mdat box")


def check_structure(path: str, fmt: str) -> None:
    """Walk the whole output file of format `fmt` (see above); JPEG, GIF, BMP and TIFF: their
    end marker or declared size. HeaderError if it does not hold together."""
    with Path(path).open("rb") as stream:
        size = stream.seek(0, 2)
        if fmt == "webp":
            webp_structure(stream, size)
        elif fmt == "png":
            png_structure(stream, size)
        elif fmt == "avif":
            avif_structure(stream, size)
        elif fmt == "jpeg" and _at(stream, max(0, size - 2), 2) != b"\xff\xd9":
            raise HeaderError("the JPEG does not end with its end-of-image marker")
        elif fmt == "gif" and _at(stream, max(0, size - 1), 1) != b"\x3b":
            raise HeaderError("the GIF does not end with its trailer")
        elif fmt == "bmp" and int.from_bytes(_at(stream, 2, 4), "little") != size:
            raise HeaderError("the BMP's declared file size is not its size")
