"""A multipart/form-data body streamed from disk with a known length, so an upload is never
held in memory, the API sees its Content-Length, and each chunk sent advances a progress
bar (httpx sends an iterator as it is consumed)."""

from __future__ import annotations

import mimetypes
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CHUNK_SIZE = 256 * 1024


def quote_name(name: str) -> str:
    """A name inside a quoted multipart header parameter, as browsers send it (HTML's
    form-data encoding): `"` and line breaks percent-encoded, the rest UTF-8 as is."""
    return name.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


@dataclass(frozen=True)
class FilePart:
    path: Path
    size: int


def multipart_layout(
    fields: Mapping[str, str],
    file_field: str,
    files: Sequence[FilePart],
    boundary: str,
) -> list[bytes | FilePart]:
    """The body's pieces in order: each field (before the files, so the API checks them
    before it receives a byte of a file), then each file's header and contents."""
    dash = f"--{boundary}\r\n".encode()
    pieces: list[bytes | FilePart] = []
    for name, value in fields.items():
        pieces.append(
            dash
            + f'Content-Disposition: form-data; name="{quote_name(name)}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for part in files:
        content_type = mimetypes.guess_type(part.path.name)[0] or "application/octet-stream"
        pieces.append(
            dash
            + (
                f'Content-Disposition: form-data; name="{quote_name(file_field)}"; '
                f'filename="{quote_name(part.path.name)}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode()
        )
        pieces.append(part)
        pieces.append(b"\r\n")
    pieces.append(f"--{boundary}--\r\n".encode())
    return pieces


def body_length(pieces: Sequence[bytes | FilePart]) -> int:
    return sum(p.size if isinstance(p, FilePart) else len(p) for p in pieces)


class MultipartBody:
    """The body of one upload request; iterate it with `stream(on_sent)` (again for a
    retry: it reads the files afresh)."""

    def __init__(self, fields: Mapping[str, str], file_field: str, files: Sequence[Path]) -> None:
        self.boundary = secrets.token_hex(16)
        parts = [FilePart(path, path.stat().st_size) for path in files]
        self.pieces = multipart_layout(fields, file_field, parts, self.boundary)
        self.length = body_length(self.pieces)
        self.file_bytes = sum(p.size for p in parts)

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(self.length),
        }

    def stream(self, on_sent: Callable[[FilePart, int], None] | None = None) -> Iterator[bytes]:
        """The body's bytes; `on_sent(part, n)` after each chunk of a file's contents."""
        for piece in self.pieces:
            if isinstance(piece, bytes):
                yield piece
                continue
            sent = 0
            with piece.path.open("rb") as file:
                while chunk := file.read(CHUNK_SIZE):
                    sent += len(chunk)
                    if sent > piece.size:
                        raise OSError(f"{piece.path} grew while it was being uploaded")
                    yield chunk
                    if on_sent is not None:
                        on_sent(piece, len(chunk))
            if sent != piece.size:
                raise OSError(f"{piece.path} changed size while it was being uploaded")
