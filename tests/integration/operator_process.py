"""The operator as a real process on this machine, started and stopped by tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOG = REPO / ".local/logs/operator-test.log"
LIVENESS_PORT = 18089


class OperatorProcess:
    """`mediaflow-operator` with the settings .local/env exports; its log in .local/logs/."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None

    @classmethod
    def start(cls, extra_env: dict[str, str] | None = None) -> OperatorProcess:
        operator = cls(extra_env)
        operator.restart()
        return operator

    def restart(self) -> None:
        self.stop()
        LOG.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.extra_env}
        with LOG.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mediaflow_operator", "--liveness-port", str(LIVENESS_PORT)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return  # exited early (the fault-injection test expects this)
            try:
                url = f"http://127.0.0.1:{LIVENESS_PORT}/healthz"
                with urllib.request.urlopen(url, timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"the operator did not become live; see {LOG}")

    def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(LOG.read_text().splitlines()[-lines:])
