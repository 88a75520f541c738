"""Start, wait for and stop a MediaFlow program run as a real process by the tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def start_module(module: str, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """`python -m MODULE ARGS` in its own session, appending its output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(process: subprocess.Popen, ready: Callable[[], bool], timeout: float) -> bool:
    """Poll `ready` until it is true (True) or the process exits (False); TimeoutError after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if ready():
            return True
        time.sleep(0.1)
    raise TimeoutError


def terminate(process: subprocess.Popen | None, timeout: float = 20) -> None:
    """SIGTERM (the program's graceful stop), then SIGKILL after `timeout` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
