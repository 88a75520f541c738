"""The HTTP API as a real process (`python -m mediaflow_api`) on 127.0.0.1, for tests."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import httpx

from tests.environment import TEST_LANE, require_env
from tests.integration.processes import start_module, terminate, wait_ready

REPO = Path(__file__).resolve().parents[2]
LOG = REPO / f".local/logs/api-test{TEST_LANE}.log"
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A loopback port nothing listens on (closed again at once)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


class ApiProcess:
    """`mediaflow-api` with the settings .local/env exports, on a free loopback port."""

    def __init__(
        self, extra_env: dict[str, str] | None = None, module: str = "mediaflow_api"
    ) -> None:
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
        self.module = module  # benchmarks run the API under a wrapper (bench/api_spans.py)
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ApiProcess:
        self.process = start_module(self.module, [], self.env, LOG)

        def listening() -> bool:
            try:
                httpx.get(f"{self.url}/docs/openapi.json", timeout=1)
            except httpx.TransportError:
                return False
            return True

        try:
            if not wait_ready(self.process, listening, timeout=30):
                raise RuntimeError(f"the API exited with {self.process.returncode}; see {LOG}")
        except TimeoutError:
            self.__exit__()
            raise TimeoutError(f"the API did not start listening; see {LOG}") from None
        return self

    def __exit__(self, *_: object) -> None:
        terminate(self.process)
