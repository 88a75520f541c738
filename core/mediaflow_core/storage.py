"""Object storage: its settings, and the bucket as the API and the operator use it (sizes,
presigned URLs, deletion). Keys are named by `naming`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_ENDPOINT = re.compile(r"^https?://[^/\s]+$")


class S3Settings(BaseSettings):
    """Object storage, shared by the API's and the operator's settings (both derive from it).

    Declared once, read from the same variables by both: `MEDIAFLOW_S3_*` and
    `MEDIAFLOW_RESULT_URL_TTL_SECONDS`, whatever the prefix of the rest of their settings
    (the aliases are the variable names), so one Secret and ConfigMap feed both.
    """

    model_config = SettingsConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=True)

    # Pods and the operator use the internal endpoint; users get URLs signed for the public one.
    s3_endpoint: str = Field(
        validation_alias="MEDIAFLOW_S3_ENDPOINT",
        description="Internal S3 endpoint URL, e.g. http://minio:9000.",
    )
    s3_public_endpoint: str | None = Field(
        default=None,
        validation_alias="MEDIAFLOW_S3_PUBLIC_ENDPOINT",
        description="Endpoint URL users reach; default: the internal one.",
    )
    s3_access_key: str = Field(
        validation_alias="MEDIAFLOW_S3_ACCESS_KEY", repr=False, description="S3 access key."
    )
    s3_secret_key: str = Field(
        validation_alias="MEDIAFLOW_S3_SECRET_KEY", repr=False, description="S3 secret key."
    )
    s3_bucket: str = Field(
        default="mediaflow",
        validation_alias="MEDIAFLOW_S3_BUCKET",
        description="Bucket for inputs and results.",
    )
    s3_region: str = Field(
        default="us-east-1",
        validation_alias="MEDIAFLOW_S3_REGION",
        description="Region (URLs are signed offline).",
    )
    result_url_ttl_seconds: int = Field(
        default=24 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        validation_alias="MEDIAFLOW_RESULT_URL_TTL_SECONDS",
        description="Validity of result URLs (at most 7 days).",
    )

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable a field of this class (or of a class derived from it) is
        read from: its alias, or the class's prefix and its name."""
        alias = cls.model_fields[field].validation_alias
        if isinstance(alias, str):
            return alias
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @field_validator("s3_endpoint", "s3_public_endpoint")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is not None and not _ENDPOINT.match(value):
            raise ValueError(f"{value!r} is not an endpoint URL like http://minio:9000")
        return value


def minio_client(endpoint: str, settings: S3Settings) -> Minio:
    """A client for an endpoint URL. The region is set, so signing needs no network call."""
    url = urlsplit(endpoint)
    return Minio(
        url.netloc,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=url.scheme == "https",
        region=settings.s3_region,
    )


class Storage:
    """The bucket MediaJobs read from and write to."""

    def __init__(self, settings: S3Settings) -> None:
        self.bucket = settings.s3_bucket
        self.result_ttl = timedelta(seconds=settings.result_url_ttl_seconds)
        self.internal = minio_client(settings.s3_endpoint, settings)
        self.public = minio_client(settings.s3_public_endpoint or settings.s3_endpoint, settings)

    def size(self, key: str) -> int | None:
        """Size of an object, or None when there is no such object."""
        try:
            return self.internal.stat_object(self.bucket, key).size
        except S3Error as error:
            if error.code in {"NoSuchKey", "NoSuchObject", "NotFound"}:
                return None
            raise

    def pod_get_url(self, key: str, expires: timedelta) -> str:
        """A GET URL for a worker pod (signed for the internal endpoint)."""
        return self.internal.presigned_get_object(self.bucket, key, expires=expires)

    def pod_put_url(self, key: str, expires: timedelta) -> str:
        """A PUT URL for a worker pod (signed for the internal endpoint)."""
        return self.internal.presigned_put_object(self.bucket, key, expires=expires)

    def result_url(self, key: str, filename: str) -> tuple[str, datetime]:
        """A download URL for people (signed for the public endpoint) and when it expires."""
        expires_at = datetime.now(UTC) + self.result_ttl
        url = self.public.presigned_get_object(
            self.bucket,
            key,
            expires=self.result_ttl,
            response_headers={"response-content-disposition": f'attachment; filename="{filename}"'},
        )
        return url, expires_at

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under a prefix; returns how many there were."""
        keys = [
            DeleteObject(o.object_name)
            for o in self.internal.list_objects(self.bucket, prefix=prefix, recursive=True)
        ]
        errors = list(self.internal.remove_objects(self.bucket, keys)) if keys else []
        if errors:
            raise RuntimeError(
                f"could not delete {len(errors)} objects under {prefix}: {errors[0]}"
            )
        return len(keys)

    def put(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        """Write a small object (a warm pod's mailbox slot)."""
        import io

        self.internal.put_object(
            self.bucket, key, io.BytesIO(data), len(data), content_type=content_type
        )

    def delete(self, key: str) -> None:
        self.internal.remove_object(self.bucket, key)

    def top_level_names(self) -> list[str]:
        """The bucket's first key segments (namespaces, for MediaFlow's own keys); none while
        the bucket does not exist (a bundled MinIO before the API made it)."""
        try:
            return [
                o.object_name.rstrip("/")
                for o in self.internal.list_objects(self.bucket, recursive=False)
                if o.is_dir
            ]
        except S3Error as error:
            if error.code == "NoSuchBucket":
                return []
            raise

    def objects_under(self, prefix: str) -> list[tuple[str, datetime]]:
        """Every object under a prefix: key and last modification."""
        return [
            (o.object_name, o.last_modified)
            for o in self.internal.list_objects(self.bucket, prefix=prefix, recursive=True)
            if o.last_modified is not None
        ]

    def delete_keys(self, keys: list[str]) -> None:
        errors = list(self.internal.remove_objects(self.bucket, [DeleteObject(k) for k in keys]))
        if errors:
            raise RuntimeError(f"could not delete {len(errors)} objects: {errors[0]}")
