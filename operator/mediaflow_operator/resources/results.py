"""How a result is offered for download, shared by the operator (status.result.url) and the
API (the fresh `result_url` of a job). Kopf-free and pure."""

from __future__ import annotations

import re

# File extensions of the result's content types: the result's object key has none, because
# the worker picks the container for some operations (rotate keeps a WebM a WebM).
EXTENSIONS = {
    "image/webp": "webp",
    "image/avif": "avif",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
    "video/matroska": "mkv",
}
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._ -]+")


def download_filename(stem: str, content_type: str | None) -> str:
    """`stem` with the result's extension, safe inside a quoted Content-Disposition header."""
    safe = _UNSAFE_FILENAME.sub("_", stem).strip(" .") or "result"
    return f"{safe[:100]}.{EXTENSIONS.get(content_type or '', 'bin')}"
