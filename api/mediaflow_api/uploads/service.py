"""Receiving an upload: the multipart body is parsed as it arrives, each file is sniffed and
streamed to object storage, and one MediaJob per file is created at the end.

Order of checks, so that a bad request stores nothing:
1. the rate limit, the user's uploads in progress, the announced Content-Length and the
   user's active jobs (`quota`), before the body is read;
2. fields sent before a file and the active-job cap, when the file starts; the file's type
   (libmagic on its first bytes), before its first byte is stored; its size, while it streams;
3. every field (and combinations such as codec vp9 in mp4) once the body is complete, and the
   active-job cap again, counted afresh, just before the MediaJobs are created.
A failure at any point (including a client that sends nothing for the idle timeout) aborts
the upload in progress and deletes what this request stored and created: objects and
MediaJobs. While the request runs, a marker per file keeps the orphan sweep off its objects
(`markers`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, cast

import urllib3
from kubernetes import client as kube
from minio import Minio
from minio.error import S3Error
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header
from pydantic import BaseModel, Field

from mediaflow_api.jobs.model import (
    JobStatus,
    active_count,
    active_selectors,
    mediajob_body,
    new_job_id,
)
from mediaflow_api.problems import FieldError, Problem
from mediaflow_api.settings import ApiSettings
from mediaflow_api.uploads.forms import (
    InvalidFieldsError,
    MediaKind,
    UploadEndpoint,
    check_fields_so_far,
    mediajob_spec,
)
from mediaflow_api.uploads.markers import UploadMarkers
from mediaflow_api.uploads.quota import ActiveJobQuota
from mediaflow_api.uploads.sink import ObjectSink, StorageError, _S3Object, without_queries
from mediaflow_core.constants import GROUP, PLURAL, VERSION
from mediaflow_core.libmagic import mime_type_of_buffer
from mediaflow_core.media import UnsupportedMedia, classify
from mediaflow_core.naming import upload_input_key

logger = logging.getLogger(__name__)

# libmagic needs the first few KiB of every allowed format; more costs nothing here.
SNIFF_BYTES = 64 * 1024
MAX_TEXT_FIELDS = 32
MAX_TEXT_FIELD_BYTES = 4096
# Multipart framing per part (boundary + headers) is far below this.
FRAMING_ALLOWANCE = 64 * 1024
QUEUE_BYTES = 4 * 1024 * 1024  # between the request and the upload thread


class QueuedJob(BaseModel):
    """A job created from an upload."""

    job_id: str
    status: JobStatus = JobStatus.PENDING


class QueuedBatchJob(QueuedJob):
    filename: str = Field(description="The uploaded file's name, as sent.")


class QueuedBatch(BaseModel):
    jobs: list[QueuedBatchJob]
    total: int


def invalid_fields(errors: list[tuple[str | None, str]]) -> Problem:
    return Problem(
        422,
        "invalid-request",
        "Your request is not valid",
        "; ".join(f"{f}: {m}" if f else m for f, m in errors),
        errors=[FieldError(field=f, source="body", message=m) for f, m in errors],
    )


def too_large(limit: int) -> Problem:
    return Problem(
        413,
        "file-too-large",
        "File too large",
        f"Each file may be at most {limit} bytes ({limit / 1024**2:.0f} MiB).",
    )


def storage_unavailable() -> Problem:
    return Problem(
        503,
        "storage-unavailable",
        "Object storage is unavailable",
        "The file could not be stored; nothing was kept. Try again in a moment.",
        headers={"Retry-After": "5"},
    )


def multipart_boundary(content_type: str | None) -> str:
    """The boundary of a multipart/form-data body, or a 415 naming what to send."""
    kind, options = parse_options_header(content_type or "")
    if kind != "multipart/form-data" or not options.get("boundary"):
        raise Problem(
            415,
            "not-multipart",
            "Send the file as multipart/form-data",
            f"This endpoint takes a multipart/form-data body (e.g. curl -F file=@photo.jpg), "
            f"not {kind or 'a body without Content-Type'}.",
        )
    return options["boundary"]


def sniff(head: bytes, kind: MediaKind, filename: str) -> str:
    """The MIME type libmagic finds in `head`, or a 415 when the endpoint does not take it."""
    mime = mime_type_of_buffer(head)  # as the worker sniffs: both judge the bytes alike
    try:
        classify(mime, head, kind.value)
    except UnsupportedMedia as error:
        raise Problem(
            415, "unsupported-media-type", "Unsupported file type", f"{filename}: {error}"
        ) from None
    return "video/mp2t" if kind is MediaKind.VIDEO and mime == "application/octet-stream" else mime


@dataclass
class StoredFile:
    job_id: str
    key: str
    filename: str
    size: int


@dataclass
class _FilePart:
    """One file of the body: buffered until it can be sniffed, then streamed."""

    service: UploadService
    endpoint: UploadEndpoint
    markers: UploadMarkers
    job_id: str
    key: str
    filename: str
    size: int = 0
    head: bytearray = field(default_factory=bytearray)
    sink: ObjectSink | None = None

    async def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.service.settings.max_upload_bytes:
            raise too_large(self.service.settings.max_upload_bytes)
        if self.sink is not None:
            await self.sink.write(chunk)
            return
        self.head += chunk
        if len(self.head) >= SNIFF_BYTES:
            await self._start()

    async def _start(self) -> None:
        mime = sniff(bytes(self.head[:SNIFF_BYTES]), self.endpoint.kind, self.filename)
        await self.markers.add(self.key)  # before anything of it is stored
        self.sink = self.service.sink(self.key, mime)
        head, self.head = bytes(self.head), bytearray()
        await self.sink.write(head)

    async def end(self) -> StoredFile:
        if self.sink is None:
            if self.size == 0:
                raise InvalidFieldsError([(self.endpoint.file_field, f"{self.filename} is empty")])
            await self._start()
        await cast(ObjectSink, self.sink).finish()
        return StoredFile(self.job_id, self.key, self.filename, self.size)

    async def abort(self) -> None:
        if self.sink is not None:
            await self.sink.abort()


class UploadService:
    """Uploads of one API process: object storage and MediaJobs in the API's namespace."""

    def __init__(
        self,
        settings: ApiSettings,
        minio: Minio,
        s3_http: urllib3.PoolManager,
        api: kube.ApiClient,
    ) -> None:
        self.settings = settings
        self.minio = minio
        self.s3_http = s3_http
        self.custom = kube.CustomObjectsApi(api)
        self.namespace = settings.namespace

    def sink(self, key: str, content_type: str) -> ObjectSink:
        return ObjectSink(
            self.minio,
            self.s3_http,
            self.settings.s3_bucket,
            key,
            content_type,
            part_size=self.settings.upload_part_size_bytes,
            queue_bytes=QUEUE_BYTES,
        )

    def _object(self, key: str) -> _S3Object:
        return _S3Object(self.minio, self.s3_http, self.settings.s3_bucket, key)

    def markers(self) -> UploadMarkers:
        return UploadMarkers(
            lambda key: self._object(key).put(memoryview(b""), "application/octet-stream"),
            lambda key: self._object(key).remove(),
        )

    async def count_active_jobs(self, owner: str) -> int:
        """`owner`'s pending and processing jobs, without listing the finished ones (their
        MediaJobs are labelled by owner and phase; see `active_selectors`)."""
        active = 0
        for selector in active_selectors(owner):
            mediajobs = await asyncio.to_thread(
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                self.namespace,
                PLURAL,
                label_selector=selector,
            )
            active += active_count(mediajobs["items"])
        return active

    def input_key(self, job_id: str) -> str:
        # Under the namespace: the operator lets a MediaJob read only keys under it.
        return upload_input_key(self.namespace, job_id)

    def check_announced_length(self, endpoint: UploadEndpoint, length: str | None) -> None:
        """413 before reading when Content-Length already says the body is too large."""
        if length is None or not length.isdigit():
            return
        limit = endpoint.max_files * (self.settings.max_upload_bytes + FRAMING_ALLOWANCE)
        if int(length) > limit:
            raise too_large(self.settings.max_upload_bytes)

    async def receive(
        self,
        endpoint: UploadEndpoint,
        owner: str,
        content_type: str | None,
        body: Any,
        quota: ActiveJobQuota,
    ) -> list[StoredFile]:
        """Store the files of a multipart `body` (an async iterator of chunks) and create
        their MediaJobs within the owner's active-job `quota`; on any failure, nothing of
        this request remains."""
        boundary = multipart_boundary(content_type)
        stored: list[StoredFile] = []
        created: list[str] = []
        markers = self.markers()
        try:
            await quota.check_start()
            fields = await self._read_body(endpoint, boundary, body, stored, quota, markers)
            _require_files(endpoint, stored)
            async with quota.creating_jobs(len(stored)):
                await self._create_mediajobs(endpoint, owner, fields, stored, created)
        except InvalidFieldsError as error:
            await self._clean_up(stored, created)
            raise invalid_fields(error.errors) from None
        except (StorageError, S3Error, urllib3.exceptions.HTTPError) as error:
            # Never the error's URLs' queries: a presigned URL's signature is a credential.
            logger.warning("upload failed: object storage: %s", without_queries(repr(error)))
            await self._clean_up(stored, created)
            raise storage_unavailable() from None
        except BaseException:
            await self._clean_up(stored, created)
            raise
        finally:
            await markers.close()
        return stored

    async def _create_mediajobs(
        self,
        endpoint: UploadEndpoint,
        owner: str,
        fields: dict[str, str],
        stored: list[StoredFile],
        created: list[str],
    ) -> None:
        specs = [mediajob_spec(endpoint, fields, file.key) for file in stored]
        for file, spec in zip(stored, specs, strict=True):
            mediajob = mediajob_body(
                file.job_id,
                self.namespace,
                owner,
                file.filename,
                endpoint.job_type,
                spec,
                retention_seconds=self.settings.job_retention_seconds,
            )
            await asyncio.to_thread(self._create, mediajob)
            created.append(file.job_id)

    async def _read_body(
        self,
        endpoint: UploadEndpoint,
        boundary: str,
        body: Any,
        stored: list[StoredFile],
        quota: ActiveJobQuota,
        markers: UploadMarkers,
    ) -> dict[str, str]:
        """The text fields; each complete file is appended to `stored` as it ends."""
        fields: dict[str, str] = {}
        part: _FilePart | None = None
        text: tuple[str, bytearray] | None = None
        files = 0
        parser = PushMultipartParser(
            boundary,
            max_header_size=4096,
            max_header_count=8,
            max_segment_count=endpoint.max_files + MAX_TEXT_FIELDS,
        )
        try:
            async for chunk in body:
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        if event.filename is not None:
                            files += 1
                            quota.check_file(files)
                            part = self._start_file(endpoint, event, fields, files, markers)
                        else:
                            text = (self._text_name(endpoint, event, fields), bytearray())
                    elif event is None:
                        if part is not None:
                            stored.append(await part.end())
                            part = None
                        elif text is not None:
                            fields[text[0]] = _decode(text[0], text[1])
                            text = None
                    elif part is not None:
                        await part.feed(event)
                    elif text is not None:
                        _append_text(text, event)
            if not parser.closed:
                parser.close()
        except MultipartError as error:
            if part is not None:
                await part.abort()
            raise Problem(
                400,
                "malformed-body",
                "The request body is not valid multipart/form-data",
                f"The body could not be read ({error}); send it as multipart/form-data.",
            ) from None
        except BaseException:
            if part is not None:
                await part.abort()
            raise
        return fields

    def _start_file(
        self,
        endpoint: UploadEndpoint,
        segment: MultipartSegment,
        fields: dict[str, str],
        files: int,
        markers: UploadMarkers,
    ) -> _FilePart:
        if segment.name != endpoint.file_field:
            raise InvalidFieldsError(
                [(segment.name, f"unexpected file; send files as {endpoint.file_field!r}")]
            )
        if files > endpoint.max_files:
            raise InvalidFieldsError(
                [(endpoint.file_field, f"at most {endpoint.max_files} files per request")]
            )
        check_fields_so_far(endpoint, fields)
        job_id = new_job_id()
        filename = (segment.filename or "").strip()[:255] or "upload"
        return _FilePart(self, endpoint, markers, job_id, self.input_key(job_id), filename)

    def _text_name(
        self, endpoint: UploadEndpoint, segment: MultipartSegment, fields: dict[str, str]
    ) -> str:
        name = segment.name or ""
        if name == endpoint.file_field:
            raise InvalidFieldsError([(name, "must be a file (a part with a filename), not text")])
        if len(fields) >= MAX_TEXT_FIELDS:
            raise InvalidFieldsError([(name, f"more than {MAX_TEXT_FIELDS} form fields")])
        return name

    def _create(self, body: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    async def _clean_up(self, stored: list[StoredFile], created: list[str]) -> None:
        """Best effort, logged: delete this request's MediaJobs and objects (MediaJobs
        first: their finalizer would delete the input too)."""
        for job_id in created:
            try:
                await asyncio.to_thread(
                    self.custom.delete_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    job_id,
                )
            except Exception:
                logger.exception("could not delete MediaJob %s of a failed upload", job_id)
        for file in stored:
            try:
                await asyncio.to_thread(self.minio.remove_object, self.settings.s3_bucket, file.key)
            except Exception:
                logger.exception("could not delete %s of a failed upload", file.key)
        stored.clear()
        created.clear()


def _require_files(endpoint: UploadEndpoint, stored: list[StoredFile]) -> None:
    if not stored:
        raise InvalidFieldsError([(endpoint.file_field, "required: send the file to convert")])


def _append_text(text: tuple[str, bytearray], chunk: bytes) -> None:
    name, value = text
    value.extend(chunk)
    if len(value) > MAX_TEXT_FIELD_BYTES:
        raise InvalidFieldsError([(name, f"longer than {MAX_TEXT_FIELD_BYTES} bytes")])


def _decode(name: str, raw: bytearray) -> str:
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidFieldsError([(name, "is not UTF-8 text")]) from None
