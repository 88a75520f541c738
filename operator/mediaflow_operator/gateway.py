"""Every call the reconciler makes to the cluster and to object storage, behind one interface.

`Gateway` is what the reconciler needs; `KubeGateway` is the real one (the kubernetes client
and MinIO); tests/unit/operator/fake_gateway.py is an in-memory one for unit tests. Reads
come from the watch store (observed.py), not from here: the gateway writes, and reads only
what no watch holds (object storage, a pod's log, a Job or Secret after a conflict).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from mediaflow_core import constants as c
from mediaflow_core.mediajob import PresetKind
from mediaflow_core.preset import PLURALS
from mediaflow_core.storage import Storage
from mediaflow_operator.config import OperatorSettings

log = logging.getLogger(__name__)
RESOURCE = (c.GROUP, c.VERSION, c.PLURAL)


class ConflictError(Exception):
    """The object changed since it was read (409 on a resourceVersion precondition), or
    one with that name exists already (409 on create)."""


class GoneError(Exception):
    """The object does not exist (404)."""


class Gateway(Protocol):
    # MediaJobs. Writes are conditioned on the body's resourceVersion and return the new body.
    def patch_mediajob_status(
        self, body: dict[str, Any], status: dict[str, Any]
    ) -> dict[str, Any]: ...
    def patch_mediajob_metadata(
        self, body: dict[str, Any], metadata: dict[str, Any]
    ) -> dict[str, Any]: ...
    def delete_mediajob(self, namespace: str, name: str, uid: str) -> None: ...
    def post_event(
        self, body: dict[str, Any], *, type_: str, reason: str, message: str
    ) -> None: ...

    # Jobs, their Secrets, their pods.
    def create_job(self, manifest: dict[str, Any]) -> dict[str, Any]: ...
    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def delete_job(self, namespace: str, name: str) -> None: ...
    def create_secret(self, manifest: dict[str, Any]) -> None: ...
    def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def pod_log_tail(self, namespace: str, pod: str, lines: int) -> str: ...
    def read_preset(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A MediaPreset (namespace given) or ClusterMediaPreset (namespace None); None when
        there is none. Read once per MediaJob naming it, when it is accepted."""
        ...

    def follow_pod_log(self, namespace: str, pod: str) -> Iterator[str] | None:
        """The worker container's log from its start, following it until the container ends
        (or the stream breaks); None while the container has not started. GoneError when the
        pod is gone."""
        try:
            response = self.core.read_namespaced_pod_log(
                pod, namespace, container="worker", follow=True, _preload_content=False
            )
        except ApiException as error:
            if error.status == 400:
                return None
            raise _translate(error) from error

        def lines() -> Iterator[str]:
            try:
                for raw in response:
                    yield raw.decode("utf-8", "replace").rstrip("\r\n")
            finally:
                response.release_conn()

        return lines()

    # Object storage.
    @property
    def bucket(self) -> str: ...
    def object_size(self, key: str) -> int | None: ...
    def pod_get_url(self, key: str, ttl: Any) -> str: ...
    def pod_put_url(self, key: str, ttl: Any) -> str: ...
    def result_url(self, key: str, filename: str) -> tuple[str, datetime]: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def delete_objects(self, keys: list[str]) -> None: ...
    def put_object(self, key: str, data: bytes) -> None: ...
    def object_keys(self, prefix: str) -> list[str]: ...


def _serialize(obj: Any) -> dict[str, Any]:
    return client.ApiClient().sanitize_for_serialization(obj)


class KubeGateway:
    """The real gateway: the kubernetes client (in-cluster config, or the kubeconfig) and the
    MinIO client of mediaflow_core.storage."""

    def __init__(
        self, settings: OperatorSettings, on_storage_error: Callable[[], None] | None = None
    ) -> None:
        # Called when a call to object storage fails (the storage-errors metric).
        self.on_storage_error = on_storage_error or (lambda: None)
        try:
            kube_config.load_incluster_config()
        except kube_config.ConfigException:
            kube_config.load_kube_config()
        configuration = client.Configuration.get_default_copy()
        # One connection per reconciler thread, plus the progress reader and the sweep.
        configuration.connection_pool_maxsize = max(4, settings.reconcile_workers + 2)
        api = client.ApiClient(configuration)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.storage = Storage(settings)
        self.component = "mediaflow-operator"

    # MediaJobs.
    def patch_mediajob_status(self, body: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status}
        return self._custom(self.custom.patch_namespaced_custom_object_status, meta, patch)

    def patch_mediajob_metadata(
        self, body: dict[str, Any], metadata: dict[str, Any]
    ) -> dict[str, Any]:
        meta = body["metadata"]
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"], **metadata}}
        return self._custom(self.custom.patch_namespaced_custom_object, meta, patch)

    def _custom(self, call: Any, meta: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
        try:
            return call(*RESOURCE[:2], meta["namespace"], RESOURCE[2], meta["name"], patch)
        except ApiException as error:
            raise _translate(error) from error

    def delete_mediajob(self, namespace: str, name: str, uid: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                *RESOURCE[:2], namespace, RESOURCE[2], name,
                body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)),
            )  # fmt: skip
        except ApiException as error:
            if error.status not in (404, 409):
                raise

    def post_event(self, body: dict[str, Any], *, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event on the MediaJob, as `kubectl describe` shows them. Best effort:
        an Event that cannot be posted is logged, never retried."""
        meta = body["metadata"]
        now = datetime.now(UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                generate_name=f"{meta['name']}.", namespace=meta["namespace"]
            ),
            involved_object=client.V1ObjectReference(
                api_version=c.API_VERSION, kind=c.KIND, name=meta["name"],
                namespace=meta["namespace"], uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
            type=type_, reason=reason, message=message[:1024],
            first_timestamp=now, last_timestamp=now, event_time=None, count=1,
            source=client.V1EventSource(component=self.component),
            reporting_component=self.component, reporting_instance=self.component,
            action=reason,
        )  # fmt: skip
        try:
            self.core.create_namespaced_event(meta["namespace"], event)
        except ApiException as error:
            log.warning("%s/%s: event %s not posted: %s", meta["namespace"], meta["name"],
                        reason, error.reason)  # fmt: skip

    # Jobs, Secrets, pods.
    def create_job(self, manifest: dict[str, Any]) -> dict[str, Any]:
        try:
            created = self.batch.create_namespaced_job(manifest["metadata"]["namespace"], manifest)
        except ApiException as error:
            raise _translate(error) from error
        return _serialize(created)

    def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return _serialize(self.batch.read_namespaced_job(name, namespace))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def delete_job(self, namespace: str, name: str) -> None:
        """Delete a Job; its pods and its Secret (owned by it) go with it."""
        try:
            self.batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
        except ApiException as error:
            if error.status != 404:
                raise

    def create_secret(self, manifest: dict[str, Any]) -> None:
        try:
            self.core.create_namespaced_secret(manifest["metadata"]["namespace"], manifest)
        except ApiException as error:
            raise _translate(error) from error

    def read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return _serialize(self.core.read_namespaced_secret(name, namespace))
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    # Presets (issue 15): read once, when a MediaJob naming one is accepted.
    def read_preset(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        plural = PLURALS[PresetKind(kind)]
        try:
            if namespace is None:
                return self.custom.get_cluster_custom_object(c.GROUP, c.VERSION, plural, name)
            return self.custom.get_namespaced_custom_object(
                c.GROUP, c.VERSION, namespace, plural, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def pod_log_tail(self, namespace: str, pod: str, lines: int) -> str:
        try:
            return self.core.read_namespaced_pod_log(
                pod, namespace, container="worker", tail_lines=lines
            )
        except ApiException as error:
            if error.status in (400, 404):  # not started yet, or gone
                return ""
            raise

    def follow_pod_log(self, namespace: str, pod: str) -> Iterator[str] | None:
        """The worker container's log from its start, following it until the container ends
        (or the stream breaks); None while the container has not started. GoneError when the
        pod is gone."""
        try:
            response = self.core.read_namespaced_pod_log(
                pod, namespace, container="worker", follow=True, _preload_content=False
            )
        except ApiException as error:
            if error.status == 400:
                return None
            raise _translate(error) from error

        def lines() -> Iterator[str]:
            try:
                for raw in response:
                    yield raw.decode("utf-8", "replace").rstrip("\r\n")
            finally:
                response.release_conn()

        return lines()

    # Object storage.
    @property
    def bucket(self) -> str:
        return self.storage.bucket

    @contextmanager
    def storage_call(self) -> Iterator[None]:
        """Count a failure of the object-storage calls in this block, then raise it."""
        try:
            yield
        except Exception:
            self.on_storage_error()
            raise

    def object_size(self, key: str) -> int | None:
        with self.storage_call():
            return self.storage.size(key)

    def pod_get_url(self, key: str, ttl: Any) -> str:
        return self.storage.pod_get_url(key, ttl)

    def pod_put_url(self, key: str, ttl: Any) -> str:
        return self.storage.pod_put_url(key, ttl)

    def result_url(self, key: str, filename: str) -> tuple[str, datetime]:
        return self.storage.result_url(key, filename)

    def delete_prefix(self, prefix: str) -> int:
        with self.storage_call():
            return self.storage.delete_prefix(prefix)

    def delete_objects(self, keys: list[str]) -> None:
        """Delete these objects in one request (S3 DeleteObjects; keys that do not exist
        count as deleted)."""
        if keys:
            with self.storage_call():
                self.storage.delete_keys(keys)

    def put_object(self, key: str, data: bytes) -> None:
        with self.storage_call():
            self.storage.put(key, data)

    def object_keys(self, prefix: str) -> list[str]:
        with self.storage_call():
            return [key for key, _ in self.storage.objects_under(prefix)]


def _translate(error: ApiException) -> Exception:
    if error.status == 409:
        return ConflictError(error.reason)
    if error.status == 404:
        return GoneError(error.reason)
    return error
