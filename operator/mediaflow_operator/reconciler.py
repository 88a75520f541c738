"""The reconciler: for one MediaJob, read what the watches show, let a pure decider
(deciders.py) say what comes next, and write that through the gateway.

Level-triggered, like a controller-runtime reconciler: it is called with a MediaJob's key
whenever the MediaJob, its Job or one of its pods changes (and when a scheduled wake-up is
due), and it decides from the current state only, never from which event woke it. So a missed
or repeated event, a crash between two writes or a restart all end in the same place.

The order of a MediaJob's writes:
1. accept: the Job, then its Secret of presigned URLs (owned by the Job), then the status
   (Accepted, Pending), then the finalizer and the phase label in one metadata patch;
2. follow: status from the pods and the Job: Pending (with what holds the pod), Running,
   then the outcome as soon as the worker container has terminated with its result message,
   not when the Job controller gets to it;
3. finish: once the outcome is recorded, the Job goes (its pods and Secret with it): the
   status holds everything users need;
4. expire: after spec.ttlSecondsAfterFinished the MediaJob is deleted;
5. finalize: a deleted MediaJob's Job and objects go, then its finalizer.

An input of a MediaJob with spec.inputs can be cancelled alone, whatever the MediaJob's
phase (`mediaflow.io/cancel-item-<index>`, see cancel_items): its files go first, then the
status says Cancelled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from mediaflow_core import constants as c
from mediaflow_core.mediajob import (
    ItemStatus,
    MediaJobResult,
    MediaJobSpec,
    MediaJobStatus,
    Phase,
    PresetKind,
    RenditionResult,
)
from mediaflow_core.naming import (
    MediaJobRef,
    cancel_item_annotation,
    cancelled_items,
    download_filename,
    item_id,
    item_result_key,
    item_result_prefix,
    job_name,
    rendition_key,
    result_key,
    result_prefix,
)
from mediaflow_core.preset import PresetError, resolve_preset
from mediaflow_core.session import SlotItem
from mediaflow_core.termination import WorkerResult
from mediaflow_operator import deciders
from mediaflow_operator.builders import (
    SpecError,
    build_job,
    build_url_secret,
    check_input,
    check_name,
    check_namespace,
    decide_input_deletion,
    owned_by,
    pod_resources,
    pod_url_ttl,
    rendition_count,
    request_id_of,
    url_secret_name,
    work_dir_bytes,
)
from mediaflow_operator.config import OperatorSettings
from mediaflow_operator.deciders import Transition
from mediaflow_operator.gateway import ConflictError, Gateway, GoneError
from mediaflow_operator.metrics import METRICS, Metrics, finish_record
from mediaflow_operator.observed import JobView, Key, PodView, Store
from mediaflow_operator.warm import Pool, owner_of, slot_url_ttl, warm_eligible

log = logging.getLogger(__name__)
# Object storage HEADs of a MediaJob's inputs, shared by the reconciler threads.
_SIZES = ThreadPoolExecutor(max_workers=8, thread_name_prefix="input-sizes")
CONFLICT_RETRY_SECONDS = 1.0  # a write lost a race: the watch brings the news, this is a net
# The pods' watch is a stream of its own: a finished Job can be seen before the terminated
# pod that made it finish. For this long the reconciler waits for the pod's last state
# before it decides from the Job alone (which would say ResultMissing for a success).
POD_NEWS_GRACE_SECONDS = 10.0
# For this long after the operator starts, its watches may not have listed every Job yet: a
# MediaJob that could go to a warm pod first asks whether a previous run made its own Job
# (a crash after creating it), which is then adopted instead.
STARTUP_LISTING_SECONDS = 30.0


@dataclass(frozen=True)
class Requeue:
    """Call again for this key after `seconds` (an expiry, a net under a lost race)."""

    seconds: float


def status_of(body: dict[str, Any]) -> MediaJobStatus:
    return MediaJobStatus.model_validate(body.get("status") or {})


def dump(status: MediaJobStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def metadata_patch(body: dict[str, Any]) -> dict[str, Any] | None:
    """What the MediaJob's metadata lacks: our finalizer (unless it is being deleted) and a
    phase label that says its status.phase (lists select by it: the API's job list). None
    when nothing is missing."""
    meta = body["metadata"]
    patch: dict[str, Any] = {}
    finalizers = list(meta.get("finalizers") or [])
    if c.FINALIZER not in finalizers and not meta.get("deletionTimestamp"):
        patch["finalizers"] = [*finalizers, c.FINALIZER]
    phase = (body.get("status") or {}).get("phase")
    if phase and (meta.get("labels") or {}).get(c.LABEL_PHASE) != phase:
        patch["labels"] = {c.LABEL_PHASE: phase}
    return patch or None


class Reconciler:
    def __init__(
        self,
        gateway: Gateway,
        store: Store,
        settings: OperatorSettings,
        clock: Any = None,
        pool: Pool | None = None,
        metrics: Metrics = METRICS,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.clock = clock or (lambda: datetime.now(UTC))
        self.pool = pool
        self.started = self.clock()
        # When each running MediaJob of many inputs last had its status written (the
        # writes are spaced by settings.items_status_interval_ms; follow_items).
        self.items_written: dict[Key, datetime] = {}
        # Told of every finished MediaJob (the completion webhooks' notifier.submit).
        self.on_finished: Callable[[Key, dict[str, Any]], None] | None = None

    # The entry point.

    def reconcile(self, key: Key) -> Requeue | None:
        body = self.store.mediajob(key)
        if body is None:
            return None
        try:
            if body["metadata"].get("deletionTimestamp"):
                return self.finalize(key, body)
            status = status_of(body)
            if status.phase in deciders.TERMINAL:
                if status.items is not None and status.phase is not Phase.CANCELLED:
                    body, status = self.cancel_finished_items(key, body, status)
                return self.after_finish(key, body, status)
            if (body["metadata"].get("annotations") or {}).get(c.ANNOTATION_CANCEL) == "true":
                return self.cancel(key, body, status)
            if not deciders.is_accepted(status):
                accepted = self.accept(key, body, status)
                if accepted is None:
                    return None
                body, status = accepted
                if status.phase in deciders.TERMINAL:
                    return None
            if status.items is not None:
                return self.follow_items(key, body, status)
            if status.session_slot is not None:
                return self.follow_warm(key, body, status)
            return self.follow(key, body, status)
        except ConflictError:
            return Requeue(CONFLICT_RETRY_SECONDS)
        except GoneError:
            return None

    # Writes.

    def write(self, key: Key, body: dict[str, Any], transition: Transition) -> dict[str, Any]:
        """Write a transition's status (conditioned on the body's resourceVersion), then what
        the metadata lacks, then its Event. Raises ConflictError when the MediaJob changed."""
        new = dump(transition.status)
        old = body.get("status") or {}
        if new != old:
            body = self.patch_status(body, transition.status)
        body = self.ensure_metadata(body)
        if transition.event is not None:
            event = transition.event
            self.gateway.post_event(body, type_=event.type, reason=event.reason,
                                    message=event.message)  # fmt: skip
        return body

    def patch_status(self, body: dict[str, Any], status: MediaJobStatus) -> dict[str, Any]:
        """Write the whole status (conditioned on the body's resourceVersion: ConflictError
        when the MediaJob changed) and store the result. The one write that finishes a
        MediaJob is recorded in the metrics (metrics.finish_record): once, since a second
        writer conflicts and a later pass finds it finished."""
        new, old = dump(status), body.get("status") or {}
        # A merge patch: what the new status no longer has is removed by a null.
        written = self.gateway.patch_mediajob_status(body, {**dict.fromkeys(old), **new})
        self.store.put_mediajob(written)
        record = finish_record(body, old, status)
        if record is not None:
            self.metrics.finished(record)
        return written

    def ensure_metadata(self, body: dict[str, Any]) -> dict[str, Any]:
        patch = metadata_patch(body)
        if patch is None:
            return body
        body = self.gateway.patch_mediajob_metadata(body, patch)
        self.store.put_mediajob(body)
        return body

    def now(self) -> datetime:
        return self.clock()

    # 1. Accept.

    def accept(
        self, key: Key, body: dict[str, Any], status: MediaJobStatus
    ) -> tuple[dict[str, Any], MediaJobStatus] | None:
        """Check the spec; make the Job and its Secret (or adopt the ones a previous run
        made); record Accepted. A MediaJob that can never run ends Failed here."""
        ref = MediaJobRef.from_body(body)
        generation = body["metadata"].get("generation")
        try:
            spec, status = self.check(ref, body, status)
            if spec.inputs is not None:
                if self.pool is None:
                    raise SpecError("InputsNotSupported", "this operator runs one input a pod")  # noqa: TRY301
                return self.accept_items(key, body, status, ref, spec)
            job = self.store.job(key)
            if job is None and self.pool is not None and warm_eligible(spec, self.settings):
                job = self.job_left_before_start(key, ref)
            if job is None and self.pool is not None and warm_eligible(spec, self.settings):
                placed = self.accept_warm(key, body, status, ref, spec)
                if placed is not None:
                    return placed
            if job is None or job.deleted:
                job = self.make_job(ref, spec, request_id_of(body))
            else:  # the watch brought it first: a previous run made it
                check_owner(job, ref)
                log.info("%s: Job %s exists; adopting it", key, job.name)
            check_owner(job, ref)
            if job.finished is None:
                self.give_urls(ref, job, spec)
        except SpecError as error:
            transition = deciders.refused(
                status, reason=error.reason, message=str(error), generation=generation,
                now=self.now(),
            )  # fmt: skip
            body = self.write(key, body, transition)
            return body, transition.status
        transition = deciders.accepted(
            status, job_name=job.name, generation=generation, now=self.now()
        )
        body = self.write(key, body, transition)
        return body, transition.status

    def check(
        self, ref: MediaJobRef, body: dict[str, Any], status: MediaJobStatus
    ) -> tuple[MediaJobSpec, MediaJobStatus]:
        """The spec as it runs (a named preset resolved) and the status recording the
        resolution; SpecError for a MediaJob that can never run."""
        settings = self.settings
        check_namespace(ref, settings.excluded_namespace_patterns)
        check_name(ref)
        try:
            spec = MediaJobSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            raise SpecError("InvalidSpec", str(error)) from error
        spec, status = self.resolve(ref, spec, status)
        check_input(ref, spec, self.gateway.bucket)
        pod_resources(spec, settings)  # raises SpecError beyond the limits
        return spec, status

    # Presets (issue 15).
    def resolve(
        self, ref: MediaJobRef, spec: MediaJobSpec, status: MediaJobStatus
    ) -> tuple[MediaJobSpec, MediaJobStatus]:
        """A MediaJob naming a preset: read it (a MediaPreset from the MediaJob's own
        namespace only) and record what it says in the status, which every later step reads
        instead of the preset (spec_of). PresetNotFound / PresetInvalid as SpecError."""
        if spec.preset is None:
            return spec, status
        kind = spec.preset.kind
        namespace = ref.namespace if kind is PresetKind.MEDIA_PRESET else None
        found = self.gateway.read_preset(kind.value, namespace, spec.preset.name)
        try:
            preset, resolved = resolve_preset(spec, ref.namespace, found)
        except PresetError as error:
            raise SpecError(error.reason, error.message) from error
        status = status.model_copy(update={"preset": preset, "resolved": resolved})
        return spec.with_resolution(resolved), status

    def spec_of(self, body: dict[str, Any]) -> MediaJobSpec:
        """An accepted MediaJob's spec as it runs: a named preset replaced by what the
        status recorded when it was accepted (never the preset as it is now)."""
        spec = MediaJobSpec.model_validate(body.get("spec") or {})
        return spec.with_resolution(status_of(body).resolved)

    def job_left_before_start(self, key: Key, ref: MediaJobRef) -> JobView | None:
        """Shortly after the start, the Job a previous run made for this MediaJob, which the
        watch may not have brought yet (then it is adopted, not left waiting for its URLs)."""
        if (self.now() - self.started).total_seconds() > STARTUP_LISTING_SECONDS:
            return None
        found = self.gateway.read_job(key.namespace, job_name(ref))
        if found is None:
            return None
        job = JobView.from_body(found)
        self.store.put_job(key, job)
        return job

    def accept_warm(
        self, key: Key, body: dict[str, Any], status: MediaJobStatus, ref: MediaJobRef,
        spec: MediaJobSpec,
    ) -> tuple[dict[str, Any], MediaJobStatus] | None:  # fmt: skip
        """Queue the MediaJob in a warm pod of its owner (warm.py); None when none takes it
        (the bounds), and it gets a Job of its own."""
        assert self.pool is not None  # noqa: S101
        # InputNotFound, InputTooLarge: before any pod is involved
        if not self.fits_warm(spec, self.input_size(spec)):
            return None  # its renditions need more scratch space than a warm item has
        reserved = self.pool.reserve(owner_of(body), key, ref.uid)
        if reserved is None:
            return None
        job, slot = reserved
        transition = deciders.accepted_warm(
            status, job_name=job, slot=slot, generation=body["metadata"].get("generation"),
            now=self.now(),
        )  # fmt: skip
        try:
            item = self.slot_item(ref, spec, request_id=request_id_of(body))
            body = self.patch_status(body, transition.status)
        except BaseException:
            # The pod reads its slots in order: a reserved slot is always written (empty,
            # when the MediaJob does not say it is there).
            self.pool.release(ref.namespace, job, ref.uid)
            self.pool.write_slot(ref.namespace, job, slot, None)
            raise
        self.pool.write_slot(ref.namespace, job, slot, item)
        body = self.write(key, body, transition)  # the metadata and the Event
        log.info("%s: queued in warm pod Job %s, slot %d", key, job, slot)
        return body, transition.status

    def slot_item(
        self,
        ref: MediaJobRef,
        spec: MediaJobSpec,
        index: int | None = None,
        request_id: str | None = None,
    ) -> SlotItem:
        """What a warm pod needs for one MediaJob (or one of its spec.inputs): its presigned
        URLs and options."""
        ttl = slot_url_ttl(self.settings)
        source = spec.items[index or 0]
        options = spec.options
        output = result_key(ref) if index is None else item_result_key(ref, index)
        renditions = {
            r.name: self.gateway.pod_put_url(rendition_key(ref, r.name, index), ttl)
            for r in spec.renditions or ()
        }
        return SlotItem(
            id=ref.uid if index is None else item_id(ref.uid, index),
            operation=spec.operation.value,
            options=options.model_dump_json(by_alias=True, exclude_none=True) if options else "{}",
            input_url=self.gateway.pod_get_url(source.object.key, ttl)
            if source.object
            else str(source.url),
            output_url="" if renditions else self.gateway.pod_put_url(output, ttl),
            input_public_only=source.url is not None and not self.settings.allow_private_url_inputs,
            output_urls=renditions or None,
            request_id=request_id,
        )

    def input_size(self, spec: MediaJobSpec, index: int = 0) -> int | None:
        """The input object's size (None for a URL input); SpecError when it is missing or
        over the limit."""
        input_size = None
        source = spec.items[index]
        if source.object is not None:
            input_size = self.gateway.object_size(source.object.key)
            if input_size is None:
                raise SpecError(
                    "InputNotFound", f"input object {source.object.key!r} does not exist"
                )
            if input_size > self.settings.max_input_bytes:
                raise SpecError(
                    "InputTooLarge",
                    f"input is {input_size} bytes; the largest accepted is "
                    f"{self.settings.max_input_bytes}",
                )
        return input_size

    def fits_warm(self, spec: MediaJobSpec, input_size: int | None) -> bool:
        """Does one input's work fit the scratch space a warm pod has per item (sized for
        the largest input and one output)? Only renditions of a large input do not."""
        need = work_dir_bytes(input_size, self.settings, rendition_count(spec))
        return need <= work_dir_bytes(None, self.settings)

    def make_job(
        self, ref: MediaJobRef, spec: MediaJobSpec, request_id: str | None = None
    ) -> JobView:
        """Create the Job, or adopt the one of that name a previous run made for this
        MediaJob (a crash after creating it)."""
        input_size = self.input_size(spec)
        manifest = build_job(ref, spec, self.settings, input_size=input_size, request_id=request_id)
        try:
            created = self.gateway.create_job(manifest)
        except ConflictError:
            created = self.gateway.read_job(ref.namespace, job_name(ref))
            if created is None:  # deleted in between: the next pass makes it
                raise
            log.info("%s/%s: Job %s exists; adopting it", ref.namespace, ref.name, job_name(ref))
        job = JobView.from_body(created)
        check_owner(job, ref)
        self.store.put_job(Key(ref.namespace, ref.name), job)
        return job

    def give_urls(self, ref: MediaJobRef, job: JobView, spec: MediaJobSpec) -> None:
        """The Job's Secret of presigned URLs, owned by the Job; the one a previous run made
        for this Job is kept. One that is not the Job's is never mounted: the Job goes."""
        ttl = pod_url_ttl(pod_resources(spec, self.settings).deadline_seconds)
        source = spec.input.object
        # The spec has exactly one of input.object and input.url.
        input_url = self.gateway.pod_get_url(source.key, ttl) if source else str(spec.input.url)
        renditions = {
            r.name: self.gateway.pod_put_url(rendition_key(ref, r.name), ttl)
            for r in spec.renditions or ()
        }
        output_url = "" if renditions else self.gateway.pod_put_url(result_key(ref), ttl)
        job_body = {"metadata": {"name": job.name, "uid": job.uid}}
        secret = build_url_secret(
            ref, job_body, input_url=input_url, output_url=output_url, rendition_urls=renditions
        )
        try:
            self.gateway.create_secret(secret)
        except ConflictError:
            found = self.gateway.read_secret(ref.namespace, url_secret_name(ref))
        else:
            return
        if found is not None and owned_by(found, job.uid):
            return
        # Its URLs (someone else's input or output) must never reach this MediaJob's pod,
        # which would mount it: the Job goes before its pod starts.
        self.gateway.delete_job(ref.namespace, job.name)
        self.store.clear_owned(Key(ref.namespace, ref.name))
        raise SpecError(
            "SecretConflict",
            f"Secret {url_secret_name(ref)}, the name of this MediaJob's Job's Secret, "
            "exists and does not belong to its Job; the Job was deleted",
        )

    # 2. Follow.

    def follow(self, key: Key, body: dict[str, Any], status: MediaJobStatus) -> Requeue | None:
        job = self.store.job(key)
        if job is None:
            # Never seen by the watch (it may not have delivered it yet after a restart, or
            # the Job went while the operator was down): ask once.
            found = self.gateway.read_job(key.namespace, status.job_name or "")
            if found is None:
                job = JobView(name=status.job_name or "", uid="", owner_uids=(), deleted=True)
            else:
                job = JobView.from_body(found)
                self.store.put_job(key, job)
        pods = self.store.pods(key)
        if self.pod_news_pending(job, pods):
            return Requeue(1.0)
        transition = deciders.followed(
            status,
            job=job,
            pods=pods,
            generation=body["metadata"].get("generation"),
            now=self.now(),
        )
        if transition is None:
            return None
        transition = self.with_result_url(MediaJobRef.from_body(body), transition)
        body = self.write(key, body, transition)
        if transition.finished:
            # The pods of its Job beyond the first ran it again (after a transient failure
            # or a disruption): counted once, with the write that finished it.
            operation = str((body.get("spec") or {}).get("operation") or "Unknown")
            self.metrics.retried(key.namespace, operation, len(pods) - 1)
            return self.after_finish(key, body, transition.status)
        return None

    # Many inputs (spec.inputs): every input is an item of a warm pod.

    def accept_items(
        self, key: Key, body: dict[str, Any], status: MediaJobStatus, ref: MediaJobRef,
        spec: MediaJobSpec,
    ) -> tuple[dict[str, Any], MediaJobStatus]:  # fmt: skip
        """Place every input in a pod (a missing or too large one fails alone, now); record
        the items in the status, then write their slots."""
        assert self.pool is not None  # noqa: S101
        items: list[ItemStatus] = []
        cancelled = cancelled_items(body["metadata"].get("annotations"))
        # The inputs' sizes (a HEAD each) side by side: serially, 20 files' HEADs were most of
        # the time from a batch's MediaJob to its first slot.
        sizes = {
            index: _SIZES.submit(self.input_size, spec, index)
            for index in range(len(spec.items))
            if index not in cancelled
        }
        for index in range(len(spec.items)):
            if index in cancelled:  # cancelled before it was placed: never is
                items.append(deciders.item_cancelled(ItemStatus(index=index, phase=Phase.PENDING)))
                continue
            try:
                size = sizes[index].result()
                if not self.fits_warm(spec, size):
                    raise SpecError(  # noqa: TRY301
                        "InputTooLarge",
                        f"input is {size} bytes: too large for {rendition_count(spec)} "
                        "renditions in a pod that converts many inputs; give it a MediaJob "
                        "of its own (input instead of inputs)",
                    )
            except SpecError as error:
                items.append(ItemStatus(index=index, phase=Phase.FAILED, reason=error.reason,
                                        message=str(error)[:1024]))  # fmt: skip
            else:
                items.append(ItemStatus(index=index, phase=Phase.PENDING))
        waiting = [i.index for i in items if i.phase is Phase.PENDING]
        placed = self.place(key, body, ref, spec, waiting)
        items = [
            i.model_copy(
                update={"job_name": placed[i.index][0], "session_slot": placed[i.index][1]}
            )
            if i.index in placed
            else i
            for i in items
        ]
        gone = [i.index for i in items if i.phase is Phase.CANCELLED]
        self.delete_item_files(body, ref, items, gone)
        transition = deciders.accepted_items(
            status, items, generation=body["metadata"].get("generation"), now=self.now()
        )
        body = self.write_then_slots(key, body, ref, spec, transition, placed)
        self.tell_items_cancelled(body, gone)
        return body, transition.status

    def place(
        self, key: Key, body: dict[str, Any], ref: MediaJobRef, spec: MediaJobSpec,
        indexes: list[int],
    ) -> dict[int, tuple[str, int]]:  # fmt: skip
        """Slots for these inputs, all in one pod (warm.Pool.reserve_many)."""
        if not indexes or self.pool is None:
            return {}
        resources = pod_resources(spec, self.settings) if spec.resources is not None else None
        slots = self.pool.reserve_many(
            owner_of(body), key, [item_id(ref.uid, i) for i in indexes], resources
        )
        return dict(zip(indexes, slots, strict=True))

    def write_then_slots(
        self, key: Key, body: dict[str, Any], ref: MediaJobRef, spec: MediaJobSpec,
        transition: Transition, placed: dict[int, tuple[str, int]],
    ) -> dict[str, Any]:  # fmt: skip
        """Write the status that says where the items are, then their slots (every slot
        reserved is written: empty when the status could not be)."""
        assert self.pool is not None  # noqa: S101
        try:
            request = request_id_of(body)
            slot_items = {i: self.slot_item(ref, spec, i, request_id=request) for i in placed}
            body = self.patch_status(body, transition.status)
        except BaseException:
            for index, (job, slot) in placed.items():
                self.pool.release(ref.namespace, job, item_id(ref.uid, index))
                self.pool.write_slot(ref.namespace, job, slot, None)
            raise
        for index, (job, slot) in placed.items():
            self.pool.write_slot(ref.namespace, job, slot, slot_items[index])
        return self.write(key, body, transition)

    def follow_items(
        self, key: Key, body: dict[str, Any], status: MediaJobStatus
    ) -> Requeue | None:
        """Each unfinished input: settled by its pod's outcome; placed in a pod again when
        its pod ended without one; the MediaJob's status from its items'."""
        assert self.pool is not None  # noqa: S101
        ref = MediaJobRef.from_body(body)
        wait = self.items_write_wait(key, body, ref, status)
        if wait > 0:
            return Requeue(wait)
        spec = self.spec_of(body)
        items, gone = self.cancel_items(body, ref, list(status.items or []))
        retry: dict[int, str] = {}
        for n, item in enumerate(items):
            if item.phase in deciders.TERMINAL or not item.job_name:
                continue
            uid = item_id(ref.uid, item.index)
            state = self.session_state(key.namespace, item.job_name)
            if state is not None:
                self.pool.expect(key.namespace, item.job_name, uid, key)
            outcome = self.pool.outcome(key.namespace, item.job_name, uid)
            if outcome is not None:
                decided = deciders.warm_outcome(outcome)
                if decided is None:
                    message = (outcome.failure or {}).get("message") or "no valid result"
                    retry[n] = f"its pod failed on it ({message})"
                    continue
                result, renditions = None, None
                if decided.result is not None:
                    result, renditions = self.signed_results(
                        ref, decided.result, f"{ref.name}-{item.index}", item.index
                    )
                items[n] = deciders.item_settled(item, decided, result, renditions)
                self.pool.settled(key.namespace, item.job_name, uid)
            elif state != "live":
                retry[n] = "its pod ended before converting it"
            elif item.phase is Phase.PENDING and self.pool.has_started(
                key.namespace, item.job_name, uid
            ):
                items[n] = item.model_copy(update={"phase": Phase.RUNNING})
        placed: dict[int, tuple[str, int]] = {}
        if retry:
            for n in retry:
                self.pool.settled(
                    key.namespace, items[n].job_name or "", item_id(ref.uid, items[n].index)
                )
            again = [items[n].index for n in retry if items[n].attempts < deciders.ITEM_ATTEMPTS]
            placed = self.place(key, body, ref, spec, again)
            self.metrics.retried(key.namespace, spec.operation.value, len(again))
            for n, why in retry.items():
                items[n] = deciders.item_retried(items[n], why, placed.get(items[n].index))
        transition = deciders.items_progress(
            status, items, generation=body["metadata"].get("generation"), now=self.now()
        )
        if transition is None:
            return None
        body = self.write_then_slots(key, body, ref, spec, transition, placed)
        self.tell_items_cancelled(body, gone)
        if transition.finished:
            self.items_written.pop(key, None)
            return self.after_finish(key, body, transition.status)
        self.items_written[key] = self.now()
        return None

    def items_write_wait(
        self, key: Key, body: dict[str, Any], ref: MediaJobRef, status: MediaJobStatus
    ) -> float:
        """Seconds before the next status write of this MediaJob of many inputs is due
        (deciders.items_write_wait); nothing here changes any state. Urgent: an input to
        cancel, or every unfinished input's outcome at hand (the write finishes it)."""
        assert self.pool is not None  # noqa: S101
        wanted = cancelled_items(body["metadata"].get("annotations"))
        items = status.items or []
        urgent = any(i.index in wanted and i.phase is not Phase.CANCELLED for i in items) or all(
            i.phase in deciders.TERMINAL
            or (
                i.job_name is not None
                and self.pool.outcome(key.namespace, i.job_name, item_id(ref.uid, i.index))
                is not None
            )
            for i in items
        )
        return deciders.items_write_wait(
            self.items_written.get(key), self.now(),
            self.settings.items_status_interval_ms / 1000, urgent=urgent,
        )  # fmt: skip

    def session_state(self, namespace: str, job: str) -> str | None:
        """A warm pod's state as the pool knows it; one it does not know is read once (a
        restart) and followed from then on. None: it is gone."""
        assert self.pool is not None  # noqa: S101
        state = self.pool.state(namespace, job)
        if state is None:
            found = self.gateway.read_job(namespace, job)
            if found is not None:
                self.pool.job_seen(found, deleted=False)
                state = self.pool.state(namespace, job)
        return state

    def leave_items(self, ref: MediaJobRef, status: MediaJobStatus) -> None:
        """A cancelled or deleted MediaJob's unfinished inputs leave their pods' mailboxes."""
        for item in status.items or []:
            self.leave_item(ref, item)

    def cancel_items(
        self, body: dict[str, Any], ref: MediaJobRef, items: list[ItemStatus]
    ) -> tuple[list[ItemStatus], list[int]]:
        """The inputs cancelled alone (`mediaflow.io/cancel-item-<index>`) that the status
        does not say Cancelled yet: out of their pod's mailbox if it has not started them (a
        result it still makes is deleted when its log reports it), their result and own
        upload deleted, then Cancelled. The files go before the status is written, so a
        crash or a lost race in between does it all again. Returns the items and the indexes
        newly cancelled. (An index beyond the inputs names no item: ignored.)"""
        wanted = cancelled_items(body["metadata"].get("annotations"))
        fresh = [
            n for n, i in enumerate(items) if i.index in wanted and i.phase is not Phase.CANCELLED
        ]
        if not fresh:
            return items, []
        for n in fresh:
            self.leave_item(ref, items[n])
        gone = [items[n].index for n in fresh]
        self.delete_item_files(body, ref, items, gone)
        items = list(items)
        for n in fresh:
            items[n] = deciders.item_cancelled(items[n])
        return items, gone

    def leave_item(self, ref: MediaJobRef, item: ItemStatus) -> None:
        """An unfinished input leaves its warm pod: its slot is rewritten empty if the pod
        has not started it, and its result is unwanted (deleted when reported)."""
        if self.pool is None or item.phase in deciders.TERMINAL or not item.job_name:
            return
        # After a restart the pool learns of the pod here, so that it knows the item is
        # unwanted when the pod's log reports it.
        self.session_state(ref.namespace, item.job_name)
        if (
            self.pool.release(ref.namespace, item.job_name, item_id(ref.uid, item.index))
            and item.session_slot is not None
        ):
            self.pool.write_slot(ref.namespace, item.job_name, item.session_slot, None)

    def delete_item_files(
        self, body: dict[str, Any], ref: MediaJobRef, items: list[ItemStatus], gone: list[int]
    ) -> None:
        """The results of the inputs `gone`, and their inputs where delete-input allows it
        and no other input that goes on names the same object."""
        for index in gone:
            self.gateway.delete_prefix(item_result_prefix(ref.namespace, item_id(ref.uid, index)))
        if gone:
            going_on = [
                i.index for i in items if i.index not in gone and i.phase is not Phase.CANCELLED
            ]
            self.delete_own_input(body, indexes=gone, keep=going_on)

    def tell_items_cancelled(self, body: dict[str, Any], gone: list[int]) -> None:
        """One Event per input cancelled alone (an InputKept Warning says when delete-input
        could not delete its input)."""
        annotations = body["metadata"].get("annotations") or {}
        files = (
            "its result and its input (an upload made for it) are deleted"
            if annotations.get(c.ANNOTATION_DELETE_INPUT) == "true"
            else "its result is deleted"
        )
        for index in gone:
            self.gateway.post_event(
                body, type_="Normal", reason="ItemCancelled",
                message=f"input {index} cancelled on request ({cancel_item_annotation(index)}); "
                f"{files}; the other inputs go on",
            )  # fmt: skip

    def cancel_finished_items(
        self, key: Key, body: dict[str, Any], status: MediaJobStatus
    ) -> tuple[dict[str, Any], MediaJobStatus]:
        """A finished MediaJob's inputs cancelled afterwards: their files go and their items
        say Cancelled; the MediaJob keeps its phase (items_progress)."""
        ref = MediaJobRef.from_body(body)
        items, gone = self.cancel_items(body, ref, list(status.items or []))
        if not gone:
            return body, status
        transition = deciders.items_progress(
            status, items, generation=body["metadata"].get("generation"), now=self.now()
        )
        if transition is None:
            return body, status
        body = self.write(key, body, transition)
        self.tell_items_cancelled(body, gone)
        return body, transition.status

    def follow_warm(self, key: Key, body: dict[str, Any], status: MediaJobStatus) -> Requeue | None:
        """A MediaJob queued in a warm pod: settled by the outcome its pod's log reports;
        given a Job of its own when the pod ended without one."""
        ref = MediaJobRef.from_body(body)
        job, generation = status.job_name or "", body["metadata"].get("generation")
        pool = self.pool
        state = pool.state(key.namespace, job) if pool is not None else None
        if pool is not None and state is None:
            found = self.gateway.read_job(key.namespace, job)
            if found is not None:
                pool.job_seen(found, deleted=False)
                state = pool.state(key.namespace, job)
        if pool is None or state is None:
            return self.redispatch(key, body, status, "its warm pod is gone")
        pool.expect(key.namespace, job, ref.uid, key)
        outcome = pool.outcome(key.namespace, job, ref.uid)
        if outcome is not None:
            decided = deciders.warm_outcome(outcome)
            if decided is None:
                message = (outcome.failure or {}).get("message") or "no valid result"
                return self.redispatch(key, body, status, f"its warm pod failed on it ({message})")
            started = deciders.parse_time(status.start_time) or self.now()
            transition = deciders.finished(
                status, decided, started=started, generation=generation, now=self.now()
            )
            transition = self.with_result_url(ref, transition)
            body = self.write(key, body, transition)
            pool.settled(key.namespace, job, ref.uid)
            return self.after_finish(key, body, transition.status)
        if state == "ended":
            return self.redispatch(key, body, status, "its warm pod ended before converting it")
        if pool.has_started(key.namespace, job, ref.uid):
            running = deciders.warm_started(status, generation=generation, now=self.now())
            if running is not None:
                self.write(key, body, running)
        return None

    def redispatch(
        self, key: Key, body: dict[str, Any], status: MediaJobStatus, why: str
    ) -> Requeue | None:
        """Run a MediaJob its warm pod did not settle in a Job of its own."""
        ref = MediaJobRef.from_body(body)
        if self.pool is not None and status.job_name:
            self.pool.settled(key.namespace, status.job_name, ref.uid)
        log.info("%s: %s; giving it a Job of its own", key, why)
        try:
            spec = self.spec_of(body)
            job = self.make_job(ref, spec, request_id_of(body))
            if job.finished is None:
                self.give_urls(ref, job, spec)
        except SpecError as error:
            transition = deciders.refused(
                status, reason=error.reason, message=str(error),
                generation=body["metadata"].get("generation"), now=self.now(),
            )  # fmt: skip
            self.write(key, body, transition)
            return None
        transition = deciders.redispatched(
            status, job_name=job.name, why=why, generation=body["metadata"].get("generation"),
            now=self.now(),
        )  # fmt: skip
        self.write(key, body, transition)
        self.metrics.retried(key.namespace, spec.operation.value)
        return None

    def with_result_url(self, ref: MediaJobRef, transition: Transition) -> Transition:
        if transition.result is None:
            return transition
        result, renditions = self.signed_results(ref, transition.result, ref.name)
        status = transition.status.model_copy(update={"result": result, "renditions": renditions})
        return Transition(status, transition.event)

    def signed_results(
        self, ref: MediaJobRef, reported: WorkerResult, stem: str, index: int | None = None
    ) -> tuple[MediaJobResult, list[RenditionResult] | None]:
        """The result a worker reported (of the MediaJob, or of input `index`), where it is,
        with a fresh download URL; with renditions, each one's, and the first as the result."""
        bucket = self.gateway.bucket
        if reported.renditions:
            renditions = []
            for output in reported.renditions:
                key = rendition_key(ref, output.name, index)
                filename = download_filename(stem, output.content_type, output.name)
                url, expires_at = self.gateway.result_url(key, filename)
                renditions.append(
                    deciders.rendition_result(
                        output, bucket=bucket, key=key, url=url, url_expires_at=expires_at
                    )
                )
            return deciders.first_result(renditions), renditions
        key = result_key(ref) if index is None else item_result_key(ref, index)
        url, expires_at = self.gateway.result_url(
            key, download_filename(stem, reported.content_type)
        )
        status = deciders.with_result(
            MediaJobStatus(), reported, bucket=bucket, key=key, url=url, url_expires_at=expires_at
        )
        assert status.result is not None  # noqa: S101
        return status.result, None

    def pod_news_pending(self, job: JobView, pods: tuple[PodView, ...]) -> bool:
        """Has the Job finished just now while no pod of it has been seen ending? (A deadline
        says all there is to say without the pods.)"""
        if (
            job.finished is None
            or job.finished_reason == "DeadlineExceeded"
            or any(p.terminated for p in pods)
        ):
            return False
        finished_at = deciders.parse_time(job.finished_at)
        return (
            finished_at is not None
            and (self.now() - finished_at).total_seconds() < POD_NEWS_GRACE_SECONDS
        )

    # 3./4. Finish and expire.

    def after_finish(
        self, key: Key, body: dict[str, Any], status: MediaJobStatus
    ) -> Requeue | None:
        """A finished MediaJob: its Job goes (also after a crash between the status and the
        delete); after its TTL, the MediaJob goes."""
        body = self.ensure_metadata(body)
        if self.on_finished is not None:
            self.on_finished(key, body)
        job = self.store.job(key)
        if job is not None and not job.deleted and owned_by_view(job, body["metadata"]["uid"]):
            self.gateway.delete_job(key.namespace, job.name)
            self.store.clear_owned(key)
        remaining = deciders.expires_in(
            status, (body.get("spec") or {}).get("ttlSecondsAfterFinished"), self.now()
        )
        if remaining is None:
            return None
        if remaining > 0:
            return Requeue(remaining)
        log.info("%s: ttlSecondsAfterFinished passed; deleting", key)
        self.gateway.delete_mediajob(key.namespace, key.name, body["metadata"]["uid"])
        return None

    def cancel(self, key: Key, body: dict[str, Any], status: MediaJobStatus) -> None:
        """`mediaflow.io/cancel: "true"` stops a pending or running MediaJob for good."""
        ref = MediaJobRef.from_body(body)
        transition = deciders.cancelled(
            status, generation=body["metadata"].get("generation"), now=self.now()
        )
        body = self.write(key, body, transition)
        if status.items is not None:
            self.leave_items(ref, status)
        elif status.session_slot is not None:
            self.leave_warm_pod(ref, status)
        else:
            self.gateway.delete_job(key.namespace, status.job_name or job_name(ref))
            self.store.clear_owned(key)
        self.gateway.delete_prefix(result_prefix(ref))
        # An upload made for this MediaJob alone is of no further use: cancelled is final.
        self.delete_own_input(body)

    # 5. Finalize.

    def finalize(self, key: Key, body: dict[str, Any]) -> Requeue | None:
        """A deleted MediaJob: its Job (and so its pods) and its objects go, then our
        finalizer, which lets the deletion complete."""
        self.items_written.pop(key, None)
        finalizers = list(body["metadata"].get("finalizers") or [])
        if c.FINALIZER not in finalizers:
            return None
        ref = MediaJobRef.from_body(body)
        job = self.store.job(key)
        status = status_of(body)
        if status.items is not None:
            if status.phase not in deciders.TERMINAL:
                self.leave_items(ref, status)
        elif status.session_slot is not None:
            if status.phase not in deciders.TERMINAL:
                self.leave_warm_pod(ref, status)
        elif (job is not None and not job.deleted) or status.phase not in deciders.TERMINAL:
            self.gateway.delete_job(key.namespace, job.name if job else job_name(ref))
        removed = self.gateway.delete_prefix(result_prefix(ref))
        removed += self.delete_own_input(body)
        log.info("%s: deleted; its Job and %d objects removed", key, removed)
        remaining = [f for f in finalizers if f != c.FINALIZER]
        updated = self.gateway.patch_mediajob_metadata(body, {"finalizers": remaining or None})
        self.store.put_mediajob(updated)
        return None

    def leave_warm_pod(self, ref: MediaJobRef, status: MediaJobStatus) -> None:
        """A cancelled or deleted MediaJob's item: revoked from its warm pod's mailbox if the
        pod has not started it (its slot rewritten empty); a result it still makes is
        deleted when its log reports it."""
        if self.pool is None or status.job_name is None or status.session_slot is None:
            return
        if self.pool.release(ref.namespace, status.job_name, ref.uid):
            self.pool.write_slot(ref.namespace, status.job_name, status.session_slot, None)

    def delete_own_input(
        self, body: dict[str, Any], indexes: Sequence[int] | None = None, keep: Sequence[int] = ()
    ) -> int:
        """Delete the input objects (spec.input, or those of spec.inputs: all, or `indexes`)
        when the MediaJob asks (`mediaflow.io/delete-input`) and owns them
        (builders.decide_input_deletion), in one request; an input also named by an input of
        `keep` stays. A refusal keeps the object and says why (one Event). Returns how many
        were deleted."""
        spec = body.get("spec") or {}
        sources = [spec["input"]] if spec.get("input") else list(spec.get("inputs") or [])
        chosen = range(len(sources)) if indexes is None else indexes
        kept_keys = {object_key(sources[i]) for i in keep if i < len(sources)}
        ref = MediaJobRef.from_body(body)
        annotations = dict(body["metadata"].get("annotations") or {})
        allowed: list[str] = []
        refused = []
        for index in chosen:
            if index >= len(sources):
                continue
            source = dict((sources[index] or {}).get("object") or {})
            decision = decide_input_deletion(ref, annotations, source, self.gateway.bucket)
            if decision is None or decision.key in kept_keys:
                continue
            if decision.allowed:
                allowed.append(decision.key)
            else:
                refused.append(decision)
        if refused:
            first = refused[0]
            what = f"input {first.key!r}" if len(refused) == 1 else (
                f"{len(refused)} inputs ({first.key!r}, ...)"
            )  # fmt: skip
            message = f"{c.ANNOTATION_DELETE_INPUT}: kept {what}: {first.reason}"
            log.warning("%s/%s: %s", body["metadata"]["namespace"], body["metadata"]["name"],
                        message)  # fmt: skip
            self.gateway.post_event(body, type_="Warning", reason="InputKept", message=message)
        allowed = sorted(set(allowed))
        if allowed:
            self.gateway.delete_objects(allowed)
        return len(allowed)


def object_key(source: dict[str, Any] | None) -> str | None:
    """The object key an input (raw spec) names, or None for a URL."""
    return ((source or {}).get("object") or {}).get("key")


def owned_by_view(job: JobView, uid: str) -> bool:
    return uid in job.owner_uids


def check_owner(job: JobView, ref: MediaJobRef) -> None:
    """A Job of this MediaJob's Job name that another object owns is never adopted."""
    if not owned_by_view(job, ref.uid):
        raise SpecError("JobConflict", f"Job {job.name} exists and belongs to something else")
