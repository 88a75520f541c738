"""Which endpoint each command calls and the form fields its options become (pure).

The API validates every field (docs/api.md); the CLI only names them and sends them before
the files, so a bad option is refused (422) before any byte of a file is uploaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

API_PREFIX = "/api/v1"
MAX_BATCH_FILES = 20  # the API's limit per batch request


class Operation(StrEnum):
    """Every upload command, `<kind>-<name>`, e.g. `mediaflow image webp`."""

    IMAGE_WEBP = "image-webp"
    IMAGE_AVIF = "image-avif"
    IMAGE_FORMAT = "image-format"
    IMAGE_RESIZE = "image-resize"
    VIDEO_CONVERT = "video-convert"
    VIDEO_ROTATE = "video-rotate"
    VIDEO_RESIZE = "video-resize"
    VIDEO_TRIM = "video-trim"
    VIDEO_THUMBNAIL = "video-thumbnail"


# The endpoint for one file, and for many (None: no batch endpoint, one request per file).
ENDPOINTS: dict[Operation, tuple[str, str | None]] = {
    Operation.IMAGE_WEBP: ("/image/convert/webp", "/image/batch/convert/webp"),
    Operation.IMAGE_AVIF: ("/image/convert/avif", "/image/batch/convert/avif"),
    Operation.IMAGE_FORMAT: ("/image/convert/format", "/image/batch/convert/format"),
    Operation.IMAGE_RESIZE: ("/image/resize", None),
    Operation.VIDEO_CONVERT: ("/video/convert", None),
    Operation.VIDEO_ROTATE: ("/video/rotate", None),
    Operation.VIDEO_RESIZE: ("/video/resize", None),
    Operation.VIDEO_TRIM: ("/video/trim", None),
    Operation.VIDEO_THUMBNAIL: ("/video/thumbnail", None),
}

# Command-line option name -> the API's form field, per operation (options left out are
# not sent, so the API's defaults apply).
FIELDS: dict[Operation, dict[str, str]] = {
    Operation.IMAGE_WEBP: {"quality": "quality", "lossless": "lossless"},
    Operation.IMAGE_AVIF: {"quality": "quality"},
    Operation.IMAGE_FORMAT: {"to": "output_format", "quality": "quality"},
    Operation.IMAGE_RESIZE: {"width": "width", "height": "height", "fit": "fit"},
    Operation.VIDEO_CONVERT: {
        "to": "output_format",
        "codec": "codec",
        "crf": "crf",
        "preset": "preset",
    },
    Operation.VIDEO_ROTATE: {"degrees": "degrees", "no_transcode": "no_transcode"},
    Operation.VIDEO_RESIZE: {"width": "width", "height": "height", "keep_aspect": "keep_aspect"},
    Operation.VIDEO_TRIM: {"start": "start_time", "end": "end_time"},
    Operation.VIDEO_THUMBNAIL: {"at": "timestamp", "to": "format"},
}


def form_value(value: Any) -> str:
    """A form field's text: booleans as the API reads them (`true`/`false`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def form_fields(operation: Operation, options: Mapping[str, Any]) -> dict[str, str]:
    """The form fields of `options` (command-line names) for `operation`; None is left out.

    An option the operation does not take is a programming error (KeyError), not ignored.
    """
    names = FIELDS[operation]
    fields: dict[str, str] = {}
    for option, value in options.items():
        if value is None:
            continue
        fields[names[option]] = form_value(value)
    return fields


@dataclass(frozen=True)
class UploadRequest:
    """One HTTP request of an upload command: its path (under /api/v1), the files' form field
    and files."""

    path: str
    file_field: str  # `file` for one file, `files` for a batch
    files: tuple[Path, ...]

    @property
    def is_batch(self) -> bool:
        return self.file_field == "files"


def plan_uploads(
    operation: Operation, files: Sequence[Path], batch_size: int = MAX_BATCH_FILES
) -> list[UploadRequest]:
    """The requests that upload `files`: one file alone goes to the single endpoint (its
    answer has a Location), many go to the batch endpoint in chunks of `batch_size`, or one
    request per file where the API has no batch endpoint."""
    single, batch = ENDPOINTS[operation]
    if len(files) == 1 or batch is None:
        return [UploadRequest(single, "file", (f,)) for f in files]
    return [
        UploadRequest(batch, "files", tuple(files[i : i + batch_size]))
        for i in range(0, len(files), batch_size)
    ]


def queued_jobs(request: UploadRequest, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The jobs an upload's 202 `data` made, each with `job_id`, `status` and the local
    `file` it came from (batches list theirs in the order of the files)."""
    if not request.is_batch:
        return [{"job_id": data["job_id"], "status": data["status"], "file": request.files[0]}]
    return [
        {"job_id": job["job_id"], "status": job["status"], "file": path}
        for job, path in zip(data["jobs"], request.files, strict=True)
    ]
