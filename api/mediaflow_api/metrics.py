"""The API's Prometheus metrics, served at `/metrics` (no auth, not in the OpenAPI schema).

Requests are counted by Litestar's Prometheus middleware (`PROMETHEUS`): route templates,
not raw paths, so a job id never becomes a label value; /metrics and the health probe
are left out. The API's own series (issue 13's metrics contract) are defined here, in
prometheus_client's default registry, which the same endpoint serves.

One process per API pod (uvicorn without workers, `__main__`), so the default registry is
the pod's whole truth; Prometheus scrapes each replica and sums.
"""

from __future__ import annotations

from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from prometheus_client import Counter, Gauge, Histogram

APP_NAME = "mediaflow_api"
METRICS_PATH = "/metrics"
HEALTH_PATH = "/api/v1/health"

PROMETHEUS = PrometheusConfig(
    app_name=APP_NAME,
    prefix=APP_NAME,
    group_path=True,
    # Anchored patterns of paths the middleware skips: the scrape itself and the
    # readiness probe (a probe every few seconds would drown the request series).
    exclude=[f"^{METRICS_PATH}$", f"^{HEALTH_PATH}$"],
)


class MetricsController(PrometheusController):
    path = METRICS_PATH
    include_in_schema = False  # an operator's endpoint, not part of the public API


# Upload sizes span a 10 KB photo to a 2 GiB video; durations a few ms to minutes.
UPLOAD_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

UPLOAD_BYTES = Counter(
    "mediaflow_api_upload_bytes",
    "Bytes of files received by accepted uploads, by kind (image|video).",
    ["kind"],
)
UPLOAD_SECONDS = Histogram(
    "mediaflow_api_upload_seconds",
    "Time an accepted upload took, from its handler's start to its MediaJobs created.",
    ["kind"],
    buckets=UPLOAD_SECONDS_BUCKETS,
)
UPLOADS_REJECTED = Counter(
    "mediaflow_api_uploads_rejected",
    "Uploads answered with an error, by the problem type's slug (e.g. unsupported-media-type).",
    ["reason"],
)
RATE_LIMITED = Counter(
    "mediaflow_api_rate_limited",
    "Requests refused by a rate limit (429), by limit: auth-address, auth-account, "
    "upload-image, upload-video, upload-batch.",
    ["limit"],
)
AUTH_FAILURES = Counter(
    "mediaflow_api_auth_failures",
    "Requests answered 401, by the problem type's slug (e.g. invalid-credentials).",
    ["reason"],
)
STORAGE_UP = Gauge(
    "mediaflow_storage_up",
    "1 when the last storage check (the health endpoint's bucket check) succeeded, else 0.",
    ["component"],
)
STORAGE_ERRORS = Counter(
    "mediaflow_storage_errors",
    "Failed calls to object storage (uploads, their clean-up, the health check).",
    ["component"],
)

COMPONENT = "api"


def storage_checked(up: bool) -> None:
    """Record the outcome of a storage check (the gauge is absent until the first one)."""
    STORAGE_UP.labels(component=COMPONENT).set(1 if up else 0)
    if not up:
        STORAGE_ERRORS.labels(component=COMPONENT).inc()


def storage_failed() -> None:
    STORAGE_ERRORS.labels(component=COMPONENT).inc()
