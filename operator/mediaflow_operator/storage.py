"""Object storage as the operator uses it: sizes, presigned URLs, deletion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error


class S3Settings(Protocol):
    """The object-storage settings the operator and the API share (`MEDIAFLOW_S3_*`)."""

    @property
    def s3_endpoint(self) -> str: ...
    @property
    def s3_public_endpoint(self) -> str | None: ...
    @property
    def s3_access_key(self) -> str: ...
    @property
    def s3_secret_key(self) -> str: ...
    @property
    def s3_bucket(self) -> str: ...
    @property
    def s3_region(self) -> str: ...
    @property
    def result_url_ttl_seconds(self) -> int: ...


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
