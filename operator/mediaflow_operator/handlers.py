"""Kopf handlers: thin I/O around the pure builders (builders.py) and deciders (deciders.py).

Status is written by the operator through the status subresource, never returned from a
handler (a returned value becomes an unschema'd status field that gets pruned).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from mediaflow_core import constants as c
from mediaflow_core.mediajob import MediaJobSpec, Phase
from mediaflow_core.naming import (
    MediaJobRef,
    download_filename,
    job_name,
    result_key,
    result_prefix,
)
from mediaflow_core.storage import Storage
from mediaflow_operator import deciders
from mediaflow_operator.builders import (
    PodResources,
    SpecError,
    build_job,
    build_url_secret,
    check_input,
    check_name,
    check_namespace,
    decide_input_deletion,
    namespace_excluded,
    owned_by,
    pod_resources,
    pod_url_ttl,
    url_secret_name,
)
from mediaflow_operator.config import OperatorSettings
from mediaflow_operator.sweeper import (
    OWNED_PREFIXES,
    LiveMediaJobs,
    StoredObject,
    Sweeper,
    orphans,
    served,
)

RESOURCE = (c.GROUP, c.VERSION, c.PLURAL)
ACTIVE = {None, Phase.PENDING.value, Phase.RUNNING.value}
LABEL_ATTEMPTS = 5  # conflicts in a row before the phase label waits for the next write
log = logging.getLogger(__name__)


class Clients:
    """API clients, built once at start-up and kept on Kopf's memo."""

    def __init__(self, settings: OperatorSettings) -> None:
        try:
            kube_config.load_incluster_config()
        except kube_config.ConfigException:
            kube_config.load_kube_config()
        self.settings = settings
        self.batch = client.BatchV1Api()
        self.core = client.CoreV1Api()
        self.custom = client.CustomObjectsApi()
        self.storage = Storage(settings)

    def read_mediajob(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(
                *RESOURCE[:2], namespace, RESOURCE[2], name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch_status(self, body: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch status, on the condition that nobody changed the object meanwhile;
        a phase written goes into the phase label too (label_phase)."""
        meta = body["metadata"]
        patched = self.custom.patch_namespaced_custom_object_status(
            *RESOURCE[:2],
            meta["namespace"],
            RESOURCE[2],
            meta["name"],
            {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status},
        )
        if "phase" in status:
            self.label_phase(patched)
        return patched

    def label_phase(self, mediajob: dict[str, Any]) -> None:
        """Make the `mediaflow.io/phase` label say the MediaJob's status.phase, so that lists
        select by phase (the API's job list). A status patch cannot change labels: this is
        a metadata patch, sent only when the label differs; after a conflict it decides
        again from a fresh read (deciders.phase_label_patch)."""
        meta = mediajob["metadata"]
        for _ in range(LABEL_ATTEMPTS):
            patch = deciders.phase_label_patch(mediajob)
            if patch is None:
                return
            try:
                self.custom.patch_namespaced_custom_object(
                    *RESOURCE[:2], meta["namespace"], RESOURCE[2], meta["name"], patch
                )
            except ApiException as error:
                if error.status == 404:
                    return
                if error.status != 409:
                    raise
            else:
                return
            latest = self.read_mediajob(meta["namespace"], meta["name"])
            if latest is None:
                return
            mediajob = latest
        log.warning("%s/%s: phase label not written: kept changing", meta["namespace"],
                    meta["name"])  # fmt: skip

    def pods_of(self, namespace: str, name: str) -> list[dict[str, Any]]:
        selector = f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY},{c.LABEL_MEDIAJOB}={name}"
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector)
        return [client.ApiClient().sanitize_for_serialization(p) for p in pods.items]

    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            job = self.batch.read_namespaced_job(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return client.ApiClient().sanitize_for_serialization(job)

    def sweep_orphans(self, patterns: Sequence[str]) -> int:
        """Delete the objects of served namespaces no MediaJob accounts for (see sweeper)."""
        now, grace = datetime.now(UTC), timedelta(seconds=self.settings.orphan_grace_seconds)
        deleted = 0
        # Only prefixes named after namespaces that exist: a bucket shared with other data
        # (or a namespace's leftovers after it is gone) is never guessed at.
        existing = {ns.metadata.name for ns in self.core.list_namespace().items}
        for namespace in self.storage.top_level_names():
            if (
                namespace not in existing
                or not served(namespace, patterns)
                or namespace_excluded(namespace, self.settings.excluded_namespace_patterns)
            ):
                continue
            # Objects first, MediaJobs second: a MediaJob created in between is seen.
            objects = [
                StoredObject(key, modified)
                for prefix in OWNED_PREFIXES
                for key, modified in self.storage.objects_under(f"{namespace}/{prefix}")
            ]
            if not objects:
                continue
            try:
                items = self.custom.list_namespaced_custom_object(
                    *RESOURCE[:2], namespace, RESOURCE[2]
                )["items"]
            except ApiException as error:  # e.g. no Role in a namespace matching a glob
                log.warning("orphan sweep: no MediaJobs of %s: %s", namespace, error.reason)
                continue
            keys = orphans(namespace, objects, LiveMediaJobs.from_items(items), now, grace)
            if keys:
                self.storage.delete_keys(keys)
                log.info("orphan sweep: deleted %d objects of %s: %s", len(keys), namespace, keys)
                deleted += len(keys)
        return deleted

    def ensure_url_secret(
        self, ref: MediaJobRef, job: dict[str, Any], *, input_url: str, output_url: str
    ) -> None:
        """Make the Job's Secret of presigned URLs, owned by the Job; keep the one a previous
        run made for this Job (a crash between the Job and its Secret: the pod waits for it)."""
        secret = build_url_secret(ref, job, input_url=input_url, output_url=output_url)
        try:
            self.core.create_namespaced_secret(ref.namespace, secret)
        except ApiException as error:
            if error.status != 409:
                raise
        else:
            return
        found = self.core.read_namespaced_secret(url_secret_name(ref), ref.namespace)
        if not owned_by(
            client.ApiClient().sanitize_for_serialization(found), job["metadata"]["uid"]
        ):
            # Its URLs (someone else's input, someone else's output) must never reach this
            # MediaJob's pod, which would mount it: delete the Job before the pod starts.
            self.delete_job(ref.namespace, job["metadata"]["name"])
            raise SpecError(
                "SecretConflict",
                f"Secret {url_secret_name(ref)}, the name of this MediaJob's Job's Secret, "
                "exists and does not belong to its Job; the Job was deleted",
            )

    def delete_url_secret(self, ref: MediaJobRef) -> None:
        """The URLs are of no use once the Job finished (the garbage collector would delete
        them only with the Job)."""
        try:
            self.core.delete_namespaced_secret(url_secret_name(ref), ref.namespace)
        except ApiException as error:
            if error.status != 404:
                raise

    def delete_job(self, namespace: str, name: str) -> None:
        try:
            self.batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
        except ApiException as error:
            if error.status != 404:
                raise


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Our own names for Kopf's bookkeeping (see constants.KOPF_PREFIX); changing them later
    # re-handles every object.
    settings.persistence.finalizer = c.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.KOPF_PREFIX,
        key="last-handled-configuration",
        # The phase label mirrors the status, which Kopf ignores too: without this each
        # phase change would be an "update" and cost one more patch of this annotation.
        ignored_fields=[("metadata", "labels", c.LABEL_PHASE)],
    )
    # Users see the Events we post on purpose (kopf.event), not every handler's log line.
    settings.posting.level = logging.ERROR
    settings.execution.max_workers = 8
    memo.clients = clients = Clients(OperatorSettings())
    interval = clients.settings.orphan_sweep_interval_seconds
    if interval:
        patterns = tuple(memo.get("namespaces") or ())
        memo.sweeper = Sweeper(lambda: clients.sweep_orphans(patterns), interval)
        memo.sweeper.start()


@kopf.on.cleanup()
def stop_sweeping(memo: kopf.Memo, **_: Any) -> None:
    if memo.get("sweeper") is not None:
        memo.sweeper.stop()


def fail(
    clients: Clients, body: dict[str, Any], *, reason: str, message: str, accepted: bool
) -> None:
    """Record a MediaJob that can never run (or stopped) as Failed, with an Event."""
    now = datetime.now(UTC)
    generation = body["metadata"].get("generation")
    status = dict(body.get("status") or {})
    changes = {c.CONDITION_SUCCEEDED: ("False", reason, message)}
    if not accepted:
        changes = {c.CONDITION_ACCEPTED: ("False", reason, message), **changes}
    conditions = deciders.set_conditions(
        status.get("conditions") or [], changes, generation=generation, now=now
    )
    clients.patch_status(
        body,
        {
            "phase": Phase.FAILED.value,
            "conditions": conditions,
            "observedGeneration": generation,
            "completionTime": deciders.now_iso(now),
            "message": message,
        },
    )
    kopf.event(type="Warning", objs=body, reason=reason, message=message)


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE, retries=10, backoff=2)
def ensure_job(body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    """Exactly one Job per MediaJob: create it, or adopt the one a previous run created."""
    clients: Clients = memo.clients
    settings = clients.settings
    current = clients.read_mediajob(body.metadata.namespace, body.metadata.name)
    if current is not None:
        # On resume, MediaJobs made before the operator wrote the phase label get it.
        clients.label_phase(current)
    if current is None or (current.get("status") or {}).get("phase") not in ACTIVE:
        return
    ref = MediaJobRef.from_body(current)
    try:
        check_namespace(ref, settings.excluded_namespace_patterns)
        check_name(ref)
        spec = MediaJobSpec.model_validate(current["spec"])
        check_input(ref, spec, clients.storage.bucket)
        resources = pod_resources(spec, settings)
    except ValidationError as error:
        fail(clients, current, reason="InvalidSpec", message=str(error), accepted=False)
        return
    except SpecError as error:
        fail(clients, current, reason=error.reason, message=str(error), accepted=False)
        return

    name = job_name(ref)
    existing = clients.read_job(ref.namespace, name)
    if existing is None:
        input_size = None
        if spec.input.object is not None:
            input_size = clients.storage.size(spec.input.object.key)
            if input_size is None:
                message = f"input object {spec.input.object.key!r} does not exist"
                fail(clients, current, reason="InputNotFound", message=message, accepted=False)
                return
            if input_size > settings.max_input_bytes:
                message = (
                    f"input is {input_size} bytes; the largest accepted is "
                    f"{settings.max_input_bytes}"
                )
                fail(clients, current, reason="InputTooLarge", message=message, accepted=False)
                return
        job = build_job(ref, spec, settings, input_size=input_size)
        # Status first: the Job's own events must never be overtaken by this write.
        generation = current["metadata"].get("generation")
        conditions = deciders.set_conditions(
            (current.get("status") or {}).get("conditions") or [],
            {
                c.CONDITION_ACCEPTED: ("True", "JobCreated", f"Job {name} runs the conversion"),
                c.CONDITION_SUCCEEDED: (
                    "Unknown",
                    "Pending",
                    "waiting for the conversion pod to start",
                ),
            },
            generation=generation,
            now=datetime.now(UTC),
        )
        clients.patch_status(
            current,
            {
                "phase": Phase.PENDING.value,
                "jobName": name,
                "observedGeneration": generation,
                "conditions": conditions,
                "message": "waiting for the conversion pod to start",
            },
        )
        try:
            created = clients.batch.create_namespaced_job(ref.namespace, job)
            if os.environ.get("MEDIAFLOW_FAULT_EXIT_AFTER_JOB_CREATE") == "1":
                # Test-only fault injection: die in the window a crash would hit (the Job
                # made, its Secret not yet: adoption below must make it).
                os._exit(3)
        except ApiException as error:
            if error.status != 409:
                raise
            existing = clients.read_job(ref.namespace, name)
        else:
            # After the Job, so that it can own the Secret: they go together.
            job = client.ApiClient().sanitize_for_serialization(created)
            if not give_urls(clients, current, ref, job, spec, resources):
                return
            kopf.event(
                type="Normal", objs=current, reason="JobCreated", message=f"created Job {name}"
            )
    if existing is not None:
        if not owned_by(existing, ref.uid):
            raise kopf.PermanentError(f"Job {name} exists and belongs to something else")
        logger.info("Job %s already exists; adopting it", name)
        if not deciders.job_finished(existing) and not give_urls(
            clients, current, ref, existing, spec, resources
        ):
            return
        reconcile(clients, ref.namespace, ref.name, job=existing)


def give_urls(
    clients: Clients,
    mediajob: dict[str, Any],
    ref: MediaJobRef,
    job: dict[str, Any],
    spec: MediaJobSpec,
    resources: PodResources,
) -> bool:
    """Make the Job's Secret of presigned URLs; False (the MediaJob Failed) on a conflict."""
    try:
        clients.ensure_url_secret(ref, job, **sign_urls(clients, ref, spec, resources))
    except SpecError as error:
        latest = clients.read_mediajob(ref.namespace, ref.name)
        if latest is not None:
            fail(clients, latest, reason=error.reason, message=str(error), accepted=False)
        return False
    return True


def sign_urls(
    clients: Clients, ref: MediaJobRef, spec: MediaJobSpec, resources: PodResources
) -> dict[str, str]:
    """The presigned GET (input) and PUT (output) URLs of a Job's pods (signed offline),
    valid as long as a pod of the Job may run (builders.pod_url_ttl)."""
    ttl = pod_url_ttl(resources.deadline_seconds)
    source = spec.input.object
    # The spec has exactly one of input.object and input.url.
    input_url = clients.storage.pod_get_url(source.key, ttl) if source else str(spec.input.url)
    return {
        "input_url": input_url,
        "output_url": clients.storage.pod_put_url(result_key(ref), ttl),
    }


@kopf.on.event("batch", "v1", "jobs", labels={c.LABEL_MANAGED_BY: c.MANAGED_BY})
def job_event(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Every change of a MediaJob's Job updates the MediaJob's status at once."""
    name = (body.metadata.labels or {}).get(c.LABEL_MEDIAJOB)
    if not name or type == "DELETED":
        return
    job = dict(body)
    reconcile(memo.clients, body.metadata.namespace, name, job=job)


def reconcile(clients: Clients, namespace: str, name: str, *, job: dict[str, Any] | None) -> None:
    """Bring a MediaJob's status in line with its Job and pods; post an Event on change."""
    mediajob = clients.read_mediajob(namespace, name)
    if mediajob is None or mediajob["metadata"].get("deletionTimestamp"):
        return
    if job is not None:
        owners = job["metadata"].get("ownerReferences") or []
        if not any(o.get("uid") == mediajob["metadata"]["uid"] for o in owners):
            return
    current = mediajob.get("status") or {}
    pods = clients.pods_of(namespace, name)
    status = deciders.decide_status(
        current,
        generation=mediajob["metadata"].get("generation"),
        job=job,
        pods=pods,
        now=datetime.now(UTC),
    )
    ref = MediaJobRef.from_body(mediajob)
    if status.get("phase") == Phase.SUCCEEDED.value and "url" not in (status.get("result") or {}):
        result = dict(status["result"])
        filename = download_filename(ref.name, result.get("contentType"))
        url, expires_at = clients.storage.result_url(result_key(ref), filename)
        result.update(
            bucket=clients.storage.bucket,
            key=result_key(ref),
            url=url,
            urlExpiresAt=deciders.now_iso(expires_at),
        )
        status["result"] = result
    if status == current:
        return
    try:
        clients.patch_status(mediajob, status)
    except ApiException as error:
        if error.status == 409:  # changed meanwhile: the next event or timer tick decides again
            return
        raise
    if status.get("phase") != current.get("phase"):
        phase = status.get("phase")
        if phase not in ACTIVE:
            clients.delete_url_secret(ref)
        message = status.get("message") or ""
        if phase == Phase.FAILED.value:
            reason = next(
                (x["reason"] for x in status["conditions"] if x["type"] == c.CONDITION_SUCCEEDED),
                "Failed",
            )
            kopf.event(type="Warning", objs=mediajob, reason=reason, message=message)
        else:
            kopf.event(type="Normal", objs=mediajob, reason=phase or "Updated", message=message)


@kopf.timer(
    *RESOURCE,
    interval=3.0,
    initial_delay=3.0,
    when=lambda status, **_: status.get("phase") in (Phase.PENDING.value, Phase.RUNNING.value),
)
def watch_progress(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Video progress from the worker's log; and a safety net for missed Job events."""
    clients: Clients = memo.clients
    ref = MediaJobRef.from_body(body)
    job = clients.read_job(ref.namespace, job_name(ref))
    if job is None:
        fail_if_job_lost(clients, ref)
        return
    reconcile(clients, ref.namespace, ref.name, job=job)
    if (
        body.spec.get("operation", "").startswith("Video")
        and body.status.get("phase") == Phase.RUNNING.value
    ):
        pods = [
            p
            for p in clients.pods_of(ref.namespace, ref.name)
            if (p.get("status") or {}).get("phase") == "Running"
        ]
        if not pods:
            return
        log = clients.core.read_namespaced_pod_log(
            pods[0]["metadata"]["name"], ref.namespace, container="worker", tail_lines=20
        )
        progress = deciders.progress_from_log(log)
        mediajob = clients.read_mediajob(ref.namespace, ref.name)
        if (
            progress is not None
            and mediajob is not None
            and (mediajob.get("status") or {}).get("phase") == Phase.RUNNING.value
            and (mediajob.get("status") or {}).get("progress") != progress
        ):
            try:
                clients.patch_status(mediajob, {"progress": progress})
            except ApiException as error:
                if error.status != 409:
                    raise


def fail_if_job_lost(clients: Clients, ref: MediaJobRef) -> None:
    """A MediaJob whose Job vanished (deleted by hand, say) must not stay Running forever."""
    mediajob = clients.read_mediajob(ref.namespace, ref.name)
    if mediajob is None or mediajob["metadata"].get("deletionTimestamp"):
        return
    status = mediajob.get("status") or {}
    accepted = next(
        (x for x in status.get("conditions") or [] if x.get("type") == c.CONDITION_ACCEPTED), None
    )
    if status.get("phase") not in ACTIVE or not accepted or accepted.get("status") != "True":
        return
    since = deciders.parse_time(accepted["lastTransitionTime"])
    # Creation writes the status just before the Job; give a crashed operator time to resume.
    if since and datetime.now(UTC) - since > timedelta(seconds=clients.settings.job_lost_seconds):
        message = f"its Job {status.get('jobName')} was deleted before it finished"
        fail(clients, mediajob, reason="JobDeleted", message=message, accepted=True)


@kopf.timer(
    *RESOURCE,
    interval=10.0,
    when=lambda spec, status, **_: (
        spec.get("ttlSecondsAfterFinished") is not None and status.get("completionTime") is not None
    ),
)
def expire(body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    """Delete finished MediaJobs whose ttlSecondsAfterFinished has passed."""
    finished = deciders.parse_time(body.status.get("completionTime"))
    ttl = body.spec["ttlSecondsAfterFinished"]
    if finished and datetime.now(UTC) >= finished + timedelta(seconds=ttl):
        logger.info("ttlSecondsAfterFinished (%ss) passed; deleting", ttl)
        clients: Clients = memo.clients
        clients.custom.delete_namespaced_custom_object(
            *RESOURCE[:2], body.metadata.namespace, RESOURCE[2], body.metadata.name
        )


@kopf.on.field(*RESOURCE, field=("metadata", "annotations", c.ANNOTATION_CANCEL), value="true")
def cancel(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """`mediaflow.io/cancel: "true"` stops a pending or running MediaJob for good."""
    clients: Clients = memo.clients
    mediajob = clients.read_mediajob(body.metadata.namespace, body.metadata.name)
    if mediajob is None or (mediajob.get("status") or {}).get("phase") not in ACTIVE:
        return
    ref = MediaJobRef.from_body(mediajob)
    now = datetime.now(UTC)
    conditions = deciders.set_conditions(
        (mediajob.get("status") or {}).get("conditions") or [],
        {c.CONDITION_SUCCEEDED: ("False", "Cancelled", "cancelled on request")},
        generation=mediajob["metadata"].get("generation"),
        now=now,
    )
    try:
        clients.patch_status(
            mediajob,
            {
                "phase": Phase.CANCELLED.value,
                "conditions": conditions,
                "completionTime": deciders.now_iso(now),
                "message": "cancelled on request",
            },
        )
    except ApiException as error:
        if error.status == 409:
            # The progress timer or a Job event wrote status meanwhile: read it again soon,
            # not after Kopf's default minute.
            raise kopf.TemporaryError("status changed while cancelling", delay=1) from error
        raise
    clients.delete_job(ref.namespace, job_name(ref))
    clients.storage.delete_prefix(result_prefix(ref))
    # An upload made for this MediaJob alone is of no further use: a cancelled job is final.
    delete_own_input(clients.storage, mediajob)
    kopf.event(
        type="Normal",
        objs=mediajob,
        reason="Cancelled",
        message="cancelled on request; the pod is stopped",
    )


def delete_own_input(storage: Storage, mediajob: dict[str, Any] | kopf.Body) -> bool:
    """Delete the input object when the MediaJob asks (`mediaflow.io/delete-input: "true"`)
    and owns it (see builders.decide_input_deletion); a refusal keeps the object and says why
    in a Warning Event."""
    decision = decide_input_deletion(
        MediaJobRef.from_body(mediajob),
        dict(mediajob["metadata"].get("annotations") or {}),
        dict((mediajob["spec"].get("input") or {}).get("object") or {}),
        storage.bucket,
    )
    if decision is None:
        return False
    if not decision.allowed:
        message = f"{c.ANNOTATION_DELETE_INPUT}: kept input {decision.key!r}: {decision.reason}"
        log.warning("%s/%s: %s", mediajob["metadata"]["namespace"], mediajob["metadata"]["name"],
                    message)  # fmt: skip
        kopf.event(type="Warning", objs=mediajob, reason="InputKept", message=message)
        return False
    storage.delete(decision.key)
    return True


@kopf.on.delete(*RESOURCE, retries=20, backoff=3)
def cleanup(body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    """Deleting a MediaJob deletes its Job (and so its pods) and its objects."""
    clients: Clients = memo.clients
    ref = MediaJobRef.from_body(body)
    clients.delete_job(ref.namespace, job_name(ref))
    removed = clients.storage.delete_prefix(result_prefix(ref))
    removed += delete_own_input(clients.storage, body)
    logger.info("deleted Job %s and %d objects", job_name(ref), removed)
