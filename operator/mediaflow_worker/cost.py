"""What a conversion costs (issue 13): CPU seconds and peak memory of the tool processes run
for it, and the bytes downloaded and uploaded.

Each tool is reaped with `os.wait4`, which returns that one process's rusage (and that of
the children it waited for), so items of a warm pod running side by side in threads are
never charged for each other's tools, as `getrusage(RUSAGE_CHILDREN)` deltas would be. The
meter of the item being converted is a context variable: each item runs in its own thread,
and a thread starts with a context of its own.

Peak memory is the largest `ru_maxrss` of the tools. Linux keeps, across `exec`, the RSS
high-water mark of the process image a tool replaced, which for a child made by
fork/vfork is the worker's own: a tool's `ru_maxrss` is the larger of its own peak and the
worker's resident size when it was started (tens of MB in the pod). Above that floor
(ffmpeg on a video, avifenc on a large photo) it is the tool's own peak.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Meter:
    """The running cost of one conversion (one job, or one item of a warm pod)."""

    cpu_seconds: float = 0.0
    peak_memory_bytes: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_process(self, usage: resource.struct_rusage) -> None:
        """One reaped tool process: its user + system time; its peak RSS (KiB on Linux)."""
        with self._lock:
            self.cpu_seconds += usage.ru_utime + usage.ru_stime
            self.peak_memory_bytes = max(self.peak_memory_bytes, usage.ru_maxrss * 1024)

    def add_input(self, size: int) -> None:
        with self._lock:
            self.input_bytes += size

    def add_output(self, size: int) -> None:
        with self._lock:
            self.output_bytes += size

    def report(self) -> dict[str, Any]:
        """The fields of a WorkerCost (camelCase, as in the termination message)."""
        with self._lock:
            return {
                "cpuSeconds": round(self.cpu_seconds, 3),
                "peakMemoryBytes": self.peak_memory_bytes,
                "inputBytes": self.input_bytes,
                "outputBytes": self.output_bytes,
            }


_current: ContextVar[Meter | None] = ContextVar("mediaflow_cost_meter", default=None)


@contextmanager
def metering() -> Iterator[Meter]:
    """Charge the tools run, and bytes moved, in this block (and this thread) to a new Meter."""
    meter = Meter()
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)


def current() -> Meter | None:
    return _current.get()


class MeteredPopen(subprocess.Popen):
    """A Popen whose reaping records the process's own rusage on the meter current where it
    was started.

    Popen reaps through `_try_wait` (wait, communicate, and their timeouts). `poll()` reaps
    through `os.waitpid` directly: `RunningTool` only polls a process it is about to kill on
    an error path, whose cost is then not counted.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._meter = current()
        super().__init__(*args, **kwargs)

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:
        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0  # what Popen does: the status is lost
        if pid == self.pid and self._meter is not None:
            self._meter.add_process(usage)
        return pid, status
