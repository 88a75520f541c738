"""Where a downloaded result is saved (pure, apart from `exists` handed in).

The API names each result in its download URL (`response-content-disposition`, e.g.
`photo.webp` for `photo.jpg`); that name is used, reduced to a plain file name, and never
overwrites an existing file (the original `photo.jpg` converted to JPEG stays).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import Message
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import parse_qs, urlsplit

# The extension of each result content type, for a URL without a file name.
EXTENSIONS = {
    "image/webp": "webp",
    "image/avif": "avif",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def disposition_filename(value: str | None) -> str | None:
    """The `filename` of a Content-Disposition value, if any."""
    if not value:
        return None
    message = Message()
    message["content-disposition"] = value
    name = message.get_filename()
    return name or None


def url_filename(url: str) -> str | None:
    """The file name a presigned URL asks the store to send (`response-content-disposition`)."""
    query = parse_qs(urlsplit(url).query)
    values = query.get("response-content-disposition")
    return disposition_filename(values[0]) if values else None


def safe_filename(name: str | None, fallback: str) -> str:
    """`name` as a plain file name in the output folder: no folders (either slash), no
    control characters, not hidden, not empty; else `fallback`."""
    if name:
        name = PureWindowsPath(PurePosixPath(name).name).name
        name = _CONTROL.sub("_", name).strip().lstrip(".")
    return name or fallback


def fallback_filename(job_id: str, content_type: str | None) -> str:
    """`<job id>.<ext>` for a result whose URL names no file."""
    base = (content_type or "").split(";")[0].strip().lower()
    return f"{job_id}.{EXTENSIONS.get(base, 'bin')}"


def free_path(folder: Path, name: str, exists: Callable[[Path], bool]) -> Path:
    """`folder/name`, or `folder/stem-1.ext`, `stem-2.ext`... the first that does not exist."""
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while exists(candidate):
        candidate = folder / f"{stem}-{n}{suffix}"
        n += 1
    return candidate


def output_path(
    target: Path | None,
    name: str,
    *,
    is_dir: Callable[[Path], bool],
    exists: Callable[[Path], bool],
) -> Path:
    """Where a result named `name` goes: with no target, a free name in the current folder;
    in a free name inside a target that is a folder; or the target itself (a file path the
    user chose, replaced if it exists)."""
    if target is None:
        return free_path(Path(), name, exists)
    if is_dir(target):
        return free_path(target, name, exists)
    return target
