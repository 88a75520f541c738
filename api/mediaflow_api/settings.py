"""API settings, read once at start-up from `MEDIAFLOW_API_*` (and the shared `MEDIAFLOW_S3_*`)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from mediaflow_api.auth.ratelimit import parse_networks
from mediaflow_api.jobs.model import DEFAULT_JOB_RETENTION_SECONDS
from mediaflow_core.mediajob import MAX_TTL_SECONDS_AFTER_FINISHED
from mediaflow_core.storage import S3Settings

# Deliberately recognisable, so that a deployment still using it is refused in production.
DEFAULT_SIGNING_KEY = "mediaflow-development-signing-key-do-not-use-in-production"
# pyjwt warns below this length for HMAC keys (RFC 7518 section 3.2).
MIN_SIGNING_KEY_BYTES = 32
GIB = 1024**3
MIB = 1024**2

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_ORIGIN = re.compile(r"^https?://[^/\s]+$")


def split_list(value: object) -> object:
    """A JSON list or comma-separated text as a list; anything else unchanged."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


class ApiSettings(S3Settings):
    """Every setting of the HTTP API.

    API settings map to `MEDIAFLOW_API_<NAME>`; object storage is the operator's own
    `S3Settings` (`MEDIAFLOW_S3_*`), so one Secret/ConfigMap can feed both.
    """

    model_config = SettingsConfigDict(
        env_prefix="MEDIAFLOW_API_", extra="ignore", validate_by_name=True, validate_by_alias=True
    )

    environment: Literal["development", "production"] = Field(
        default="development", description="`production` refuses development secrets."
    )

    # Serving. The chart sets the host to 0.0.0.0; a developer's machine stays private.
    host: str = Field(default="127.0.0.1", description="Address uvicorn listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port uvicorn listens on.")
    namespace: str = Field(
        default="mediaflow", description="Namespace of MediaJobs and user Secrets."
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="`json`: one JSON object per line (request id, user id, route, status, "
        "duration...); `text`: lines for a developer's terminal.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe level logged."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed by CORS: a JSON list or comma-separated; empty disables CORS.",
    )
    max_upload_bytes: int = Field(default=2 * GIB, ge=1, description="Largest upload accepted.")
    upload_part_size_bytes: int = Field(
        default=8 * MIB,
        ge=5 * MIB,
        le=512 * MIB,
        description="Part size of the multipart uploads to object storage; each upload in "
        "progress holds about one part (plus 4 MiB) in memory.",
    )
    max_concurrent_uploads: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Uploads one API process receives at once; more are answered 503 with "
        "Retry-After. Bounds memory: each holds about one part plus 4 MiB.",
    )
    # --- Uploads in progress and active jobs per user (issue 10, items 3 and 5). ---
    max_concurrent_uploads_per_user: int = Field(
        default=4,
        ge=1,
        le=1024,
        description="Uploads one user may have in progress at once on one API process; more "
        "are answered 429 with Retry-After. Keeps one user from taking every upload slot.",
    )
    upload_idle_timeout_seconds: float = Field(
        default=30,
        gt=0,
        le=3600,
        description="An upload whose client sends nothing for this long is dropped (408) and "
        "everything it stored is deleted, which frees its slot.",
    )
    upload_stalled_seconds: float = Field(
        default=5,
        gt=0,
        le=3600,
        description="An upload whose client has sent nothing for this long gives up its slot "
        "(408, cleaned up) when the process is full and another user's upload arrives.",
    )
    max_active_jobs_per_user: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Pending and processing jobs one user may have; an upload that would "
        "exceed it is refused whole with 429 before anything of it is kept.",
    )
    # --- end of items 3 and 5 ---
    job_retention_seconds: int = Field(
        default=DEFAULT_JOB_RETENTION_SECONDS,
        # 1 s upwards so that tests can watch a job expire; at most what the MediaJob's
        # ttlSecondsAfterFinished accepts (the API server would refuse every upload's job).
        ge=1,
        le=MAX_TTL_SECONDS_AFTER_FINISHED,
        description="Seconds a job (its MediaJob, upload and result) is kept after it "
        "finished; then the operator deletes it: the MediaJob's ttlSecondsAfterFinished.",
    )
    # Completion webhooks (issue 15; api/mediaflow_api/webhooks/keys.py).
    webhook_keys_name: str = Field(
        default="mediaflow-webhook-keys",
        pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
        description="The Secret (in `namespace`, beside the API's MediaJobs) holding every "
        "user's webhook signing secret, one key per user; the operator signs a job's "
        "callback_url webhook with it. The chart makes it and lets the API get and update it "
        "alone.",
    )
    webhook_rotation_grace_seconds: int = Field(
        default=86400,
        ge=0,
        le=30 * 86400,
        description="After a rotation, webhooks are signed with the new and the old secret "
        "for this long.",
    )
    batch_as_one_mediajob: bool = Field(
        default=True,
        description="A batch request makes one MediaJob with an input per file, converted "
        "in one pod (every file keeps its own job). Off: a MediaJob and a pod per file, as "
        "chart releases before 0.5 did.",
    )
    # Per-user limits of the upload endpoints (a token bucket per process and group), as
    # the previous service grouped them: single images, videos, batches.
    rate_limit_image_per_minute: float = Field(
        default=30, gt=0, le=100_000, description="Image uploads per user and minute."
    )
    rate_limit_video_per_minute: float = Field(
        default=10, gt=0, le=100_000, description="Video uploads per user and minute."
    )
    rate_limit_batch_per_minute: float = Field(
        default=10, gt=0, le=100_000, description="Batch uploads per user and minute."
    )
    health_timeout_seconds: float = Field(
        default=2.0, gt=0, le=30, description="How long each health check may take."
    )

    # Tokens (used by the auth endpoints).
    jwt_signing_key: SecretStr = Field(
        default=SecretStr(DEFAULT_SIGNING_KEY), description="HMAC key signing the JWTs."
    )
    jwt_issuer: str = Field(default="mediaflow", min_length=1, description="JWT `iss`.")
    jwt_audience: str = Field(default="mediaflow-api", min_length=1, description="JWT `aud`.")
    jwt_access_ttl_seconds: int = Field(
        default=15 * 60, ge=60, le=24 * 3600, description="Lifetime of access tokens."
    )
    jwt_refresh_ttl_seconds: int = Field(
        default=7 * 24 * 3600, ge=300, le=90 * 24 * 3600, description="Lifetime of refresh tokens."
    )
    # Per-client-address limit of login and register attempts (a token bucket per process).
    auth_rate_limit_burst: int = Field(
        default=10, ge=1, le=10_000, description="Attempts a client may make at once."
    )
    auth_rate_limit_per_minute: float = Field(
        default=5.0, gt=0, le=10_000, description="Attempts regained per minute."
    )

    # --- auth lane (issue 10): sign-in limits, password hashing, sessions, users, proxies.
    auth_account_rate_limit_burst: int = Field(
        default=5,
        ge=1,
        le=10_000,
        description="Failed logins (and registrations of a taken email) one email may have "
        "at once, from any address.",
    )
    auth_account_rate_limit_per_minute: float = Field(
        default=1.0, gt=0, le=10_000, description="Failed attempts per email regained per minute."
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses/CIDRs of proxies whose X-Forwarded-For is believed (JSON list or "
        "comma-separated); empty: limits key on the TCP peer.",
    )
    password_hash_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Password hashes/verifications one API process runs at once; each holds "
        "`password_hash_memory_kib`.",
    )
    password_hash_max_waiting: int = Field(
        default=8, ge=0, le=1024, description="Sign-ins queued for a hashing slot; more get 503."
    )
    password_hash_queue_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Longest wait for a hashing slot before a 503."
    )
    password_hash_memory_kib: int = Field(
        default=64 * 1024,
        ge=19 * 1024,
        le=1024 * 1024,
        description="argon2id memory cost of new hashes, in KiB (existing hashes keep theirs).",
    )
    session_max_seconds: int = Field(
        default=30 * 24 * 3600,
        ge=300,
        le=365 * 24 * 3600,
        description="Absolute lifetime of a login's refresh-token family, from the login.",
    )
    users_namespace: str | None = Field(
        default=None,
        description="Namespace of the user Secrets (default: `namespace`); the chart uses a "
        "dedicated one so that the API may touch no other Secret.",
    )
    # --- end of the auth lane's block.

    @field_validator("namespace", "users_namespace")
    @classmethod
    def _namespace_is_dns_label(cls, value: str | None) -> str | None:
        if value is not None and not _DNS_LABEL.match(value):
            raise ValueError(f"{value!r} is not a valid Kubernetes namespace name")
        return value

    @property
    def user_secrets_namespace(self) -> str:
        """Where the user Secrets live."""
        return self.users_namespace or self.namespace

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        return split_list(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        return [str(network) for network in parse_networks(value)]

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [origin.strip() for origin in text.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin like https://example.com[:port]")
        return value

    @model_validator(mode="after")
    def _safe_for_environment(self) -> Self:
        if self.jwt_refresh_ttl_seconds <= self.jwt_access_ttl_seconds:
            raise ValueError("jwt_refresh_ttl_seconds must be longer than jwt_access_ttl_seconds")
        if self.environment == "production":
            key = self.jwt_signing_key.get_secret_value()
            if key == DEFAULT_SIGNING_KEY:
                raise ValueError(
                    "refusing to start in production with the default JWT signing key: "
                    "set MEDIAFLOW_API_JWT_SIGNING_KEY (from a Secret)"
                )
            if len(key.encode()) < MIN_SIGNING_KEY_BYTES:
                raise ValueError(
                    f"MEDIAFLOW_API_JWT_SIGNING_KEY must be at least {MIN_SIGNING_KEY_BYTES} "
                    "bytes in production"
                )
        return self
