"""The operator's /metrics and the cost of each MediaJob, against the real cluster, MinIO,
worker image and tools: a warm-pod ImageConvert and a one-shot one (its own pod, for the
termination message's path) succeed, one whose input is missing fails; then the operator's
/metrics (the session's operator process, on a free port) and the MediaJobs' status.cost say
what happened and what it cost. The request id an API sets on a MediaJob reaches the
worker's log lines and the operator's."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from mediaflow_core import constants as c
from tests.environment import MinioSettings, ScratchNamespace, unique_name, wait_until
from tests.integration.operator_process import OperatorProcess, free_port
from tests.integration.test_mediajob import GROUP, PLURAL, VERSION, custom, wait_finished
from tests.integration.test_operator_leader import candidate, holder
from tests.integration.test_operator_leader import crd as crd  # a fixture
from tests.integration.test_operator_leader import scratch as scratch  # a fixture (the Lease's)
from tests.media import make_photo

pytestmark = pytest.mark.integration
OP = "ImageConvert"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape: (name, labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, frozenset(sample.labels.items())] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def create(kube: client.ApiClient, ns: str, name: str, spec: dict, **annotations: str) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MediaJob",
        "metadata": {"name": name, "annotations": annotations},
        "spec": spec,
    }
    custom(kube).create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)


def test_outcomes_times_and_cost_of_real_mediajobs_are_in_status_and_metrics(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    ns = namespace.name
    photo = make_photo(tmp_path_factory.mktemp("metrics") / "photo.jpg", "640x480")
    key = f"{ns}/samples/photo.jpg"
    minio = minio_settings.client()
    minio.fput_object(minio_settings.bucket, key, str(photo))
    size = photo.stat().st_size
    convert = {"operation": OP, "imageConvert": {"format": "webp"}}
    warm, oneshot, missing = unique_name("warm"), unique_name("oneshot"), unique_name("missing")
    request = f"req-{warm}"
    create(kube, ns, warm, {**convert, "input": {"object": {"key": key}}},
           **{c.ANNOTATION_REQUEST_ID: request})  # fmt: skip
    # Resources of its own: a Job and pod of its own, the cost from its termination message.
    create(kube, ns, oneshot, {**convert, "input": {"object": {"key": key}},
                               "resources": {"cpu": "500m", "memory": "512Mi"}},
           **{c.ANNOTATION_REQUEST_ID: f"req-{oneshot}"})  # fmt: skip
    create(kube, ns, missing, {**convert, "input": {"object": {"key": f"{ns}/samples/none"}}})

    done = {name: wait_finished(kube, ns, name) for name in (warm, oneshot, missing)}
    assert done[warm]["status"]["phase"] == "Succeeded", done[warm]["status"]
    # It went to a warm pod.
    assert done[warm]["status"].get("sessionSlot") is not None, done[warm]["status"]
    assert done[oneshot]["status"]["phase"] == "Succeeded", done[oneshot]["status"]
    assert done[oneshot]["status"].get("sessionSlot") is None
    assert done[missing]["status"]["phase"] == "Failed"

    for name in (warm, oneshot):
        status = done[name]["status"]
        # (A CRD without status.cost, applied meanwhile by an older tree, would prune it.)
        cost = status.get("cost")
        assert cost, status
        stored = minio.stat_object(minio_settings.bucket, status["result"]["key"]).size
        assert cost["cpuSeconds"] > 0, cost
        assert cost["peakMemoryBytes"] > 0, cost
        assert cost["inputBytes"] == size, cost
        assert cost["outputBytes"] == status["result"]["size"] == stored, cost
    assert "cost" not in done[missing]["status"]  # it never ran

    found = samples(operator.metrics())
    labels = {"namespace": ns, "operation": OP}
    outcomes = "mediaflow_mediajob_outcomes_total"
    assert value(found, outcomes, **labels, outcome="succeeded", reason="Completed") == 2
    assert value(found, outcomes, **labels, outcome="failed", reason="InputNotFound") == 1
    assert value(found, "mediaflow_mediajob_items_total", **labels, outcome="succeeded") == 2
    assert value(found, "mediaflow_mediajob_items_total", **labels, outcome="failed") == 1
    assert value(found, "mediaflow_mediajobs", **labels, phase="Succeeded") == 2
    assert value(found, "mediaflow_mediajobs", **labels, phase="Failed") == 1
    costs = [done[name]["status"]["cost"] for name in (warm, oneshot)]
    cpu = value(found, "mediaflow_worker_cpu_seconds_total", **labels)
    assert cpu == pytest.approx(sum(cost["cpuSeconds"] for cost in costs))
    assert value(found, "mediaflow_worker_input_bytes_total", **labels) == 2 * size
    assert value(found, "mediaflow_worker_output_bytes_total", **labels) == sum(
        cost["outputBytes"] for cost in costs
    )
    # Histograms by operation only: other tests of the session add to them.
    for histogram in ("queue_wait", "run", "duration"):
        count = value(found, f"mediaflow_mediajob_{histogram}_seconds_count", operation=OP)
        assert count is not None
        assert count >= 2
    assert value(found, "mediaflow_worker_peak_memory_bytes_count", operation=OP) >= 2
    assert value(found, "mediaflow_reconcile_duration_seconds_count", handler="reconcile") > 0
    assert value(found, "mediaflow_reconcile_duration_seconds_count", handler="pod_event") > 0
    assert value(found, "mediaflow_operator_leader") == 1
    last = value(found, "mediaflow_operator_last_reconcile_timestamp_seconds")
    assert last is not None
    assert time.time() - last < 60
    assert value(found, "mediaflow_progress_budget_reads_per_second") > 0
    assert value(found, "mediaflow_storage_errors_total", component="operator") is not None

    # The request id: in the warm pod's JSON lines about the item (the pod stays a while
    # idle) and in the operator's log lines about the MediaJob.
    pods = namespace.core.list_namespaced_pod(ns, label_selector=c.LABEL_SESSION).items
    lines = [
        json.loads(line)
        for pod in pods
        for line in namespace.core.read_namespaced_pod_log(pod.metadata.name, ns).splitlines()
        if line.startswith("{")
    ]
    item_lines = [line for line in lines if line.get("item") == done[warm]["metadata"]["uid"]]
    assert item_lines
    assert all(line.get("requestId") == request for line in item_lines), item_lines
    logged = [json.loads(line) for line in operator.log.read_text().splitlines()
              if line.startswith("{") and request in line]  # fmt: skip
    assert any(
        entry.get("requestId") == request and entry.get("object", {}).get("name") == warm
        for entry in logged
    ), logged[-5:]


def test_a_standby_serves_metrics_that_say_it_is_not_the_leader(
    kube: client.ApiClient, scratch: ScratchNamespace
) -> None:
    """Two replicas with leader election (on a Lease of their own): both answer /metrics;
    the Lease's holder says leader 1 and counts MediaJobs, the standby 0 and none."""
    first = candidate("mtrfirst", scratch.name, free_port())
    second = None
    try:
        wait_until("the first replica to lead", lambda: holder(kube, scratch.name).startswith(
            "mtrfirst"), timeout=60)  # fmt: skip
        second = candidate("mtrsecond", scratch.name, free_port())
        leader = samples(first.metrics())
        standby = samples(second.metrics())
        assert value(leader, "mediaflow_operator_leader") == 1
        assert value(standby, "mediaflow_operator_leader") == 0
        assert any(name == "mediaflow_progress_budget_reads_per_second" for name, _ in leader)
        assert not any(name.startswith("mediaflow_mediajob") for name, _ in standby)
        assert holder(kube, scratch.name).startswith("mtrfirst")
    finally:
        for replica in (second, first):
            if replica is not None:
                replica.stop()
