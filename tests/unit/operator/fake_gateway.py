"""An in-memory Gateway (operator/mediaflow_operator/gateway.py) for unit tests of the
reconciler: MediaJobs with resourceVersions and merge patches, Jobs, Secrets, Events, objects,
and a count of every request the real gateway would send to the API server."""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from mediaflow_operator.gateway import ConflictError, GoneError

BUCKET = "media"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class FakeGateway:
    def __init__(self) -> None:
        self.mediajobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[tuple[str, str, str, str]] = []  # (name, type, reason, message)
        self.objects: dict[str, bytes] = {}
        self.bulk_deletes: list[list[str]] = []  # each delete_objects request's keys
        self.requests: Counter[str] = Counter()
        self.logs: dict[tuple[str, str], str] = {}
        # (kind, namespace or None, name) -> preset object
        self.presets: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.fail_next: dict[str, Exception] = {}
        self._versions = itertools.count(100)
        self._uids = itertools.count(1)

    # Helpers for tests.
    def add_mediajob(self, namespace: str, name: str, spec: dict[str, Any], **meta: Any) -> dict:
        body = {
            "apiVersion": "mediaflow.io/v1alpha1",
            "kind": "MediaJob",
            "metadata": {
                "namespace": namespace,
                "name": name,
                "uid": f"uid-{name}",
                "generation": 1,
                "resourceVersion": str(next(self._versions)),
                "creationTimestamp": "2026-12-02T10:00:00Z",
                **meta,
            },
            "spec": spec,
        }
        self.mediajobs[namespace, name] = body
        return copy.deepcopy(body)

    def put_preset(
        self, kind: str, name: str, spec: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        """Create or replace a preset (a new resourceVersion each time, as the API server)."""
        meta: dict[str, Any] = {"name": name, "resourceVersion": str(next(self._versions))}
        if namespace is not None:
            meta["namespace"] = namespace
        body = {"apiVersion": "mediaflow.io/v1alpha1", "kind": kind, "metadata": meta,
                "spec": spec}  # fmt: skip
        self.presets[kind, namespace, name] = body
        return copy.deepcopy(body)

    def read_preset(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self._count(f"GET {kind}")
        preset = self.presets.get((kind, namespace, name))
        return copy.deepcopy(preset) if preset else None

    def mediajob(self, namespace: str, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.mediajobs[namespace, name])

    def _count(self, request: str) -> None:
        self.requests[request] += 1
        if request in self.fail_next:
            raise self.fail_next.pop(request)

    def _write(self, body: dict[str, Any], patch: dict[str, Any], request: str) -> dict:
        self._count(request)
        meta = body["metadata"]
        stored = self.mediajobs.get((meta["namespace"], meta["name"]))
        if stored is None:
            raise GoneError("not found")
        wanted = patch.get("metadata", {}).get("resourceVersion")
        if wanted is not None and wanted != stored["metadata"]["resourceVersion"]:
            raise ConflictError("the object has been modified")
        patch = copy.deepcopy(patch)
        patch.get("metadata", {}).pop("resourceVersion", None)
        updated = merge_patch(stored, patch)
        updated["metadata"]["resourceVersion"] = str(next(self._versions))
        if updated["metadata"].get("deletionTimestamp") and not updated["metadata"].get(
            "finalizers"
        ):
            del self.mediajobs[meta["namespace"], meta["name"]]
        else:
            self.mediajobs[meta["namespace"], meta["name"]] = updated
        return copy.deepcopy(updated)

    # MediaJobs.
    def patch_mediajob_status(self, body: dict[str, Any], status: dict[str, Any]) -> dict:
        patch = {"metadata": {"resourceVersion": body["metadata"]["resourceVersion"]}}
        return self._write(body, {**patch, "status": status}, "PATCH mediajobs/status")

    def patch_mediajob_metadata(self, body: dict[str, Any], metadata: dict[str, Any]) -> dict:
        patch = {"metadata": {"resourceVersion": body["metadata"]["resourceVersion"], **metadata}}
        return self._write(body, patch, "PATCH mediajobs")

    def delete_mediajob(self, namespace: str, name: str, uid: str) -> None:
        self._count("DELETE mediajobs")
        stored = self.mediajobs.get((namespace, name))
        if stored is None or stored["metadata"]["uid"] != uid:
            return
        if stored["metadata"].get("finalizers"):
            stored["metadata"]["deletionTimestamp"] = "2026-12-02T11:00:00Z"
            stored["metadata"]["resourceVersion"] = str(next(self._versions))
        else:
            del self.mediajobs[namespace, name]

    def post_event(self, body: dict[str, Any], *, type_: str, reason: str, message: str) -> None:
        self._count("POST events")
        self.events.append((body["metadata"]["name"], type_, reason, message))

    # Jobs, Secrets, pods.
    def create_job(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self._count("POST jobs")
        key = (manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        if key in self.jobs:
            raise ConflictError("already exists")
        job = copy.deepcopy(manifest)
        job["metadata"]["uid"] = f"job-uid-{next(self._uids)}"
        job["metadata"]["resourceVersion"] = str(next(self._versions))
        self.jobs[key] = job
        return copy.deepcopy(job)

    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._count("GET jobs")
        job = self.jobs.get((namespace, name))
        return copy.deepcopy(job) if job else None

    def delete_job(self, namespace: str, name: str) -> None:
        self._count("DELETE jobs")
        job = self.jobs.pop((namespace, name), None)
        if job is not None:  # the garbage collector takes the Secret it owns
            uid = job["metadata"]["uid"]
            for key, secret in list(self.secrets.items()):
                owners = secret["metadata"].get("ownerReferences") or []
                if any(o["uid"] == uid for o in owners):
                    del self.secrets[key]

    def create_secret(self, manifest: dict[str, Any]) -> None:
        self._count("POST secrets")
        key = (manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        if key in self.secrets:
            raise ConflictError("already exists")
        self.secrets[key] = copy.deepcopy(manifest)

    def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._count("GET secrets")
        secret = self.secrets.get((namespace, name))
        return copy.deepcopy(secret) if secret else None

    def pod_log_tail(self, namespace: str, pod: str, lines: int) -> str:
        self._count("GET pods/log")
        return self.logs.get((namespace, pod), "")

    # Object storage (no API-server requests).
    @property
    def bucket(self) -> str:
        return BUCKET

    def object_size(self, key: str) -> int | None:
        data = self.objects.get(key)
        return None if data is None else len(data)

    def pod_get_url(self, key: str, ttl: Any) -> str:
        return f"http://minio.test/{BUCKET}/{key}?get"

    def pod_put_url(self, key: str, ttl: Any) -> str:
        return f"http://minio.test/{BUCKET}/{key}?put"

    def result_url(self, key: str, filename: str) -> tuple[str, datetime]:
        return (
            f"http://files.test/{BUCKET}/{key}?name={filename}",
            datetime(2026, 12, 3, tzinfo=UTC) + timedelta(microseconds=1),
        )

    def delete_prefix(self, prefix: str) -> int:
        keys = [k for k in self.objects if k.startswith(prefix)]
        for key in keys:
            del self.objects[key]
        return len(keys)

    def delete_objects(self, keys: list[str]) -> None:
        self.bulk_deletes.append(list(keys))
        for key in keys:
            self.objects.pop(key, None)

    def put_object(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    def object_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def follow_pod_log(self, namespace: str, pod: str):
        self._count("GET pods/log")
        if (namespace, pod) not in self.logs:
            raise GoneError("pod not found")
        return iter(self.logs[namespace, pod].splitlines())

    def api_requests(self) -> int:
        return sum(self.requests.values())
