"""The scale simulation's pure parts: what its KWOK stages write is what the worker writes,
and what the operator reads from it is a real-looking result."""

from __future__ import annotations

import json

import yaml
from bench.scale_sim import (
    SIM_KEY,
    SIM_RESULT,
    pod_stages,
    request_totals,
    requests_beyond_background,
    sim_node,
    steady_rate,
    worker_placement_env,
)

from mediaflow_core.mediajob import Phase
from mediaflow_core.termination import read_termination
from mediaflow_operator.builders import worker_placement
from mediaflow_operator.config import OperatorSettings
from mediaflow_operator.deciders import pod_outcome
from mediaflow_operator.observed import PodView
from mediaflow_worker.report import success_message


def finished_pod() -> dict:
    """The pod KWOK's finish stage leaves: its template's terminated state (the message line
    holds no template action, so YAML reads it as KWOK renders it)."""
    finish = next(s for s in pod_stages(1.5) if s["metadata"]["name"] == "mediaflow-pod-finish")
    assert finish["spec"]["delay"] == {"durationMilliseconds": 1500}
    template = finish["spec"]["next"]["statusTemplate"]
    assert "exitCode: 0" in template
    assert "phase: Succeeded" in template
    (line,) = [x for x in template.splitlines() if x.strip().startswith("message:")]
    message = yaml.safe_load(line.split("message:", 1)[1])
    terminated = {"exitCode": 0, "reason": "Completed", "message": message}
    return {
        "metadata": {"name": "p", "creationTimestamp": "2026-12-02T00:00:00Z"},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [{"name": "worker", "state": {"terminated": terminated}}],
        },
    }


def test_the_simulated_pod_ends_with_the_workers_own_success_message() -> None:
    pod = finished_pod()
    message = pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    assert message == success_message(SIM_RESULT)  # byte for byte what the worker writes
    # The operator settles it from the pod alone, as it does a real worker's.
    outcome = pod_outcome((PodView.from_body(pod),))
    assert outcome is not None
    assert outcome.phase is Phase.SUCCEEDED
    assert outcome.result == read_termination(message)  # what the real worker's message reads as
    assert outcome.result is not None
    assert outcome.result.size == json.loads(message)["size"]


def test_simulated_nodes_are_tainted_and_the_operator_places_workers_there() -> None:
    node = sim_node("n1", "run1", cpu="32", memory="256Gi", pods=110)
    assert node["metadata"]["annotations"][SIM_KEY] == "run1"  # KWOK's selector
    assert node["spec"]["taints"] == [{"key": SIM_KEY, "value": "run1", "effect": "NoSchedule"}]
    env = worker_placement_env("run1")
    settings = OperatorSettings(
        s3_endpoint="http://minio:9000",
        s3_access_key="a",
        s3_secret_key="b",  # noqa: S106
        worker_node_selector=json.loads(env["MEDIAFLOW_WORKER_NODE_SELECTOR"]),
        worker_tolerations=json.loads(env["MEDIAFLOW_WORKER_TOLERATIONS"]),
    )
    placement = worker_placement(settings)
    assert placement["nodeSelector"].items() <= node["metadata"]["labels"].items()
    taint = node["spec"]["taints"][0]
    assert {**taint, "operator": "Equal"} in placement["tolerations"]


METRICS = "\n".join(
    [
        "# HELP apiserver_request_total Counter of apiserver requests",
        'apiserver_request_total{code="201",group="batch",resource="jobs",scope="namespace",'
        'subresource="",verb="POST",version="v1"} 7',
        'apiserver_request_total{code="409",group="batch",resource="jobs",scope="namespace",'
        'subresource="",verb="POST",version="v1"} 2',
        'apiserver_request_total{code="200",group="",resource="pods",scope="namespace",'
        'subresource="log",verb="GET",version="v1"} 1e+03',
        'apiserver_request_duration_seconds_count{resource="pods",verb="GET"} 99',
    ]
)


def test_api_server_requests_are_summed_by_resource_and_verb_less_the_background() -> None:
    totals = request_totals(METRICS)
    assert totals == {("jobs", "POST"): 9, ("pods/log", "GET"): 1000}
    after = totals.copy()
    after[("jobs", "POST")] += 100
    after[("pods/log", "GET")] += 10
    extra = requests_beyond_background(totals, after, {("pods/log", "GET"): 1.0}, 10)
    assert extra == {("jobs", "POST"): 100}


def test_the_steady_rate_leaves_out_the_first_and_last_tenth() -> None:
    times = [0.0] * 10 + [float(i) for i in range(1, 81)] + [500.0] * 10
    assert steady_rate(times) == 1.0  # 79 completions in the 79 s from t=1 to t=80
