"""The HTTP API as a real process (`python -m mediaflow_api`) on 127.0.0.1, for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.environment import require_env

REPO = Path(__file__).resolve().parents[2]
LOG = REPO / ".local/logs/api-test.log"
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A loopback port nothing listens on (closed again at once)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


class ApiProcess:
    """`mediaflow-api` with the settings .local/env exports, on a free loopback port."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        # Fail (not skip, not fall back to ~/.kube/config) when the environment is missing.
        for name in ("KUBECONFIG", "MEDIAFLOW_S3_ENDPOINT", "MEDIAFLOW_S3_ACCESS_KEY"):
            require_env(name)
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.env = {
            **os.environ,
            "MEDIAFLOW_API_HOST": LOOPBACK,
            "MEDIAFLOW_API_PORT": str(self.port),
            **(extra_env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ApiProcess:
        LOG.parent.mkdir(parents=True, exist_ok=True)
        with LOG.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mediaflow_api"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited with {self.process.returncode}; see {LOG}")
            try:
                httpx.get(f"{self.url}/docs/openapi.json", timeout=1)
            except httpx.TransportError:
                time.sleep(0.1)
            else:
                return self
        self.__exit__()
        raise TimeoutError(f"the API did not start listening; see {LOG}")

    def __exit__(self, *_: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
