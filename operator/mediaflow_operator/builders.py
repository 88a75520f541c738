"""Pure builders: MediaJob in, Kubernetes objects and object-storage names out."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from mediaflow_core import constants as c
from mediaflow_core.mediajob import NAME_MESSAGE, MediaJobSpec
from mediaflow_core.naming import MediaJobRef, job_name, upload_prefix
from mediaflow_operator.config import OperatorSettings

# How long a presigned URL outlives the Job's activeDeadlineSeconds: the deadline counts from
# the Job's startTime, set when the Job controller first sees the Job, shortly after the URLs
# are signed; the rest covers that lag and the clocks of the operator and the storage.
URL_TTL_MARGIN_SECONDS = 120
WORKER_CONTAINER = "worker"
WORKER_UID = 10001
# Room for the input, the output and a decoder's intermediate files, plus slack.
WORK_DIR_FACTOR = 3
WORK_DIR_SLACK = 256 * 1024**2
# Each rendition (spec.renditions) adds room for its decoded frame (an uncompressed PNG: a
# photo's raw pixels are several times its JPEG) and its output, plus slack.
RENDITION_FACTOR = 4
RENDITION_SLACK = 16 * 1024**2


class SpecError(ValueError):
    """The MediaJob can never run as specified; the message says why, for its owner."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def namespace_excluded(namespace: str, patterns: Sequence[str]) -> bool:
    """Is the namespace one the operator never runs Jobs in (the system namespaces)?"""
    return any(fnmatchcase(namespace, pattern) for pattern in patterns)


def check_namespace(ref: MediaJobRef, excluded: Sequence[str]) -> None:
    """Refuse MediaJobs of excluded namespaces: an operator watching every namespace must not
    create pods in kube-system and its like (its ClusterRole could)."""
    if namespace_excluded(ref.namespace, excluded):
        raise SpecError(
            "NamespaceNotServed",
            f"MediaJobs in namespace {ref.namespace!r} are not run: the operator excludes "
            f"{', '.join(excluded)} (MEDIAFLOW_EXCLUDED_NAMESPACES)",
        )


def check_name(ref: MediaJobRef) -> None:
    """Refuse a name that cannot be the value of the Job's `mediaflow.io/mediajob` label.

    The CRD refuses such names at admission (CEL); this covers a cluster whose CRD predates
    that rule, where the Job create would fail with 422 on every retry."""
    if len(ref.name) > c.MAX_NAME_LENGTH:
        raise SpecError("NameTooLong", NAME_MESSAGE)


def check_input(ref: MediaJobRef, spec: MediaJobSpec, bucket: str) -> None:
    """Refuse inputs outside what the MediaJob's namespace may read (any of spec.inputs:
    the whole MediaJob is refused, as it names what it may not read)."""
    for index, item in enumerate(spec.items):
        source = item.object
        if source is None:
            continue
        where = "input" if spec.input is not None else f"inputs[{index}]"
        if source.bucket not in (None, bucket):
            raise SpecError(
                "InputNotAllowed",
                f"{where}.object.bucket {source.bucket!r} is not allowed; MediaJobs read "
                f"from {bucket!r}",
            )
        prefix = f"{ref.namespace}/"
        if not source.key.startswith(prefix) or source.key.startswith(f"{prefix}results/"):
            raise SpecError(
                "InputNotAllowed",
                f"{where}.object.key must be under {prefix!r} (this MediaJob's namespace), "
                f"and not under {prefix}results/",
            )


@dataclass(frozen=True)
class InputDeletion:
    """What `mediaflow.io/delete-input: "true"` may do: delete `key`, or nothing, and why not."""

    key: str
    allowed: bool
    reason: str = ""


def decide_input_deletion(
    ref: MediaJobRef, annotations: dict[str, str], input_object: dict[str, Any], bucket: str
) -> InputDeletion | None:
    """Whether a MediaJob ending (deleted, cancelled, expired) may delete its input object.

    None when it does not ask (no `mediaflow.io/delete-input: "true"`, or no input object).
    A MediaJob may delete only what is provably its own: an upload made for it, i.e. a key
    under `<its namespace>/uploads/<its name>/` in the operator's bucket. Anything else it may
    at most read (a namespace's shared inputs, another MediaJob's upload), or not even that (a
    key of another namespace, which a Failed MediaJob still names when its finalizer runs).
    """
    key = input_object.get("key")
    if annotations.get(c.ANNOTATION_DELETE_INPUT) != "true" or not key:
        return None
    prefix = upload_prefix(ref)
    if input_object.get("bucket") not in (None, bucket):
        reason = f"it is in bucket {input_object['bucket']!r}, not {bucket!r}"
        return InputDeletion(key, allowed=False, reason=reason)
    rest = key.removeprefix(prefix)
    # `.`, `..` and empty segments: a store that normalises paths must not lead us elsewhere.
    if rest == key or any(part in ("", ".", "..") for part in rest.split("/")):
        reason = f"only an upload made for this MediaJob (under {prefix!r}) may be deleted"
        return InputDeletion(key, allowed=False, reason=reason)
    return InputDeletion(key, allowed=True)


@dataclass(frozen=True)
class PodResources:
    cpu: str
    memory: str
    threads: int
    deadline_seconds: int


def pod_resources(spec: MediaJobSpec, settings: OperatorSettings) -> PodResources:
    """CPU, memory and deadline of the pod: the class defaults, or the spec's within policy."""
    defaults = settings.resource_class(video=spec.operation.is_video)
    cpu = spec.resources.cpu if spec.resources and spec.resources.cpu else defaults.cpu
    memory = spec.resources.memory if spec.resources and spec.resources.memory else defaults.memory
    if parse_quantity(cpu) > parse_quantity(settings.max_cpu):
        raise SpecError("ResourcesNotAllowed", f"resources.cpu {cpu} is over {settings.max_cpu}")
    if parse_quantity(cpu) < parse_quantity("100m"):
        raise SpecError("ResourcesNotAllowed", f"resources.cpu {cpu} is under 100m")
    if parse_quantity(memory) > parse_quantity(settings.max_memory):
        raise SpecError(
            "ResourcesNotAllowed", f"resources.memory {memory} is over {settings.max_memory}"
        )
    if parse_quantity(memory) < parse_quantity("128Mi"):
        raise SpecError("ResourcesNotAllowed", f"resources.memory {memory} is under 128Mi")
    threads = max(1, math.floor(parse_quantity(cpu)))
    return PodResources(cpu, memory, threads, defaults.deadline_seconds)


def container_resources(cpu: str, memory: str, scratch: int, settings: OperatorSettings) -> dict:
    """Requests, and limits: memory and scratch always, CPU only with worker_cpu_limits
    (docs/operator.md, "CPU limits")."""
    requests = {"cpu": cpu, "memory": memory, "ephemeral-storage": str(scratch)}
    limits = (
        dict(requests)
        if settings.worker_cpu_limits
        else {k: v for k, v in requests.items() if k != "cpu"}
    )
    return {"requests": requests, "limits": limits}


def threads_value(cpu: str, settings: OperatorSettings) -> str:
    """MEDIAFLOW_THREADS: the whole CPUs of a limited pod; `auto` without a CPU limit."""
    if not settings.worker_cpu_limits:
        return c.THREADS_AUTO
    return str(max(1, math.floor(parse_quantity(cpu))))


def pod_url_ttl(deadline_seconds: int) -> timedelta:
    """Validity of the presigned URLs a Job's pods use.

    activeDeadlineSeconds bounds the whole Job, every retry included (the Job controller
    stops its pods when it passes), so no pod can use a URL later than the deadline after
    the Job started; the margin covers the time from signing to the Job's start and clock
    skew. (Multiplying by backoffLimit + 1, as before, gave URLs that outlived any pod.)"""
    return timedelta(seconds=deadline_seconds + URL_TTL_MARGIN_SECONDS)


def url_secret_name(ref: MediaJobRef) -> str:
    """The Job's Secret of presigned URLs has the Job's name (another kind, no clash)."""
    return job_name(ref)


def labels_of(ref: MediaJobRef) -> dict[str, str]:
    """Labels of everything the operator makes for a MediaJob: Job, pods, URL Secret."""
    return {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_MEDIAJOB: ref.name}


def build_url_secret(
    ref: MediaJobRef,
    job: dict[str, Any],
    *,
    input_url: str,
    output_url: str,
    rendition_urls: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Secret holding a Job's presigned URLs, owned by that Job (created, so with a uid):
    the garbage collector deletes it with the Job, and so with the MediaJob. With
    `rendition_urls` (spec.renditions) the output URLs are the files `output-url-<name>`,
    and there is no `output-url`."""
    meta = job["metadata"]
    urls = {c.INPUT_URL_FILE: input_url}
    if rendition_urls:
        urls |= {f"{c.RENDITION_URL_FILE_PREFIX}{n}": url for n, url in rendition_urls.items()}
    else:
        urls[c.OUTPUT_URL_FILE] = output_url
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": url_secret_name(ref),
            "namespace": ref.namespace,
            "labels": labels_of(ref),
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "type": "Opaque",
        # Never changed once made: a retried pod reads what the first one read.
        "immutable": True,
        "stringData": urls,
    }


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    """Does `obj` name the object with this uid among its owners?"""
    return any(o.get("uid") == uid for o in obj["metadata"].get("ownerReferences") or [])


def work_dir_bytes(input_size: int | None, settings: OperatorSettings, renditions: int = 0) -> int:
    """Size of the pod's scratch volume: a multiple of the input, or of the largest input,
    and room for each rendition's frame and output."""
    size = input_size if input_size is not None else settings.max_input_bytes
    extra = renditions * (size * RENDITION_FACTOR + RENDITION_SLACK)
    return size * WORK_DIR_FACTOR + WORK_DIR_SLACK + extra


def rendition_count(spec: MediaJobSpec) -> int:
    """How many renditions each input of the MediaJob has (0: one plain output)."""
    return len(spec.renditions or ())


REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(body: dict[str, Any]) -> str | None:
    """The API request that made the MediaJob (its `mediaflow.io/request-id` annotation), for
    log lines and the worker's environment; None without one, or when it is not a plausible
    id (anyone may annotate a MediaJob: at most 128 characters of [A-Za-z0-9._:-])."""
    value = ((body.get("metadata") or {}).get("annotations") or {}).get(c.ANNOTATION_REQUEST_ID)
    return value if isinstance(value, str) and REQUEST_ID.match(value) else None


def worker_env(
    spec: MediaJobSpec,
    *,
    settings: OperatorSettings,
    threads: str,
    request_id: str | None = None,
) -> list[dict[str, str]]:
    """The worker's inputs (mediaflow_core.constants); the URLs are files of the Job's
    Secret (c.URL_DIR), never values here."""
    options = spec.options
    values = {
        c.ENV_OPERATION: spec.operation.value,
        c.ENV_OPTIONS: options.model_dump_json(by_alias=True, exclude_none=True)
        if options is not None
        else "{}",
        c.ENV_URL_DIR: c.URL_DIR,
        c.ENV_WORK_DIR: c.WORK_DIR,
        c.ENV_MAX_INPUT_BYTES: str(settings.max_input_bytes),
        c.ENV_THREADS: threads,
        # A user's own URL may point anywhere: the worker refuses non-public addresses (the
        # NetworkPolicy is a second layer, not enforced on every cluster nor from a pod's start).
        c.ENV_INPUT_PUBLIC_ONLY: "1"
        if spec.input.url is not None and not settings.allow_private_url_inputs
        else "0",
        c.ENV_VERIFY_DECODE: "1" if settings.worker_verify_decode else "0",
        "HOME": c.WORK_DIR,
        "TMPDIR": c.WORK_DIR,
    }
    if request_id is not None:  # the worker's log lines carry it
        values[c.ENV_REQUEST_ID] = request_id
    return [{"name": k, "value": v} for k, v in values.items()]


def worker_placement(settings: OperatorSettings) -> dict[str, Any]:
    """The pod spec's nodeSelector and tolerations of worker pods; nothing when unset."""
    placement: dict[str, Any] = {}
    if settings.worker_node_selector:
        placement["nodeSelector"] = dict(settings.worker_node_selector)
    if settings.worker_tolerations:
        placement["tolerations"] = [t.manifest() for t in settings.worker_tolerations]
    return placement


def build_job(
    ref: MediaJobRef,
    spec: MediaJobSpec,
    settings: OperatorSettings,
    *,
    input_size: int | None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The hardened batch/v1 Job that runs one MediaJob (docs/architecture.md: pods hold no
    credentials); `request_id`: the API request that made it (request_id_of)."""
    res = pod_resources(spec, settings)
    scratch = work_dir_bytes(input_size, settings, rendition_count(spec))
    labels = labels_of(ref)
    container = {
        "name": WORKER_CONTAINER,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["mediaflow-worker"],
        "env": worker_env(
            spec,
            settings=settings,
            threads=threads_value(res.cpu, settings),
            request_id=request_id,
        ),
        "resources": container_resources(res.cpu, res.memory, scratch, settings),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "work", "mountPath": c.WORK_DIR},
            {"name": "urls", "mountPath": c.URL_DIR, "readOnly": True},
        ],
        "terminationMessagePolicy": "File",
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(ref),
            "namespace": ref.namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": c.API_VERSION,
                    "kind": c.KIND,
                    "name": ref.name,
                    "uid": ref.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": settings.backoff_limit,
            "activeDeadlineSeconds": res.deadline_seconds,
            "podFailurePolicy": {
                "rules": [
                    {
                        # Invalid or missing input never gets better: fail at once.
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": WORKER_CONTAINER,
                            "operator": "In",
                            "values": list(c.FINAL_EXIT_CODES),
                        },
                    },
                    {
                        # Evictions and preemptions are not the input's fault.
                        "action": "Ignore",
                        "onPodConditions": [{"type": "DisruptionTarget"}],
                    },
                ]
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": settings.worker_service_account,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": WORKER_UID,
                        "runAsGroup": WORKER_UID,
                        "fsGroup": WORKER_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    **worker_placement(settings),
                    "containers": [container],
                    "volumes": [
                        {"name": "work", "emptyDir": {"sizeLimit": str(scratch)}},
                        {
                            # Made right after the Job (it is owned by it); the kubelet
                            # starts the container only once the Secret exists.
                            "name": "urls",
                            "secret": {
                                "secretName": url_secret_name(ref),
                                "defaultMode": 0o440,
                            },
                        },
                    ],
                },
            },
        },
    }


# Warm pods (warm.py).


def session_labels(name: str, user: str) -> dict[str, str]:
    """Labels of a warm pod's Job, pod and Secret: ours, the session, and its owner."""
    labels = {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_SESSION: name}
    if user:
        labels[c.LABEL_OWNER] = user
    return labels


def session_deadline_seconds(settings: OperatorSettings) -> int:
    """A warm pod takes items for its lifetime; the last one may then run its full limit."""
    return settings.warm_lifetime_seconds + settings.image_deadline_seconds


def build_session_job(
    name: str,
    namespace: str,
    user: str,
    settings: OperatorSettings,
    resources: PodResources | None = None,
) -> dict[str, Any]:
    """The Job of a warm pod: the one-shot Job's sandbox (same image, user, security
    context, no token, resources of the image class or `resources`), a mailbox instead of
    one item."""
    res = resources or settings.resource_class(video=False)
    scratch = work_dir_bytes(None, settings) * settings.warm_concurrency
    labels = session_labels(name, user)
    env = {
        c.ENV_SESSION: "1",
        c.ENV_URL_DIR: c.URL_DIR,
        c.ENV_WORK_DIR: c.WORK_DIR,
        c.ENV_MAX_INPUT_BYTES: str(settings.max_input_bytes),
        c.ENV_THREADS: threads_value(res.cpu, settings),
        c.ENV_VERIFY_DECODE: "1" if settings.worker_verify_decode else "0",
        c.ENV_SESSION_IDLE_SECONDS: str(settings.warm_idle_seconds),
        c.ENV_SESSION_LIFETIME_SECONDS: str(settings.warm_lifetime_seconds),
        c.ENV_SESSION_CONCURRENCY: str(settings.warm_concurrency),
        c.ENV_SESSION_POLL_MS: str(settings.warm_poll_ms),
        "MEDIAFLOW_TOOL_TIMEOUT_SECONDS": str(settings.image_deadline_seconds),
        "HOME": c.WORK_DIR,
        "TMPDIR": c.WORK_DIR,
    }
    container = {
        "name": WORKER_CONTAINER,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["mediaflow-worker"],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "resources": container_resources(res.cpu, res.memory, scratch, settings),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "work", "mountPath": c.WORK_DIR},
            {"name": "urls", "mountPath": c.URL_DIR, "readOnly": True},
        ],
        "terminationMessagePolicy": "File",
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            # The operator gives what a warm pod did not finish to fresh pods: no retries.
            "backoffLimit": 0,
            "activeDeadlineSeconds": session_deadline_seconds(settings),
            # The operator deletes it once its log is read; this is the net under that (an
            # operator that shut down closed it, and is not there to delete it).
            "ttlSecondsAfterFinished": 30,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": settings.worker_service_account,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": WORKER_UID,
                        "runAsGroup": WORKER_UID,
                        "fsGroup": WORKER_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    **worker_placement(settings),
                    "containers": [container],
                    "volumes": [
                        {"name": "work", "emptyDir": {"sizeLimit": str(scratch)}},
                        {
                            "name": "urls",
                            "secret": {"secretName": name, "defaultMode": 0o440},
                        },
                    ],
                },
            },
        },
    }


def build_session_secret(job: dict[str, Any], *, mailbox_url: str) -> dict[str, Any]:
    """The warm pod's Secret: the GET URL of its mailbox's first slot, owned by its Job."""
    meta = job["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": dict(meta.get("labels") or {}),
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "type": "Opaque",
        "immutable": True,
        "stringData": {c.MAILBOX_URL_FILE: mailbox_url},
    }
