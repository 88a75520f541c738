"""The scale simulation, small: KWOK nodes run worker pods to a worker-shaped success, the
operator records it, and the run leaves nothing behind."""

from __future__ import annotations

import json
import subprocess

import pytest
from bench.scale_sim import SIM_KEY, SIM_RESULT, simulate

from tests.environment import TEST_LANE


def leftovers(label: str) -> dict[str, list[str]]:
    """Nodes and namespaces of a run (their SIM_KEY label) still in the cluster."""
    found = {}
    for kind in ("nodes", "namespaces"):
        out = subprocess.run(
            ["kubectl", "get", kind, "-l", f"{SIM_KEY}={label}", "-o", "name"],
            check=True, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        found[kind] = out
    return found


@pytest.mark.timeout(600)  # `make test` builds KWOK first (make kwok); elsewhere the driver does
def test_twenty_mediajobs_succeed_on_three_simulated_nodes_and_nothing_is_left() -> None:
    numbers = simulate(20, 3, clients=4, run_seconds=0.5, tag=f"t{TEST_LANE}",
                       background_seconds=2)  # fmt: skip
    mediajobs, bare = numbers["mediajobs"], numbers["bare"]
    assert mediajobs.states == {"Succeeded/Completed": 20}
    assert bare.states == {"Complete": 20}
    result = numbers["result"]  # what the operator recorded from KWOK's termination message
    expected = {k: v for k, v in SIM_RESULT.items() if k in ("size", "contentType", "width")}
    assert expected.items() <= result.items(), json.dumps(result)
    assert result["key"].startswith(f"{numbers['namespace']}/results/")
    assert numbers["operator"].peak_rss_mib > 0
    assert numbers["metrics_scrape_seconds"] > 0  # the operator's /metrics answered (timed)
    assert numbers["requests"]["operator"] > 0
    assert leftovers(numbers["label"]) == {"nodes": [], "namespaces": []}
