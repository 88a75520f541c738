"""Cost per conversion, as the worker measures it: each tool process's own rusage (os.wait4)
charged to the conversion that ran it, also when two items of a warm pod run side by side,
and the termination message that carries it. Real processes, no fakes."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

from mediaflow_core.termination import WorkerFailure, WorkerResult, read_termination
from mediaflow_worker.cost import metering
from mediaflow_worker.report import failure_message, log, request_id, success_message
from mediaflow_worker.tools import run_tool

pytestmark = pytest.mark.unit

# ~0.3 s of CPU and ~40 MB resident in a child process.
BUSY = [sys.executable, "-c", "b = bytearray(40 * 2**20); x = sum(range(6_000_000))"]
IDLE = [sys.executable, "-c", "import time; time.sleep(0.6)"]


def test_a_tool_s_cpu_time_and_peak_memory_are_charged_to_the_conversion(tmp_path: Path) -> None:
    with metering() as meter:
        assert run_tool(BUSY, tmp_path).returncode == 0
    assert meter.cpu_seconds > 0.1
    assert meter.peak_memory_bytes > 40 * 2**20
    # Outside a metered block nothing is charged (and nothing breaks).
    assert run_tool(BUSY, tmp_path).returncode == 0
    assert meter.cpu_seconds < 1.0


def test_items_running_side_by_side_are_each_charged_their_own_tools(tmp_path: Path) -> None:
    meters = {}
    barrier = threading.Barrier(2)

    def item(name: str, args: list[str]) -> None:
        with metering() as meter:
            barrier.wait()
            run_tool(args, tmp_path)
            meters[name] = meter

    threads = [threading.Thread(target=item, args=("busy", BUSY)),
               threading.Thread(target=item, args=("idle", IDLE))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # getrusage(RUSAGE_CHILDREN) deltas would charge the idle item the busy one's CPU too.
    assert meters["busy"].cpu_seconds > 0.1
    assert meters["idle"].cpu_seconds < 0.08
    # (Peak memory cannot tell them apart here: Linux keeps the RSS high-water mark of the
    # process a tool was spawned from in the tool's ru_maxrss; see cost.py.)
    assert meters["busy"].peak_memory_bytes > 40 * 2**20


def test_the_termination_message_carries_the_cost_as_the_model_writes_it() -> None:
    cost = {"cpuSeconds": 1.25, "peakMemoryBytes": 123456, "inputBytes": 10, "outputBytes": 7}
    result = {"size": 7, "contentType": "image/webp", "format": "webp", "width": 1,
              "height": 1, "duration": None, "cost": cost}  # fmt: skip
    text = success_message(result)
    assert text == WorkerResult.model_validate(result).to_json()
    parsed = read_termination(text)
    assert isinstance(parsed, WorkerResult)
    assert parsed.cost is not None
    assert parsed.cost.cpu_seconds == 1.25
    failed = read_termination(failure_message("InvalidInput", "bad", cost))
    assert isinstance(failed, WorkerFailure)
    assert failed.cost is not None
    assert failed.cost.input_bytes == 10
    # Without a cost the messages are what they were before it existed.
    assert "cost" not in success_message({**result, "cost": None})
    assert "cost" not in failure_message("InvalidInput", "bad")


def test_every_log_line_of_a_conversion_carries_its_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = request_id.set("req-123")
    try:
        log("start", operation="ImageConvert")
    finally:
        request_id.reset(token)
    log("later")
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["requestId"] == "req-123"
    assert "requestId" not in second
