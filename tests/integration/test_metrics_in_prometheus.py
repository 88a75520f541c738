"""Issue 13's proof through the real Prometheus of the local environment (hack/prometheus.sh):
after one MediaJob of every operation (each manifests/samples file) and one whose input is
missing, run by the session's operator process on real pods, and one upload through an API
process, Prometheus itself (not a direct scrape) holds the contract's series with the counts
this test expects, and so are the webhooks of two MediaJobs that ask for them.

The test's processes are registered as targets under jobs of their own: the release's
`mediaflow-operator` / `mediaflow-api` jobs feed its alert rules. Counters by namespace are
exact (the scratch namespace is this test's alone); histograms and API series are by
operation or route only, which other tests of the session share, so those are at least."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from tests.environment import MinioSettings, ScratchNamespace, unique_name, wait_until
from tests.integration.api_process import ApiProcess
from tests.integration.operator_process import OperatorProcess
from tests.integration.prometheus import query, scrape_target
from tests.integration.test_api_jobs import User
from tests.integration.test_mediajob import SAMPLES, apply_sample, create_mediajob, wait_finished
from tests.integration.test_mediajob import inputs as inputs  # a fixture
from tests.integration.test_webhooks import refused_spec, signing_secret
from tests.media import make_photo
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.integration

OPERATOR_JOB = "mediaflow-operator-it"
API_JOB = "mediaflow-api-it"
WEBP = "/api/v1/image/convert/webp"

# Every series of the operator's contract (docs/operations.md) that must exist once MediaJobs
# have run; the gauges and counters are checked with their counts below.
OPERATOR_SERIES = (
    "mediaflow_mediajob_queue_wait_seconds_count",
    "mediaflow_mediajob_run_seconds_count",
    "mediaflow_mediajob_duration_seconds_count",
    "mediaflow_reconcile_duration_seconds_count",
    "mediaflow_reconcile_errors_total",
    "mediaflow_operator_last_reconcile_timestamp_seconds",
    "mediaflow_operator_leader",
    "mediaflow_progress_reads_total",
    "mediaflow_progress_budget_reads_per_second",
    "mediaflow_progress_due",
    "mediaflow_worker_peak_memory_bytes_count",
    "mediaflow_storage_errors_total",
)
API_SERIES = (
    "mediaflow_api_requests_total",
    "mediaflow_api_request_duration_seconds_count",
    "mediaflow_api_upload_bytes_total",
    "mediaflow_api_upload_seconds_count",
    "mediaflow_storage_up",
)


def eventually(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    """Prometheus scrapes every 5 s: wait for a scrape that shows it."""
    wait_until(what, lambda: check() or None, timeout=timeout, interval=1)


def scalar(expr: str) -> float | None:
    result = query(expr)
    return float(result[0]["value"][1]) if result else None


def by(expr: str, label: str) -> dict[str, float]:
    return {sample["metric"].get(label, ""): float(sample["value"][1]) for sample in query(expr)}


@pytest.fixture(scope="module")
def scraped_operator(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    with scrape_target(f"127.0.0.1:{operator.metrics_port}", job=OPERATOR_JOB):
        eventually("the operator scraped", lambda: scalar(f'up{{job="{OPERATOR_JOB}"}}') == 1)
        yield operator


def test_every_operation_counted_in_prometheus(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    scraped_operator: OperatorProcess,
    inputs: dict[str, Path],
) -> None:
    ns = namespace.name
    made = {}
    for sample in SAMPLES:
        body = apply_sample(kube, namespace, minio_settings, sample, inputs)
        made[body["metadata"]["name"]] = body["spec"]["operation"]
    missing = unique_name("missing")
    create_mediajob(kube, namespace, missing, {
        "operation": "ImageConvert", "imageConvert": {"format": "webp"},
        "input": {"object": {"key": f"{ns}/samples/none.jpg"}},
    })  # fmt: skip
    done = {name: wait_finished(kube, ns, name) for name in [*made, missing]}
    for name in made:
        assert done[name]["status"]["phase"] == "Succeeded", done[name]["status"]
    assert done[missing]["status"]["phase"] == "Failed", done[missing]["status"]

    # Expected: one success per sample, by operation (ImageConvert twice: convert and
    # renditions), and the missing input's failure.
    succeeded: dict[str, float] = {}
    for operation in made.values():
        succeeded[operation] = succeeded.get(operation, 0) + 1
    mine = f'job="{OPERATOR_JOB}", namespace="{ns}"'
    outcomes = (
        f'sum by (operation) (mediaflow_mediajob_outcomes_total{{{mine}, outcome="succeeded"}})'
    )
    eventually(
        f"Prometheus to count {succeeded}",
        lambda: by(outcomes, "operation") == succeeded,
    )
    assert by(
        f'sum by (reason) (mediaflow_mediajob_outcomes_total{{{mine}, outcome="failed"}})',
        "reason",
    ) == {"InputNotFound": 1}
    assert (
        by(
            f'sum by (operation) (mediaflow_mediajob_items_total{{{mine}, outcome="succeeded"}})',
            "operation",
        )
        == succeeded
    )
    # The store's gauge: every MediaJob of the namespace, by phase.
    assert by(f"sum by (phase) (mediaflow_mediajobs{{{mine}}})", "phase") == {
        "Succeeded": len(made),
        "Failed": 1,
    }

    # Cost: the counters are the sums of what the statuses say, per operation.
    for operation in succeeded:
        names = [name for name, op in made.items() if op == operation]
        costs = [done[name]["status"]["cost"] for name in names]
        where = f'{mine}, operation="{operation}"'
        cpu = scalar(f"sum(mediaflow_worker_cpu_seconds_total{{{where}}})")
        assert cpu == pytest.approx(sum(cost["cpuSeconds"] for cost in costs), rel=1e-6)
        assert cpu > 0
        assert scalar(f"sum(mediaflow_worker_input_bytes_total{{{where}}})") == sum(
            cost["inputBytes"] for cost in costs
        )
        assert scalar(f"sum(mediaflow_worker_output_bytes_total{{{where}}})") == sum(
            cost["outputBytes"] for cost in costs
        )
        # Histograms are by operation only (bounded labels): at least this test's.
        for histogram in ("queue_wait", "run", "duration"):
            count = scalar(
                f'sum(mediaflow_mediajob_{histogram}_seconds_count{{job="{OPERATOR_JOB}", '
                f'operation="{operation}"}})'
            )
            assert count is not None
            assert count >= len(names), (histogram, operation)

    for series in OPERATOR_SERIES:
        assert query(f'{series}{{job="{OPERATOR_JOB}"}}'), f"{series} is not in Prometheus"
    assert scalar(f'mediaflow_operator_leader{{job="{OPERATOR_JOB}"}}') == 1


def test_an_upload_counted_in_prometheus(
    auth_api: ApiProcess,
    tmp_path: Path,
) -> None:
    photo = make_photo(tmp_path / "photo.jpg")
    # The storage gauge is set by the readiness check (the probe's, in the release).
    assert httpx.get(f"{auth_api.url}/api/v1/health", timeout=30).status_code == 200
    with scrape_target(f"127.0.0.1:{auth_api.port}", job=API_JOB):
        eventually("the API scraped", lambda: scalar(f'up{{job="{API_JOB}"}}') == 1)
        before = scalar(f'sum(mediaflow_api_upload_bytes_total{{job="{API_JOB}", kind="image"}})')
        user = User(auth_api)
        response = httpx.post(
            f"{auth_api.url}{WEBP}",
            headers=user.headers,
            files={"file": (photo.name, photo.read_bytes())},
            timeout=60,
        )
        assert response.status_code == 202, response.text
        size = photo.stat().st_size
        eventually(
            "Prometheus to count the upload's bytes",
            lambda: (
                (
                    scalar(
                        f'sum(mediaflow_api_upload_bytes_total{{job="{API_JOB}", kind="image"}})'
                    )
                    or 0
                )
                >= (before or 0) + size
            ),
        )
        eventually(
            "Prometheus to count the upload's request",
            lambda: (
                (
                    scalar(
                        f'sum(mediaflow_api_requests_total{{job="{API_JOB}", method="POST", '
                        f'path="{WEBP}", status_code="202"}})'
                    )
                    or 0
                )
                >= 1
            ),
        )
        for series in API_SERIES:
            assert query(f'{series}{{job="{API_JOB}"}}'), f"{series} is not in Prometheus"


def test_webhooks_counted_in_prometheus(
    kube: client.ApiClient, namespace: ScratchNamespace, scraped_operator: OperatorProcess
) -> None:
    """One MediaJob announced after one failed attempt, one refused (a private address):
    their namespace's ended webhooks by reason, and the attempts by outcome."""
    ns = namespace.name
    attempts = f'sum by (outcome) (mediaflow_webhook_attempts_total{{job="{OPERATOR_JOB}"}})'
    before = by(attempts, "outcome")
    signing_secret(namespace)
    receiver = Receiver(codes=[503])
    with contextmanager(receiver.serve)():
        create_mediajob(
            kube, namespace, unique_name("hooked"), refused_spec(namespace, receiver.url)
        )
        create_mediajob(
            kube, namespace, unique_name("private"),
            refused_spec(namespace, "http://10.255.255.1:8080/"),
        )  # fmt: skip
        wait_until("two attempts", lambda: len(receiver.deliveries) >= 2, timeout=60)
    mine = f'job="{OPERATOR_JOB}", namespace="{ns}"'
    ended = f"sum by (reason) (mediaflow_webhook_notifications_total{{{mine}}})"
    expected = {"Delivered": 1, "AddressNotAllowed": 1}
    eventually(f"Prometheus to count {expected}", lambda: by(ended, "reason") == expected)
    after = by(attempts, "outcome")
    # The attempt counters are the process's (other tests' webhooks too): at least these.
    assert after["http_error"] >= before.get("http_error", 0) + 1
    assert after["delivered"] >= before.get("delivered", 0) + 1
    assert "no_answer" in after  # present at 0 from the start
    assert query(f'mediaflow_webhook_attempt_duration_seconds_count{{job="{OPERATOR_JOB}"}}')
    assert query(f'mediaflow_webhooks_pending{{job="{OPERATOR_JOB}"}}') is not None
