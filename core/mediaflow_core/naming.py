"""Names derived from a MediaJob: its Job, its result's object key, its upload's key, the file
name its result downloads as. The API, the operator and the orphan sweep all compute them;
pure and Kopf-free.

Object storage layout, one bucket, one prefix per namespace:

- `<namespace>/results/<MediaJob uid>/output`: the result (the worker PUTs it, the operator's
  finalizer deletes the prefix).
- `<namespace>/uploads/<job id>/input`: a file uploaded through the HTTP API, whose MediaJob is
  named by the job id; `mediaflow.io/delete-input` may delete only keys under
  `<namespace>/uploads/<its name>/`.
- `<namespace>/uploads/<batch MediaJob name>/<job id>/input`: a file of a batch request, one
  of the inputs (spec.inputs) of the request's one MediaJob (upload_item_key).
- `<namespace>/uploads/<job id>/in-progress`: the marker an upload keeps fresh while it stores
  (see UPLOAD_MARKER).
- anything else under `<namespace>/`: inputs kubectl users put there themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mediaflow_core.constants import ANNOTATION_CANCEL_ITEM_PREFIX

RESULTS = "results"
UPLOADS = "uploads"
INPUT = "input"
OUTPUT = "output"
RENDITIONS = "renditions"
# Uploads in progress (see the operator's sweeper): the API writes this marker under an
# upload's prefix before it stores anything there, rewrites it every UPLOAD_MARKER_REFRESH
# while its request runs, and deletes it once the MediaJobs exist; the orphan sweep spares
# everything under a prefix whose marker is younger than UPLOAD_MARKER_TTL.
UPLOAD_MARKER = "in-progress"
UPLOAD_MARKER_TTL = timedelta(minutes=2)
UPLOAD_MARKER_REFRESH = UPLOAD_MARKER_TTL / 4


@dataclass(frozen=True)
class MediaJobRef:
    """What identifies a MediaJob."""

    name: str
    namespace: str
    uid: str

    @classmethod
    def from_body(cls, body: Any) -> MediaJobRef:
        meta = body["metadata"]
        return cls(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])


def job_name(ref: MediaJobRef) -> str:
    """The one Job name of a MediaJob: stable across restarts, unique per MediaJob object."""
    return f"{ref.name[:54].rstrip('-.')}-{ref.uid.replace('-', '')[:8]}"


def result_prefix(ref: MediaJobRef) -> str:
    """Where a MediaJob's results live: `<namespace>/results/<uid>/`."""
    return f"{ref.namespace}/{RESULTS}/{ref.uid}/"


def result_key(ref: MediaJobRef) -> str:
    """The object key of the result. The worker picks the output container for some
    operations (rotate keeps a WebM a WebM), so the key has no extension; download URLs
    name the file with the right one (see download_filename)."""
    return f"{result_prefix(ref)}{OUTPUT}"


def item_result_key(ref: MediaJobRef, index: int) -> str:
    """The result of input `index` of a MediaJob with spec.inputs (under its result prefix,
    so that deleting the MediaJob deletes them all)."""
    return f"{result_prefix(ref)}items/{index:03d}/{OUTPUT}"


def rendition_key(ref: MediaJobRef, name: str, index: int | None = None) -> str:
    """The object key of rendition `name` (spec.renditions): `<prefix>renditions/<name>`, or
    for input `index` of spec.inputs `<prefix>items/NNN/renditions/<name>` (under the result
    prefix: deleting the MediaJob, or cancelling that input, deletes them)."""
    if index is None:
        return f"{result_prefix(ref)}{RENDITIONS}/{name}"
    return f"{result_prefix(ref)}items/{index:03d}/{RENDITIONS}/{name}"


def item_id(uid: str, index: int) -> str:
    """What a warm pod's mailbox and log call one input of a MediaJob: its uid, and for
    spec.inputs the input's place."""
    return f"{uid}.{index}"


def item_result_prefix(namespace: str, item: str) -> str:
    """Where the result of a warm pod's item (item_id) lives, from its id alone."""
    uid, _, index = item.partition(".")
    if not index:
        return f"{namespace}/{RESULTS}/{uid}/"
    return f"{namespace}/{RESULTS}/{uid}/items/{int(index):03d}/"


def upload_prefix(ref: MediaJobRef) -> str:
    """Where the HTTP API stores the upload made for a MediaJob: `<namespace>/uploads/<name>/`
    (the API names its MediaJobs by job id)."""
    return f"{ref.namespace}/{UPLOADS}/{ref.name}/"


def upload_input_key(namespace: str, job_id: str) -> str:
    """The object key of the file uploaded for the API's job `job_id`:
    `<namespace>/uploads/<job id>/input`, under the upload_prefix of its MediaJob."""
    return f"{namespace}/{UPLOADS}/{job_id}/{INPUT}"


def upload_item_key(namespace: str, mediajob: str, job_id: str) -> str:
    """The object key of one file of a batch request, whose MediaJob `mediajob` has one
    input per file: `<namespace>/uploads/<mediajob>/<job id>/input`, under the upload_prefix
    of that MediaJob (so its delete-input may delete it)."""
    return f"{namespace}/{UPLOADS}/{mediajob}/{job_id}/{INPUT}"


def cancel_item_annotation(index: int) -> str:
    """The annotation that cancels input `index` of a MediaJob with spec.inputs."""
    return f"{ANNOTATION_CANCEL_ITEM_PREFIX}{index}"


def cancelled_items(annotations: dict[str, str] | None) -> frozenset[int]:
    """The inputs a MediaJob's annotations cancel one by one (`cancel_item_annotation` set
    to "true"); anything else under the prefix is ignored."""
    found = set()
    for key, value in (annotations or {}).items():
        index = key.removeprefix(ANNOTATION_CANCEL_ITEM_PREFIX)
        if index != key and value == "true" and index.isdigit() and len(index) <= 3:
            found.add(int(index))
    return frozenset(found)


def upload_prefix_of_key(key: str) -> str | None:
    """The `<ns>/uploads/<id>/` prefix a key is under, or None for keys elsewhere."""
    parts = key.split("/", 3)
    if len(parts) < 4 or parts[1] != UPLOADS or not parts[2]:
        return None
    return "/".join(parts[:3]) + "/"


def upload_marker_key(key: str) -> str:
    """The marker that keeps `key` (an upload's object) from the sweep while it is stored."""
    prefix = upload_prefix_of_key(key)
    if prefix is None:
        raise ValueError(f"{key!r} is not under <namespace>/uploads/<id>/")
    return prefix + UPLOAD_MARKER


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


def download_filename(stem: str, content_type: str | None, rendition: str | None = None) -> str:
    """`stem` with the result's extension, safe inside a quoted Content-Disposition header;
    a rendition's file is `<stem>-<rendition>.<ext>`."""
    safe = _UNSAFE_FILENAME.sub("_", stem).strip(" .") or "result"
    suffix = f"-{rendition}" if rendition else ""
    return f"{safe[:100]}{suffix}.{EXTENSIONS.get(content_type or '', 'bin')}"
