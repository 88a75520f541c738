"""Receiving an upload: the multipart body is parsed as it arrives, each file is sniffed and
stored in object storage, and the MediaJob is created at the end: one per file, or for a batch
request one with an input per file (`ApiSettings.batch_as_one_mediajob`; jobs/model.py says
how each file keeps its own job).

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

Where the time of a batch of small photos goes (bench/upload_api.py --case photos --spans,
docs/api.md "Small files"): round trips to object storage and the API server, not parsing or
libmagic. So the round trips of a request overlap: a file that ends within its first
SNIFF_BYTES (a photo) is stored in the background (its marker, then the object, as one PUT)
while the parser reads on, up to STORE_CONCURRENCY at once; the MediaJobs are created up to
CREATE_CONCURRENCY at once; the markers go in one bulk delete. Larger files stream one at a
time, as before, so a request still holds one part buffer at most. Every blocking call runs
through the request's `BlockingCalls`, so the clean-up of a failed request first waits for
the calls already running: nothing one of them stores or creates can outlive the clean-up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import urllib3
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException
from minio import Minio
from minio.error import S3Error
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header
from pydantic import BaseModel, Field, ValidationError

from mediaflow_api.jobs import reads
from mediaflow_api.jobs.model import (
    JobStatus,
    active_count,
    active_selectors,
    batch_mediajob_body,
    mediajob_body,
    new_batch_name,
    new_job_id,
)
from mediaflow_api.metrics import storage_failed
from mediaflow_api.presets.service import PresetService
from mediaflow_api.problems import FieldError, Problem
from mediaflow_api.settings import ApiSettings
from mediaflow_api.uploads.forms import (
    PRESET_FIELD,
    InvalidFieldsError,
    MediaKind,
    UploadEndpoint,
    batch_spec,
    check_fields_so_far,
    mediajob_spec,
    named_preset,
    preset_misfit,
)
from mediaflow_api.uploads.markers import UploadMarkers
from mediaflow_api.uploads.quota import ActiveJobQuota
from mediaflow_api.uploads.sink import (
    ObjectSink,
    StorageError,
    _S3Object,
    remove_objects,
    without_queries,
)
from mediaflow_api.webhooks.keys import WebhookKeys
from mediaflow_core.constants import GROUP, PLURAL, VERSION
from mediaflow_core.libmagic import mime_type_of_buffer
from mediaflow_core.media import UnsupportedMedia, classify
from mediaflow_core.mediajob import PresetRef
from mediaflow_core.naming import upload_input_key, upload_item_key
from mediaflow_core.preset import preset_spec

logger = logging.getLogger(__name__)

# libmagic needs the first few KiB of every allowed format; more costs nothing here.
SNIFF_BYTES = 64 * 1024
MAX_TEXT_FIELDS = 32
MAX_TEXT_FIELD_BYTES = 4096
# Multipart framing per part (boundary + headers) is far below this.
FRAMING_ALLOWANCE = 64 * 1024
QUEUE_BYTES = 4 * 1024 * 1024  # between the request and the upload thread
# Small files of one request stored at once, and MediaJobs created at once (docs/api.md,
# "Small files"). A request holds at most its files' heads (<= 20 x SNIFF_BYTES) while they
# wait for a store.
STORE_CONCURRENCY = 8
CREATE_CONCURRENCY = 8


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


class BlockingCalls:
    """The blocking client calls (S3, Kubernetes) of one request, run in the process's
    upload I/O threads. `settle()` waits for every call that already runs: a thread cannot be
    stopped, and an object or MediaJob it made after the request's clean-up would be left
    behind. A call that has not started when its caller is cancelled never starts."""

    def __init__(self, executor: concurrent.futures.Executor) -> None:
        self._executor = executor
        self._futures: list[concurrent.futures.Future[Any]] = []

    async def __call__(self, function: Callable[..., Any], /, *args: Any) -> Any:
        future = self._executor.submit(function, *args)
        self._futures.append(future)
        return await asyncio.wrap_future(future)

    async def settle(self) -> None:
        running = [asyncio.wrap_future(f) for f in self._futures if not f.done()]
        if running:
            await asyncio.wait(running)


class _Stores:
    """The small files of one request being stored in the background, at most `limit` at
    once. After a failure no further store starts; `stop()` waits for the running ones."""

    def __init__(self, limit: int) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    def start(self, store: Callable[[], Awaitable[None]]) -> None:
        self.raise_failure()
        self._tasks.append(asyncio.create_task(self._run(store)))

    async def _run(self, store: Callable[[], Awaitable[None]]) -> None:
        async with self._slots:
            if self._stopped:
                return
            try:
                await store()
            except BaseException:
                self._stopped = True
                raise

    def raise_failure(self) -> None:
        """Raise the error of a store that already failed (the request fails early)."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise cast(BaseException, task.exception())

    async def wait(self) -> None:
        """Until every store ended; raises the first failure."""
        if self._tasks:
            await asyncio.wait(self._tasks)
        self.raise_failure()

    async def stop(self) -> None:
        self._stopped = True
        if self._tasks:
            await asyncio.wait(self._tasks)
        for task in self._tasks:  # retrieved: the request already fails for another reason
            if task.done() and not task.cancelled():
                task.exception()


@dataclass
class _Request:
    """What one upload request has in flight."""

    calls: BlockingCalls
    markers: UploadMarkers
    stores: _Stores
    # The name of the request's one MediaJob (a batch made as one), its files' keys under
    # its upload prefix; None: a MediaJob per file, named by its job id.
    batch: str | None = None


@dataclass
class StoredFile:
    job_id: str
    key: str
    filename: str
    size: int


@dataclass
class _FilePart:
    """One file of the body: buffered until it can be sniffed, then streamed; a file that
    ends before that is stored in one PUT, in the background."""

    service: UploadService
    endpoint: UploadEndpoint
    request: _Request
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
        await self.request.markers.add(self.key)  # before anything of it is stored
        self.sink = self.service.sink(self.key, mime)
        head, self.head = bytes(self.head), bytearray()
        await self.sink.write(head)

    async def end(self) -> StoredFile:
        if self.sink is None:
            if self.size == 0:
                raise InvalidFieldsError([(self.endpoint.file_field, f"{self.filename} is empty")])
            # The whole file is in `head`: sniffed now, stored while the parser reads on.
            mime = sniff(bytes(self.head), self.endpoint.kind, self.filename)
            data, self.head = bytes(self.head), bytearray()
            self.request.stores.start(lambda: self._store(mime, data))
        else:
            await cast(ObjectSink, self.sink).finish()
        return StoredFile(self.job_id, self.key, self.filename, self.size)

    async def _store(self, mime: str, data: bytes) -> None:
        await self.request.markers.add(self.key)  # before anything of it is stored
        await self.request.calls(self.service.object(self.key).put, memoryview(data), mime)

    async def abort(self) -> None:
        if self.sink is not None:
            await self.sink.abort()


def with_notify(spec: dict[str, Any], notify: dict[str, Any] | None) -> dict[str, Any]:
    return spec if notify is None else {**spec, "notify": notify}


class UploadService:
    """Uploads of one API process: object storage and MediaJobs in the API's namespace."""

    def __init__(
        self,
        settings: ApiSettings,
        minio: Minio,
        s3_http: urllib3.PoolManager,
        api: kube.ApiClient,
        executor: concurrent.futures.Executor,
        webhook_keys: WebhookKeys | None = None,
    ) -> None:
        self.settings = settings
        self.webhook_keys = webhook_keys
        self.minio = minio
        self.s3_http = s3_http
        self.api = api
        self.custom = kube.CustomObjectsApi(api)
        self.namespace = settings.namespace
        self.executor = executor  # the process's upload I/O threads (clients.py)

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

    def object(self, key: str) -> _S3Object:
        return _S3Object(self.minio, self.s3_http, self.settings.s3_bucket, key)

    def remove_objects(self, keys: list[str]) -> None:
        remove_objects(self.minio, self.settings.s3_bucket, keys)

    def markers(self, calls: BlockingCalls) -> UploadMarkers:
        return UploadMarkers(
            lambda key: self.object(key).put(memoryview(b""), "application/octet-stream"),
            self.remove_objects,
            run=calls,
        )

    async def count_active_jobs(self, owner: str) -> int:
        """`owner`'s pending and processing jobs, without listing the finished ones (their
        MediaJobs are labelled by owner and phase; see `active_selectors`)."""
        lists = await asyncio.gather(
            *(
                asyncio.to_thread(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    label_selector=selector,
                )
                for selector in active_selectors(owner)
            )
        )
        return sum(active_count(mediajobs["items"]) for mediajobs in lists)

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
        *,
        request_id: str | None = None,
    ) -> list[StoredFile]:
        """Store the files of a multipart `body` (an async iterator of chunks) and create
        their MediaJobs (annotated with `request_id`) within the owner's active-job `quota`;
        on any failure, nothing of this request remains."""
        boundary = multipart_boundary(content_type)
        stored: list[StoredFile] = []
        created: list[str] = []
        calls = BlockingCalls(self.executor)
        batch = new_batch_name() if endpoint.batch and self.settings.batch_as_one_mediajob else None
        request = _Request(calls, self.markers(calls), _Stores(STORE_CONCURRENCY), batch)
        try:
            await quota.check_start()
            fields = await self._read_body(endpoint, boundary, body, stored, quota, request)
            await request.stores.wait()
            _require_files(endpoint, stored)
            preset = await self.named_preset(endpoint, fields, calls)
            # A callback_url: the MediaJobs are announced, signed with the user's secret (made
            # on first use, before any MediaJob names it).
            notify = await self._notify(owner, fields, calls)
            async with quota.creating_jobs(len(stored)):
                if batch is None:
                    await self._create_mediajobs(
                        endpoint, owner, fields, stored, created, calls, request_id, preset,
                        notify,
                    )  # fmt: skip
                else:
                    await self._create_batch(
                        endpoint, owner, fields, stored, created, batch, calls, request_id,
                        preset, notify,
                    )  # fmt: skip
        except InvalidFieldsError as error:
            await self._clean_up(request, stored, created)
            raise invalid_fields(error.errors) from None
        except (StorageError, S3Error, urllib3.exceptions.HTTPError) as error:
            # Never the error's URLs' queries: a presigned URL's signature is a credential.
            logger.warning("upload failed: object storage: %s", without_queries(repr(error)))
            storage_failed()
            await self._clean_up(request, stored, created)
            raise storage_unavailable() from None
        except BaseException:
            await self._clean_up(request, stored, created)
            raise
        finally:
            await request.markers.close()
        return stored

    async def _create_mediajobs(
        self,
        endpoint: UploadEndpoint,
        owner: str,
        fields: dict[str, str],
        stored: list[StoredFile],
        created: list[str],
        calls: BlockingCalls,
        request_id: str | None,
        preset: PresetRef | None = None,
        notify: dict[str, Any] | None = None,
    ) -> None:
        """Create the MediaJobs, CREATE_CONCURRENCY at once. `created` lists every one tried
        (a create that failed may still have been made: a timeout), so the clean-up deletes
        them all; after a failure no further create starts, and the running ones end first."""
        specs = [
            with_notify(mediajob_spec(endpoint, fields, file.key, preset), notify)
            for file in stored
        ]
        bodies = [
            mediajob_body(
                file.job_id,
                self.namespace,
                owner,
                file.filename,
                endpoint.job_type,
                spec,
                retention_seconds=self.settings.job_retention_seconds,
                request_id=request_id,
            )
            for file, spec in zip(stored, specs, strict=True)
        ]
        slots = asyncio.Semaphore(CREATE_CONCURRENCY)
        failed = False

        async def create(body: dict[str, Any]) -> None:
            nonlocal failed
            async with slots:
                if failed:
                    return
                created.append(body["metadata"]["name"])
                try:
                    await calls(self._create, body)
                except BaseException:
                    failed = True
                    raise

        outcomes = await asyncio.gather(*(create(b) for b in bodies), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _create_batch(
        self,
        endpoint: UploadEndpoint,
        owner: str,
        fields: dict[str, str],
        stored: list[StoredFile],
        created: list[str],
        name: str,
        calls: BlockingCalls,
        request_id: str | None,
        preset: PresetRef | None = None,
        notify: dict[str, Any] | None = None,
    ) -> None:
        """Create the request's one MediaJob, an input per file in the order they came."""
        body = batch_mediajob_body(
            name,
            self.namespace,
            owner,
            [(file.job_id, file.filename) for file in stored],
            endpoint.job_type,
            with_notify(
                batch_spec(endpoint, fields, [file.key for file in stored], preset), notify
            ),
            retention_seconds=self.settings.job_retention_seconds,
            request_id=request_id,
        )
        created.append(name)  # before: a create that timed out may still have been made
        await calls(self._create, body)

    async def _read_body(
        self,
        endpoint: UploadEndpoint,
        boundary: str,
        body: Any,
        stored: list[StoredFile],
        quota: ActiveJobQuota,
        request: _Request,
    ) -> dict[str, str]:
        """The text fields; each complete file is appended to `stored` as it ends (a small
        one while it is still being stored: `request.stores`)."""
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
                            request.stores.raise_failure()
                            part = self._start_file(endpoint, event, fields, files, request)
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
        request: _Request,
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
        key = (
            self.input_key(job_id)
            if request.batch is None
            else upload_item_key(self.namespace, request.batch, job_id)
        )
        return _FilePart(self, endpoint, request, job_id, key, filename)

    def _text_name(
        self, endpoint: UploadEndpoint, segment: MultipartSegment, fields: dict[str, str]
    ) -> str:
        name = segment.name or ""
        if name == endpoint.file_field:
            raise InvalidFieldsError([(name, "must be a file (a part with a filename), not text")])
        if len(fields) >= MAX_TEXT_FIELDS:
            raise InvalidFieldsError([(name, f"more than {MAX_TEXT_FIELDS} form fields")])
        return name

    # Presets (issue 15).
    async def named_preset(
        self, endpoint: UploadEndpoint, fields: dict[str, str], calls: BlockingCalls
    ) -> PresetRef | None:
        """The preset the request names (`preset=<name>`, looked up as
        presets/service.py says), or None; InvalidFieldsError (a 422) when there is none of
        that name, or it does not fit the endpoint."""
        name = named_preset(endpoint, fields)
        if name is None:
            return None
        found = await calls(PresetService(self.api, self.namespace).find, name)
        if found is None:
            raise InvalidFieldsError([(PRESET_FIELD, f"no preset named {name!r}")])
        ref, body = found
        try:
            spec = preset_spec(body)
        except ValidationError:
            raise InvalidFieldsError(
                [(PRESET_FIELD, f"preset {name!r} ({ref.kind.value}) is invalid")]
            ) from None
        if misfit := preset_misfit(endpoint, name, spec):
            raise InvalidFieldsError([(PRESET_FIELD, misfit)])
        return ref

    async def _notify(
        self, owner: str, fields: dict[str, str], calls: BlockingCalls
    ) -> dict[str, Any] | None:
        """`spec.notify` for a request with a callback_url (the form has validated it): the
        URL and the user's key in the API's Secret of signing secrets, made on first use."""
        url = fields.get("callback_url")
        if not url or self.webhook_keys is None:
            return None
        await calls(self.webhook_keys.get, owner)
        return {"url": url, "secretRef": self.webhook_keys.secret_ref(owner)}

    def _create(self, body: dict[str, Any]) -> None:
        reads.created(
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body
            )
        )

    async def _clean_up(
        self, request: _Request, stored: list[StoredFile], created: list[str]
    ) -> None:
        """Best effort, logged: delete this request's MediaJobs and objects (MediaJobs
        first: their finalizer would delete the input too), once no call of the request
        runs any more."""
        await request.stores.stop()
        await request.calls.settle()
        for job_id in created:
            try:
                answer = await asyncio.to_thread(
                    self.custom.delete_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    job_id,
                )
                reads.wrote(job_id, answer)
            except ApiException as error:
                if error.status != 404:  # 404: tried, never made
                    logger.exception("could not delete MediaJob %s of a failed upload", job_id)
            except Exception:
                logger.exception("could not delete MediaJob %s of a failed upload", job_id)
        if stored:
            try:
                # One request for all; a file whose store never started is simply absent.
                await asyncio.to_thread(self.remove_objects, [file.key for file in stored])
            except Exception:
                storage_failed()
                logger.exception(
                    "could not delete the objects of a failed upload: %s",
                    [file.key for file in stored],
                )
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
