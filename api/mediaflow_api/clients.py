"""The API's clients of the Kubernetes API and MinIO, opened once per process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import urllib3
from kubernetes import client as kube
from kubernetes import config as kube_config
from minio import Minio

from mediaflow_api.settings import ApiSettings
from mediaflow_core.constants import GROUP, PLURAL, VERSION
from mediaflow_core.storage import minio_client


@dataclass
class Clients:
    """What the request handlers talk to."""

    kube: kube.ApiClient
    minio: Minio  # the internal endpoint
    minio_public: Minio  # signs URLs handed to users
    # Sends the upload endpoints' presigned S3 requests (see uploads/sink.py).
    s3_http: urllib3.PoolManager = field(default_factory=lambda: s3_pool())
    # Runs the uploads' blocking S3 and MediaJob calls (uploads/service.py BlockingCalls).
    upload_io: ThreadPoolExecutor = field(default_factory=lambda: upload_io_threads())

    def kubernetes_version(self, timeout: float) -> str:
        """The API server's version (`/version`, readable by every authenticated client)."""
        return kube.VersionApi(self.kube).get_code(_request_timeout=timeout).git_version

    def list_mediajobs(self, namespace: str, timeout: float) -> None:
        """List one MediaJob of `namespace`: the resource is served and the API may read it."""
        kube.CustomObjectsApi(self.kube).list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, limit=1, _request_timeout=timeout
        )

    def bucket_exists(self, bucket: str) -> bool:
        """Whether the bucket exists (HEAD on the bucket)."""
        return self.minio.bucket_exists(bucket)

    def close(self) -> None:
        self.upload_io.shutdown(wait=True)
        self.kube.close()
        self.s3_http.clear()


def kube_api_client() -> kube.ApiClient:
    """In a pod, the service account; elsewhere, the kubeconfig ($KUBECONFIG or ~/.kube/config)."""
    # A Configuration of our own, not the library's global default, so that tests and
    # other code in the process cannot change where the API points.
    configuration = kube.Configuration()
    try:
        kube_config.load_incluster_config(client_configuration=configuration)
    except kube_config.ConfigException:
        kube_config.load_kube_config(client_configuration=configuration)
    # Kept-alive connections for every upload I/O thread (the default, 5 per CPU, would
    # open and drop a connection per MediaJob create beyond it, with a warning each).
    configuration.connection_pool_maxsize = max(
        configuration.connection_pool_maxsize, UPLOAD_IO_THREADS
    )
    return kube.ApiClient(configuration)


# Threads for the blocking calls of uploads: a request runs up to 8 at once (uploads/service.py
# STORE_CONCURRENCY, CREATE_CONCURRENCY). Their own pool, not the event loop's default
# executor (min(32, CPUs + 4) threads: 6 on two cores), which the other handlers share: two
# batches would otherwise queue behind each other and behind every to_thread call.
UPLOAD_IO_THREADS = 32


def upload_io_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=UPLOAD_IO_THREADS, thread_name_prefix="upload-io")


def s3_pool() -> urllib3.PoolManager:
    """Connections to object storage for uploads: reused, with bounded waits; a refused
    connection is retried twice (nothing was sent), anything else fails the upload."""
    return urllib3.PoolManager(
        maxsize=32,
        timeout=urllib3.Timeout(connect=5, read=120),
        retries=urllib3.Retry(total=2, connect=2, read=False, status=False, redirect=False),
    )


def open_clients(settings: ApiSettings) -> Clients:
    """Clients for the endpoints in `settings` (no network traffic yet)."""
    return Clients(
        kube=kube_api_client(),
        minio=minio_client(settings.s3_endpoint, settings),
        minio_public=minio_client(settings.s3_public_endpoint or settings.s3_endpoint, settings),
    )
