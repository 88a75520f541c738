"""API-made jobs expire after the retention (issue 11 item 5), end to end: a real API process
with `MEDIAFLOW_API_JOB_RETENTION_SECONDS=3`, the session's test operator, a real worker pod
and MinIO.

The API writes the retention into each MediaJob as `ttlSecondsAfterFinished`; the operator's
TTL expiry deletes the MediaJob and its finalizer deletes the result prefix and (the API's
`mediaflow.io/delete-input: "true"`) the upload. Nothing is faked: the test sees the job
answer 404, leave the list, the MediaJob go from the API server and its objects from MinIO.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.environment import MinioSettings, wait_until
from tests.integration.api_process import ApiProcess
from tests.integration.operator_process import LOG as OPERATOR_LOG
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_api_jobs import User, objects
from tests.integration.test_mediajob import GROUP, PLURAL, VERSION, custom, get_mj
from tests.media import make_photo

pytestmark = pytest.mark.integration

RETENTION_SECONDS = 3
# From the job's completion to the job being gone for its owner (404, out of the list), its
# files gone from MinIO and the MediaJob itself gone: the retention, then the reconciler's
# wake-up at the TTL (scheduled, not polled), its finalizer's deletions and its finalizer's
# removal; the rest is slack for this machine's load (2 shared cores).
EXPIRY_BUDGET_SECONDS = 30
FINALIZER_BUDGET_SECONDS = 30


@pytest.fixture(scope="module")
def retention_api(
    api_namespace: str, users_namespace: str, operator: OperatorProcess
) -> Iterator[ApiProcess]:
    """An API of its own (the session's keeps the 7-day default) with a 3 s retention,
    writing MediaJobs into the session's `mf-api*` namespace, which the test operator serves."""
    env = {
        "MEDIAFLOW_API_NAMESPACE": api_namespace,
        "MEDIAFLOW_API_USERS_NAMESPACE": users_namespace,
        "MEDIAFLOW_API_JOB_RETENTION_SECONDS": str(RETENTION_SECONDS),
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "10000",
        "MEDIAFLOW_API_AUTH_ACCOUNT_RATE_LIMIT_BURST": "10000",
    }
    with ApiProcess(env) as process:
        yield process


@pytest.fixture
def erin(retention_api: ApiProcess) -> User:
    """A user of this test alone, so that her job list holds her one job."""
    return User(retention_api)


def mediajob_or_none(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return get_mj(kube, namespace, name)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def test_an_api_job_and_its_files_go_after_the_retention(
    kube: client.ApiClient,
    api_namespace: str,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    erin: User,
    tmp_path: Path,
) -> None:
    photo = make_photo(tmp_path / "photo.jpg")
    with photo.open("rb") as stream:
        response = httpx.post(
            f"{erin.api.url}/api/v1/image/convert/webp",
            headers=erin.headers,
            files={"file": (photo.name, stream)},
            timeout=60,
        )
    assert response.status_code == 202, response.text
    job_id = response.json()["data"]["job_id"]
    try:
        _check_expiry(kube, api_namespace, minio_settings, operator, erin, job_id)
    finally:
        # Never leave it behind for the namespace's deletion, whatever failed.
        try:
            custom(kube).delete_namespaced_custom_object(
                GROUP, VERSION, api_namespace, PLURAL, job_id
            )
        except ApiException as error:
            if error.status != 404:
                raise


def _check_expiry(
    kube: client.ApiClient,
    namespace: str,
    minio: MinioSettings,
    operator: OperatorProcess,
    user: User,
    job_id: str,
) -> None:
    mj = get_mj(kube, namespace, job_id)
    assert mj["spec"]["ttlSecondsAfterFinished"] == RETENTION_SECONDS
    upload_prefix = f"{namespace}/uploads/{job_id}/"
    result_prefix = f"{namespace}/results/{mj['metadata']['uid']}/"
    assert objects(minio, upload_prefix) == [f"{upload_prefix}input"]
    assert user.get("").json()["data"]["total"] == 1

    def completed() -> dict[str, Any] | None:
        job = user.get(f"/{job_id}").json()["data"]
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    job = wait_until(f"job {job_id} to finish", completed, timeout=300, interval=0.25)
    seen_completed = time.monotonic()
    assert job["status"] == "completed", job
    # Still there right after it finished: the retention counts from the end.
    assert httpx.get(job["result_url"], timeout=30).status_code == 200
    assert objects(minio, result_prefix) == [f"{result_prefix}output"]

    def gone_for_its_owner() -> bool:
        return user.get(f"/{job_id}").status_code == 404 and user.get("").json()["data"] == {
            "items": [],
            "total": 0,
            "page": 1,
            "page_size": 20,
        }

    def files_gone() -> bool:
        return not objects(minio, result_prefix) and not objects(minio, upload_prefix)

    hint = (
        f"retention {RETENTION_SECONDS} s: the operator's TTL expiry (reconciler.after_finish) "
        f"should have deleted MediaJob {namespace}/{job_id} and its finalizer its files; see "
        f"{OPERATOR_LOG}"
    )

    def remaining(budget: float) -> float:
        return max(1.0, budget - (time.monotonic() - seen_completed))

    def failure(error: TimeoutError, budget: float) -> AssertionError:
        left = mediajob_or_none(kube, namespace, job_id) or {}
        return AssertionError(
            f"job not expired {budget} s after it completed ({error}); MediaJob phase "
            f"{left.get('status', {}).get('phase', '(gone)')}, deletionTimestamp "
            f"{left.get('metadata', {}).get('deletionTimestamp')}, objects left "
            f"{objects(minio, result_prefix) + objects(minio, upload_prefix)}; {hint}\n"
            f"operator log tail:\n{operator.tail()}"
        )

    try:
        wait_until(
            "GET to answer 404, the list to be empty",
            gone_for_its_owner,
            timeout=remaining(EXPIRY_BUDGET_SECONDS),
        )
        to_404 = time.monotonic() - seen_completed
        wait_until(
            "the result and the upload to be gone",
            files_gone,
            timeout=remaining(EXPIRY_BUDGET_SECONDS),
        )
        to_files_gone = time.monotonic() - seen_completed
    except TimeoutError as error:
        raise failure(error, EXPIRY_BUDGET_SECONDS) from None
    budget = EXPIRY_BUDGET_SECONDS + FINALIZER_BUDGET_SECONDS
    try:
        wait_until(
            "the MediaJob to be gone (its finalizer removed)",
            lambda: mediajob_or_none(kube, namespace, job_id) is None,
            timeout=remaining(budget),
            interval=1,
        )
    except TimeoutError as error:
        raise failure(error, budget) from None
    to_gone = time.monotonic() - seen_completed
    print(
        f"after completion: 404 and out of the list at {to_404:.1f} s, files gone at "
        f"{to_files_gone:.1f} s, MediaJob gone at {to_gone:.1f} s"
    )
    answer = user.get(f"/{job_id}")
    assert answer.status_code == 404
    assert answer.json()["status"] == 404
