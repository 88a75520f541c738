"""Operator settings, read once at start-up from `MEDIAFLOW_*` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mediaflow_core.storage import S3Settings


class ResourceClass(BaseSettings):
    """CPU, memory and time given to one class of conversion pod."""

    cpu: str
    memory: str
    deadline_seconds: int


class Toleration(BaseModel):
    """A Kubernetes Toleration of worker pods (field names as in the pod spec)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(default=None, alias="tolerationSeconds")

    def manifest(self) -> dict[str, object]:
        """The pod spec's form: camelCase names, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True)


class OperatorSettings(S3Settings):
    """Every setting of the operator; each maps to `MEDIAFLOW_<NAME>` (object storage: the
    shared `S3Settings`, `MEDIAFLOW_S3_*`)."""

    model_config = SettingsConfigDict(env_prefix="MEDIAFLOW_", extra="ignore")

    # The worker pods.
    image: str = Field(
        default="mediaflow.local/mediaflow:dev", description="Image of the worker pods."
    )
    image_pull_policy: str = Field(default="IfNotPresent", description="Worker pull policy.")
    worker_service_account: str = Field(
        default="default", description="Service account of worker pods (its token is not mounted)."
    )
    image_cpu: str = Field(default="500m", description="CPU of image conversion pods.")
    image_memory: str = Field(default="512Mi", description="Memory of image conversion pods.")
    image_deadline_seconds: int = Field(default=300, ge=10, description="Image pod time limit.")
    video_cpu: str = Field(default="1", description="CPU of video conversion pods.")
    video_memory: str = Field(default="1Gi", description="Memory of video conversion pods.")
    video_deadline_seconds: int = Field(default=3600, ge=10, description="Video pod time limit.")
    max_cpu: str = Field(default="4", description="Most CPU a MediaJob may ask for.")
    max_memory: str = Field(default="8Gi", description="Most memory a MediaJob may ask for.")
    max_input_bytes: int = Field(default=2 * 1024**3, ge=1, description="Largest input accepted.")
    backoff_limit: int = Field(default=2, ge=0, le=10, description="Retries of transient errors.")
    allow_private_url_inputs: bool = Field(
        default=False,
        description="Worker pods fetch `input.url` only from public addresses unless true.",
    )
    # Dedicated media node pools: worker pods go where these say (JSON in the environment,
    # e.g. MEDIAFLOW_WORKER_NODE_SELECTOR='{"pool":"media"}'); the operator's own pod is
    # placed by the chart's nodeSelector/tolerations.
    worker_node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node selector of worker pods (a JSON object)."
    )
    worker_tolerations: list[Toleration] = Field(
        default_factory=list, description="Tolerations of worker pods (a JSON list)."
    )
    worker_cpu_limits: bool = Field(
        default=False,
        description="Give worker pods a CPU limit equal to their request (threads from the "
        "request); false: the request only (a guaranteed share under contention, idle cores "
        "used otherwise, threads from the CPUs the pod may run on). Memory limits stay.",
    )
    worker_verify_decode: bool = Field(
        default=True,
        description="Worker pods fully decode WebP/AVIF/image outputs before a job succeeds; "
        "false: type, size and header structure only.",
    )

    # Namespaces.
    excluded_namespaces: str = Field(
        default="kube-system,kube-public,kube-node-lease",
        description="Comma-separated globs of namespaces whose MediaJobs are refused (Failed, "
        "NamespaceNotServed, no Job), whatever the operator watches.",
    )

    # Operation.
    progress_interval_seconds: float = Field(
        default=3.0,
        ge=0.5,
        description="How often a running video MediaJob's progress is read from its pod's "
        "log, while the budget allows (progress_reads_per_second).",
    )
    progress_reads_per_second: float = Field(
        default=5.0,
        gt=0,
        description="Most pod-log reads per second for progress, over all running video "
        "MediaJobs: with more of them each is read less often, never the API server more.",
    )
    reconcile_workers: int = Field(
        default=16,
        ge=1,
        le=64,
        description="Threads reconciling MediaJobs (each MediaJob by one at a time).",
    )
    # Warm pods (warm.py): one owner's image MediaJobs share a pod that stays a while.
    warm_pods: bool = Field(
        default=True,
        description="Image MediaJobs with default resources go to a warm pod of their owner "
        "(namespace, and the API's user) that takes one item after another; false: a pod "
        "per MediaJob.",
    )
    warm_idle_seconds: int = Field(
        default=60, ge=1, le=3600, description="A warm pod with nothing to do ends after this."
    )
    warm_lifetime_seconds: int = Field(
        default=600,
        ge=30,
        le=86400,
        description="A warm pod takes no new item after this long (it ends and a fresh one "
        "follows).",
    )
    warm_pods_per_owner: int = Field(
        default=1, ge=1, le=16, description="Most warm pods of one owner at once."
    )
    warm_pods_total: int = Field(
        default=8,
        ge=0,
        le=1000,
        description="Most warm pods at once, all owners; beyond it, MediaJobs get a pod each.",
    )
    warm_concurrency: int = Field(
        default=2, ge=1, le=16, description="Items a warm pod converts at once."
    )
    warm_queue: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Most items queued in one warm pod (beyond it: another warm pod of the "
        "owner, or a pod of its own).",
    )
    warm_poll_ms: int = Field(
        default=50, ge=10, le=5000, description="How often a warm pod looks for its next item."
    )
    items_status_interval_ms: int = Field(
        default=1000,
        ge=0,
        le=60000,
        description="Least time between two status writes of a running MediaJob of many "
        "inputs: a hundred items finishing cost a few writes of its status, not a hundred. The "
        "write that finishes it, and one that cancels an input, are never held back. 0: a "
        "write at every change of an item.",
    )
    # Completion webhooks (notifier.py, docs/operator.md "Webhooks").
    webhook_workers: int = Field(
        default=4, ge=1, le=64, description="Threads delivering completion webhooks."
    )
    webhook_allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDRs a webhook URL's host may resolve into besides "
        "public addresses (e.g. '10.0.0.0/8'); empty: public addresses only.",
    )
    webhook_keys_secret: str = Field(
        default="",
        description="The Secret of the API users' webhook signing secrets: made empty at "
        "start in webhook_keys_namespace when missing (the API may get and update it, never "
        "create a Secret); empty: none.",
    )
    webhook_keys_namespace: str = Field(
        default="", description="Namespace of webhook_keys_secret (the API's MediaJobs')."
    )
    webhook_backoff_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Wait before the first retry of a failed webhook; each further retry "
        "waits twice as long as the one before.",
    )
    webhook_retry_seconds: float = Field(
        default=600.0,
        ge=0,
        le=86400,
        description="Most seconds of waits between a webhook's first and last attempt: no "
        "retry whose wait would pass it (with 1 s: 10 attempts over 8.5 minutes).",
    )
    liveness_port: int = Field(default=8080, description="Port of the /healthz endpoint.")
    metrics_port: int = Field(
        default=8081,
        ge=0,
        le=65535,
        description="Port of the Prometheus /metrics endpoint (docs/operator.md, Metrics); "
        "0 turns it off. A standby replica serves it too.",
    )
    orphan_sweep_interval_seconds: int = Field(
        default=900,
        ge=0,
        description="How often objects no MediaJob accounts for are deleted (at start, then "
        "every interval); 0: never.",
    )
    orphan_grace_seconds: int = Field(
        default=900, ge=1, description="Age an unaccounted-for object must reach to be deleted."
    )

    @property
    def webhook_networks(self) -> tuple[str, ...]:
        return tuple(n.strip() for n in self.webhook_allowed_networks.split(",") if n.strip())

    @property
    def excluded_namespace_patterns(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.excluded_namespaces.split(",") if p.strip())

    def resource_class(self, *, video: bool) -> ResourceClass:
        """The default resources of image or video conversion pods."""
        if video:
            return ResourceClass(
                cpu=self.video_cpu,
                memory=self.video_memory,
                deadline_seconds=self.video_deadline_seconds,
            )
        return ResourceClass(
            cpu=self.image_cpu,
            memory=self.image_memory,
            deadline_seconds=self.image_deadline_seconds,
        )


class LeaderElectionSettings(BaseSettings):
    """Leader election among operator replicas (`MEDIAFLOW_LEADER_ELECTION` on/off, the rest
    `MEDIAFLOW_LEADER_ELECTION_<NAME>`); see mediaflow_operator/leader.py. Apart from
    `OperatorSettings` so that a standby reads nothing it does not need."""

    model_config = SettingsConfigDict(env_prefix="MEDIAFLOW_LEADER_ELECTION_", extra="ignore")

    enabled: bool = Field(
        default=False,
        validation_alias="MEDIAFLOW_LEADER_ELECTION",
        description="Take a Lease before starting Kopf (the chart turns it on); off: run at once.",
    )
    # client-go's defaults (kube-controller-manager, kube-scheduler).
    lease_duration_seconds: float = Field(
        default=15, gt=0, description="How long a Lease not renewed keeps standbys waiting."
    )
    renew_deadline_seconds: float = Field(
        default=10, gt=0, description="A leader that cannot renew this long exits."
    )
    retry_period_seconds: float = Field(
        default=2, gt=0, description="How often candidates read and the leader renews."
    )
    namespace: str = Field(
        default="", description="Namespace of the Lease; default: the pod's own namespace."
    )
    lease_name: str = Field(default="mediaflow-operator", description="Name of the Lease.")
