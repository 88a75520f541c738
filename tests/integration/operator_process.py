"""The operator as a real process on this machine, started and stopped by tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from tests.environment import TEST_LANE, lane_prefix
from tests.integration.processes import start_module, terminate, wait_ready

REPO = Path(__file__).resolve().parents[2]
LOG = REPO / f".local/logs/operator-test{TEST_LANE}.log"
LIVENESS_PORT = 18089 + (sum(map(ord, TEST_LANE)) % 500 if TEST_LANE else 0)
# Only the tests' scratch namespaces (tests/environment.py restricted_namespace prefixes): the
# operator of the Helm release handles its own namespace, and two operators must never handle
# the same MediaJob. Kopf matches these globs against the namespaces it lists and watches.
WATCHED_NAMESPACES = (f"{lane_prefix('mf-test')}-*", f"{lane_prefix('mf-api')}-*")
# Kopf never starts serving a matching namespace that is already being deleted: MediaJobs left
# there by an earlier session keep their finalizer for good. A new operator releases them; one
# that stops first lets the namespaces deleted while it ran finish (the session's last test
# deletes its namespace just before the operator stops).
DRAIN_SECONDS = 60
# The tests' MediaJobs with `input.url` fetch from servers the tests run on this machine's
# private address (10.244.0.1, the bridge): the worker refuses non-public addresses unless
# the operator allows them. The release's operator keeps the chart's default (refuse).
# Warm pods end after 10 s idle instead of 60: the tests see them end, and leave fewer
# pods running behind them.
# Completion webhooks go to receivers the tests run on loopback (allowed; any other
# private address stays refused), retried after 0.2, 0.4, 0.8 ... s within 5 s.
TEST_SETTINGS = {
    "MEDIAFLOW_ALLOW_PRIVATE_URL_INPUTS": "true",
    "MEDIAFLOW_WARM_IDLE_SECONDS": "10",
    "MEDIAFLOW_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "MEDIAFLOW_WEBHOOK_BACKOFF_SECONDS": "0.2",
    "MEDIAFLOW_WEBHOOK_RETRY_SECONDS": "5",
}


def kubectl_json(*args: str) -> dict:
    out = subprocess.run(
        ["kubectl", *args, "-o", "json"], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def terminating_namespaces_with_mediajobs(
    patterns: tuple[str, ...] = WATCHED_NAMESPACES,
) -> dict[str, list[str]]:
    """Watched namespaces being deleted, and the MediaJobs still holding each up."""
    found = {}
    for ns in kubectl_json("get", "namespaces")["items"]:
        name = ns["metadata"]["name"]
        if ns["metadata"].get("deletionTimestamp") and any(
            fnmatch(name, pattern) for pattern in patterns
        ):
            items = kubectl_json("-n", name, "get", "mediajobs")["items"]
            if items:
                found[name] = [item["metadata"]["name"] for item in items]
    return found


def release_stale_mediajobs(patterns: tuple[str, ...] = WATCHED_NAMESPACES) -> None:
    """Drop the finalizer of MediaJobs in watched namespaces that were being deleted before
    this operator started (their Jobs and pods go with the namespace)."""
    for namespace, names in terminating_namespaces_with_mediajobs(patterns).items():
        for name in names:
            subprocess.run(
                ["kubectl", "-n", namespace, "patch", "mediajob", name, "--type=merge",
                 "-p", '{"metadata":{"finalizers":null}}'],
                check=False,
                capture_output=True,
            )  # fmt: skip


def free_port() -> int:
    """A TCP port nobody on this machine listens on now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OperatorProcess:
    """`mediaflow-operator` with the settings .local/env exports; its log in .local/logs/.

    The session's operator uses the defaults; tests that run operators of their own (the
    leader election's) give each its own port, namespace globs and log."""

    def __init__(
        self,
        extra_env: dict[str, str] | None = None,
        *,
        liveness_port: int = LIVENESS_PORT,
        namespaces: tuple[str, ...] = WATCHED_NAMESPACES,
        log: Path = LOG,
    ) -> None:
        self.extra_env = extra_env or {}
        self.liveness_port = liveness_port
        self.namespaces = namespaces
        self.log = log
        self.process: subprocess.Popen | None = None
        # Its /metrics: a free port of its own (lanes and leader-election replicas run
        # operators side by side on this machine), unless extra_env names one.
        self.metrics_port = int(self.extra_env.get("MEDIAFLOW_METRICS_PORT") or free_port())

    @classmethod
    def start(cls, extra_env: dict[str, str] | None = None, **options: Any) -> OperatorProcess:
        operator = cls(extra_env, **options)
        operator.restart()
        return operator

    def restart(self) -> None:
        self.stop()
        release_stale_mediajobs(self.namespaces)
        env = {
            **os.environ,
            **TEST_SETTINGS,
            "MEDIAFLOW_METRICS_PORT": str(self.metrics_port),
            **self.extra_env,
        }
        namespaces = [arg for ns in self.namespaces for arg in ("--namespace", ns)]
        port = self.liveness_port
        self.process = start_module(
            "mediaflow_operator", ["--liveness-port", str(port), *namespaces], env, self.log
        )

        def live() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    return True
            except OSError:
                return False

        try:
            wait_ready(self.process, live, timeout=60)  # an early exit: the fault-injection test
        except TimeoutError:
            raise TimeoutError(f"the operator did not become live; see {self.log}") from None

    def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        deadline = time.monotonic() + DRAIN_SECONDS
        while (
            terminating_namespaces_with_mediajobs(self.namespaces) and time.monotonic() < deadline
        ):
            time.sleep(0.5)
        terminate(self.process)

    def metrics(self) -> str:
        """The text of its /metrics."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text().splitlines()[-lines:])
