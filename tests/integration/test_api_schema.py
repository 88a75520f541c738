"""The OpenAPI schema and the live API agree: a schemathesis run (`--checks all`) against the
API as a real process, with its own user and rate limits no run reaches.

Every operation is in the run, the auth ones included. Bounded so that it stays well under
two minutes on this 2-core machine: a few examples per operation, every phase but stateful
(the schema declares no links), and a 50 s budget. `schemathesis_hooks.py` logs
schemathesis in as the test's user, and `POST /auth/logout-all` as a user of its own (it ends
every login of its user); `schemathesis.toml` fails the run if an operation saw nothing but
401/403, and lists the one justified allowance (415 for generated files that are not the
endpoint's kind of media).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.environment import MinioSettings, restricted_namespace
from tests.integration.api_process import ApiProcess
from tests.integration.test_api_jobs import PASSWORD, User

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).with_name("schemathesis.toml")
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
RAISED_LIMITS = {
    "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "10000",
    "MEDIAFLOW_API_AUTH_RATE_LIMIT_PER_MINUTE": "10000",
    "MEDIAFLOW_API_RATE_LIMIT_IMAGE_PER_MINUTE": "100000",
    "MEDIAFLOW_API_RATE_LIMIT_VIDEO_PER_MINUTE": "100000",
    "MEDIAFLOW_API_RATE_LIMIT_BATCH_PER_MINUTE": "100000",
    # Generated PNGs are real images: uploads succeed, and their jobs stay pending here.
    "MEDIAFLOW_API_MAX_ACTIVE_JOBS_PER_USER": "100000",
}


@pytest.fixture(scope="module")
def schema_api(kube: client.ApiClient, minio_settings: MinioSettings) -> Iterator[ApiProcess]:
    """The API in a namespace of its own that no operator serves: its MediaJobs go with the
    namespace, its uploads are deleted here."""
    for scratch in restricted_namespace(kube, "mf-schema"):
        try:
            with ApiProcess({"MEDIAFLOW_API_NAMESPACE": scratch.name, **RAISED_LIMITS}) as api:
                yield api
        finally:
            storage = minio_settings.client()
            for obj in storage.list_objects(
                minio_settings.bucket, f"{scratch.name}/", recursive=True
            ):
                storage.remove_object(minio_settings.bucket, obj.object_name)


def test_the_live_api_conforms_to_its_openapi_schema(
    schema_api: ApiProcess, tmp_path: Path
) -> None:
    user, logged_out = User(schema_api), User(schema_api)
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
        f"{schema_api.url}/docs/openapi.json",
        "--url", schema_api.url,
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", "8",
        "--max-time", "50",
        "--workers", "2",
        "--seed", "1",
        "--request-timeout", "20",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": str(HOOKS),  # logs schemathesis in as these users
        "MEDIAFLOW_SCHEMA_EMAIL": user.email,
        "MEDIAFLOW_SCHEMA_LOGOUT_EMAIL": logged_out.email,
        "MEDIAFLOW_SCHEMA_PASSWORD": PASSWORD,
    }
    run = subprocess.run(command, capture_output=True, text=True, timeout=110, check=False, env=env)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
