"""A user's history of MediaJobs made straight through the Kubernetes API, for the job list's
tests and benchmark (bench/jobs_list.py): each as the upload endpoints make it
(`mediajob_body`: owner, job-type and phase labels, the file name and delete-input
annotations, a spec of the endpoint's form), then as the operator leaves it: Kopf's
annotations and the `mediaflow.io/phase` label (a metadata patch), a status of its phase
(the status subresource). So the objects have the size and the managed fields of real ones.

Only for namespaces no operator watches (`mf-bench-*`, `mf-list*`): no Job or pod is made,
and the inputs do not exist (an operator would fail them, never run them). No finalizer:
no operator would remove it.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from kubernetes import client

from mediaflow_api.jobs.model import (
    DEFAULT_JOB_RETENTION_SECONDS,
    JobType,
    mediajob_body,
    new_job_id,
)
from mediaflow_api.uploads.forms import ENDPOINTS, mediajob_spec
from mediaflow_core.constants import LABEL_PHASE

GROUP, VERSION, PLURAL = "mediaflow.io", "v1alpha1", "mediajobs"

# Form fields of each job type's endpoint (the rest are the endpoint's defaults).
FIELDS: dict[JobType, dict[str, str]] = {
    JobType.IMAGE_CONVERT_FORMAT: {"output_format": "png"},
    JobType.IMAGE_RESIZE: {"width": "320", "height": "240"},
    JobType.VIDEO_RESIZE: {"width": "640", "height": "360"},
    JobType.VIDEO_TRIM: {"start_time": "00:00:01", "end_time": "00:00:05"},
    JobType.IMAGE_RENDITIONS: {
        "renditions": '[{"name": "w320-webp", "format": "webp", "width": 320}]'
    },
}
# Of every 20 MediaJobs: most finished, a few failed, cancelled or still active.
PHASES = ["Succeeded"] * 14 + ["Failed"] * 3 + ["Cancelled"] + ["Running"] + ["Pending"]


def endpoint_of(job_type: JobType) -> Any:
    return next(e for e in ENDPOINTS.values() if e.job_type is job_type and not e.batch)


def operator_status(phase: str, name: str, uid: str, created: datetime) -> dict[str, Any]:
    """The status the operator writes for a MediaJob in `phase` (shape of deciders')."""
    stamp = (created + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    job = f"{name}-{uid[:8]}"

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": stamp,
            "observedGeneration": 1,
        }

    accepted = condition("Accepted", "True", "JobCreated", f"Job {job} runs the conversion")
    base = {"jobName": job, "observedGeneration": 1, "phase": phase}
    if phase == "Pending":
        message = "waiting for the conversion pod to start"
        succeeded = condition("Succeeded", "Unknown", "Pending", message)
        return {**base, "conditions": [accepted, succeeded], "message": message}
    base |= {"startTime": stamp}
    if phase == "Running":
        succeeded = condition("Succeeded", "Unknown", "Running", "converting")
        return {**base, "conditions": [accepted, succeeded], "message": "converting"} | {
            "progress": 40
        }
    base |= {"completionTime": stamp, "duration": "3s"}
    if phase == "Failed":
        message = "the input is not a valid image: cannot identify the file's format"
        succeeded = condition("Succeeded", "False", "InvalidInput", message)
        return {**base, "conditions": [accepted, succeeded], "message": message}
    if phase == "Cancelled":
        succeeded = condition("Succeeded", "False", "Cancelled", "cancelled on request")
        return {**base, "conditions": [accepted, succeeded], "message": "cancelled on request"}
    key = f"bench/results/{uid}/output"
    url = f"http://127.0.0.1:9000/mediaflow/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&" + "x" * 420
    succeeded = condition("Succeeded", "True", "Completed", "conversion succeeded")
    return {
        **base,
        "conditions": [accepted, succeeded],
        "message": "conversion succeeded",
        "progress": 100,
        "result": {
            "bucket": "mediaflow",
            "key": key,
            "size": 4732,
            "contentType": "image/webp",
            "width": 320,
            "height": 240,
            "url": url,
            "urlExpiresAt": stamp,
        },
    }


def seed_mediajob(
    api: client.CustomObjectsApi, namespace: str, owner: str, index: int, *, labelled: bool = True
) -> dict[str, Any]:
    """MediaJob number `index` of `owner`'s history as the API made it and the operator
    left it: job type and phase by `index` (cycling through JobType and PHASES).
    `labelled=False` leaves it without the phase label, as an operator before the label
    did (its status is written all the same)."""
    job_type = list(JobType)[index % len(JobType)]
    job_id = new_job_id()
    phase = PHASES[index % len(PHASES)]
    key = f"{namespace}/uploads/{job_id}/input"  # never uploaded: an operator would fail it
    spec = mediajob_spec(endpoint_of(job_type), FIELDS.get(job_type, {}), key)
    body = mediajob_body(
        job_id,
        namespace,
        owner,
        f"file-{index}.bin",
        job_type,
        spec,
        retention_seconds=DEFAULT_JOB_RETENTION_SECONDS,
    )
    created = api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    meta = created["metadata"]
    kopf = {
        "operator.mediaflow.io/kopf-managed": "yes",
        "operator.mediaflow.io/last-handled-configuration": json.dumps(
            {"spec": body["spec"], "metadata": {"labels": body["metadata"]["labels"]}}
        ),
    }
    labels = {LABEL_PHASE: phase if labelled else None}
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        job_id,
        {"metadata": {"annotations": kopf, "labels": labels}},
        field_manager="kopf",
    )
    when = datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
    status = operator_status(phase, job_id, meta["uid"], when)
    return api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, job_id, {"status": status}
    )
