"""`GET /api/v1/jobs` over a user's history of 60 MediaJobs: every page, filter and `total`
exactly right, newest first, MediaJobs without the phase label (made before it) classified
by their status, one being deleted left out.

The MediaJobs are made straight through the Kubernetes API (tests/integration/
mediajob_history.py) in a namespace no operator watches, served by an API process of its
own; the expected answers are computed from the MediaJobs read in full (status.phase, not
the label).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from kubernetes import client

from mediaflow_api.jobs.model import LABEL_JOB_TYPE, JobStatus, JobType, job_status
from tests.environment import restricted_namespace
from tests.integration.api_process import ApiProcess
from tests.integration.mediajob_history import GROUP, PLURAL, VERSION, seed_mediajob
from tests.integration.test_api_jobs import User

COUNT = 60
# Left without the phase label: Succeeded, Failed, Cancelled, Running, Pending and Pending
# (mediajob_history.PHASES by index).
UNLABELLED = {3, 15, 17, 18, 19, 39}
HOLD = "mediaflow.io/test-hold"
JOB_FIELDS = {
    "id",
    "status",
    "job_type",
    "progress",
    "result_url",
    "error",
    "created_at",
    "updated_at",
    "renditions",  # additive: null for jobs without renditions
}


@pytest.fixture(scope="module")
def list_namespace(kube: client.ApiClient) -> Iterator[str]:
    """`mf-list<lane>-*`: no test operator's glob matches it."""
    for scratch in restricted_namespace(kube, "mf-list"):
        yield scratch.name


@pytest.fixture(scope="module")
def list_api(list_namespace: str) -> Iterator[ApiProcess]:
    env = {
        "MEDIAFLOW_API_NAMESPACE": list_namespace,
        "MEDIAFLOW_API_USERS_NAMESPACE": list_namespace,
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "10000",
        "MEDIAFLOW_API_AUTH_ACCOUNT_RATE_LIMIT_BURST": "10000",
    }
    with ApiProcess(env) as process:
        yield process


@pytest.fixture(scope="module")
def history(kube: client.ApiClient, list_namespace: str, list_api: ApiProcess) -> Iterator[User]:
    """A user with COUNT MediaJobs made over a few seconds (several share a second), and
    one more being deleted (held by a finalizer of the test's own)."""
    user = User(list_api)
    api = client.CustomObjectsApi(kube)
    with ThreadPoolExecutor(8) as pool:
        for batch in range(0, COUNT, 20):
            list(
                pool.map(
                    lambda i: seed_mediajob(
                        api, list_namespace, user.id, i, labelled=i not in UNLABELLED
                    ),
                    range(batch, batch + 20),
                )
            )
            time.sleep(1.1)  # creation timestamps have one-second resolution
    deleting = seed_mediajob(api, list_namespace, user.id, 0)
    name = deleting["metadata"]["name"]
    api.patch_namespaced_custom_object(
        GROUP, VERSION, list_namespace, PLURAL, name, {"metadata": {"finalizers": [HOLD]}}
    )
    api.delete_namespaced_custom_object(GROUP, VERSION, list_namespace, PLURAL, name)
    try:
        yield user
    finally:
        api.patch_namespaced_custom_object(
            GROUP, VERSION, list_namespace, PLURAL, name, {"metadata": {"finalizers": None}}
        )


def expected(
    kube: client.ApiClient,
    namespace: str,
    status: JobStatus | None = None,
    job_type: JobType | None = None,
) -> list[str]:
    """The ids the list must show, newest first (ties by name), from full MediaJobs."""
    items = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL
    )["items"]
    matching = [
        mj
        for mj in items
        if not mj["metadata"].get("deletionTimestamp")
        and (status is None or job_status(mj) is status)
        and (job_type is None or mj["metadata"]["labels"][LABEL_JOB_TYPE] == job_type.value)
    ]
    by_name = sorted(matching, key=lambda mj: mj["metadata"]["name"])
    return [
        mj["metadata"]["name"]
        for mj in sorted(by_name, key=lambda mj: mj["metadata"]["creationTimestamp"], reverse=True)
    ]


def listing(user: User, **params: Any) -> dict[str, Any]:
    response = user.get("", **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    return body["data"]


def all_pages(user: User, page_size: int, **params: Any) -> tuple[list[str], set[int]]:
    """Every page's ids in order, and the totals the pages gave."""
    ids: list[str] = []
    totals: set[int] = set()
    page = 1
    while True:
        data = listing(user, page=page, page_size=page_size, **params)
        assert (data["page"], data["page_size"]) == (page, page_size)
        totals.add(data["total"])
        if not data["items"]:
            return ids, totals
        assert all(set(item) == JOB_FIELDS for item in data["items"])
        ids += [item["id"] for item in data["items"]]
        page += 1


def test_every_page_newest_first_with_the_total(
    kube: client.ApiClient, list_namespace: str, history: User
) -> None:
    want = expected(kube, list_namespace)
    assert len(want) == COUNT  # the one being deleted is left out
    ids, totals = all_pages(history, 7)
    assert ids == want
    assert totals == {COUNT}


@pytest.mark.parametrize("status", list(JobStatus))
def test_status_filters_count_and_page_exactly(
    kube: client.ApiClient, list_namespace: str, history: User, status: JobStatus
) -> None:
    want = expected(kube, list_namespace, status)
    assert want  # the history has every status
    ids, totals = all_pages(history, 4, status=status.value)
    assert ids == want
    assert totals == {len(want)}
    statuses = {item["status"] for item in listing(history, page_size=100, status=status)["items"]}
    assert statuses == {status.value}


def test_mediajobs_without_the_phase_label_are_classified_by_their_status(
    kube: client.ApiClient, list_namespace: str, history: User
) -> None:
    api = client.CustomObjectsApi(kube)
    unlabelled = api.list_namespaced_custom_object(
        GROUP, VERSION, list_namespace, PLURAL, label_selector="!mediaflow.io/phase"
    )["items"]
    assert len(unlabelled) == len(UNLABELLED)
    for mj in unlabelled:
        status = job_status(mj)
        ids = [i["id"] for i in listing(history, page_size=100, status=status)["items"]]
        assert mj["metadata"]["name"] in ids, status
        for other in set(JobStatus) - {status}:
            ids = [i["id"] for i in listing(history, page_size=100, status=other)["items"]]
            assert mj["metadata"]["name"] not in ids, other


@pytest.mark.parametrize(
    ("job_type", "status"),
    [
        (JobType.VIDEO_TRIM, None),
        (JobType.IMAGE_CONVERT_WEBP, JobStatus.COMPLETED),
        (JobType.IMAGE_RESIZE, JobStatus.FAILED),
    ],
)
def test_job_type_filters_alone_and_with_a_status(
    kube: client.ApiClient,
    list_namespace: str,
    history: User,
    job_type: JobType,
    status: JobStatus | None,
) -> None:
    want = expected(kube, list_namespace, status, job_type)
    params = {"job_type": job_type.value} | ({"status": status.value} if status else {})
    ids, totals = all_pages(history, 3, **params)
    assert ids == want
    assert totals == {len(want)}


def test_a_listed_job_is_the_job_itself(history: User) -> None:
    """Each item is what GET /jobs/{id} answers (a completed job's URL is signed afresh)."""
    items = listing(history, page_size=20, status="completed")["items"]
    assert items
    for item in items[:3]:
        job = history.get(f"/{item['id']}").json()["data"]
        assert {k: v for k, v in item.items() if k != "result_url"} == {
            k: v for k, v in job.items() if k != "result_url"
        }
        assert item["result_url"]
