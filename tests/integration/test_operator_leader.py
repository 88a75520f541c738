"""Two operator processes with leader election against the real cluster, MinIO and worker pods.

Only the Lease's holder handles MediaJobs; killing it (SIGKILL) hands over to the standby within
the bound docs/operator.md gives ("Availability"), a SIGTERM within about one retry period; no
MediaJob created before or after either is handled twice (one Job, one Succeeded Event each).
A leader cut off from the API server (a TCP relay the test cuts) exits with code 3 within the
renew deadline, before the standby may take the Lease.

These operators watch only `mf-haleader<lane>-*`: the session's operator (tests/integration/
operator_process.py) watches `mf-test<lane>-*` and `mf-api<lane>-*`, and the Helm release's its
own namespace, so no third operator ever sees these MediaJobs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client

from tests.environment import (
    TEST_LANE,
    MinioSettings,
    ScratchNamespace,
    lane_prefix,
    restricted_namespace,
    unique_name,
    wait_until,
)
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_mediajob import gone, pods_created
from tests.media import make_photo

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "crds/mediajobs.yaml"
LOGS = REPO / ".local/logs"
GROUP, VERSION, PLURAL = "mediaflow.io", "v1alpha1", "mediajobs"
PREFIX = lane_prefix("mf-haleader")
LEASE = "test-operator"
# Short durations so that the test is quick; the rules are the same as with the chart's 15/10/2
# (MEDIAFLOW_TEST_LEADER_TIMING=15/10/2 measures those).
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = (
    int(x) for x in os.environ.get("MEDIAFLOW_TEST_LEADER_TIMING", "4/3/1").split("/")
)
# A standby sees the leader's last renewal at most one retry period after it was written (it
# reads every retry period), waits lease_duration from then, and takes the Lease at its next
# read: at most lease_duration + 2 x retry_period after the kill. One second more for reads on
# a loaded 2-core machine.
KILL_BOUND = LEASE_DURATION + 2 * RETRY_PERIOD + 1
# After SIGTERM the leader stops Kopf and then releases the Lease; the standby takes it at its
# next read. Kopf's graceful stop takes a few seconds here.
TERM_BOUND = 10 + RETRY_PERIOD


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def candidate(
    name: str, namespace: str, port: int, kubeconfig: Path | None = None
) -> OperatorProcess:
    env = {
        **({"KUBECONFIG": str(kubeconfig)} if kubeconfig else {}),
        "POD_NAME": name,
        "MEDIAFLOW_LEADER_ELECTION": "true",
        "MEDIAFLOW_LEADER_ELECTION_NAMESPACE": namespace,
        "MEDIAFLOW_LEADER_ELECTION_LEASE_NAME": LEASE,
        "MEDIAFLOW_LEADER_ELECTION_LEASE_DURATION_SECONDS": str(LEASE_DURATION),
        "MEDIAFLOW_LEADER_ELECTION_RENEW_DEADLINE_SECONDS": str(RENEW_DEADLINE),
        "MEDIAFLOW_LEADER_ELECTION_RETRY_PERIOD_SECONDS": str(RETRY_PERIOD),
    }
    log = LOGS / f"operator-leader{TEST_LANE}-{name}.log"
    log.unlink(missing_ok=True)
    return OperatorProcess.start(env, liveness_port=port, namespaces=(f"{PREFIX}-*",), log=log)


@pytest.fixture(scope="module")
def crd() -> None:
    subprocess.run(
        ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(CRD)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["kubectl", "wait", "--for=condition=Established", "crd/mediajobs.mediaflow.io"],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def scratch(kube: client.ApiClient, crd: None) -> Iterator[ScratchNamespace]:
    yield from restricted_namespace(kube, "mf-haleader")


def holder(kube: client.ApiClient, namespace: str) -> str:
    try:
        lease = client.CoordinationV1Api(kube).read_namespaced_lease(LEASE, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return ""
        raise
    return lease.spec.holder_identity or ""


def create(kube: client.ApiClient, namespace: str, key: str, inputs: int = 0) -> str:
    """A photo's MediaJob; with `inputs`, one of that many inputs (an API batch's shape)."""
    name = unique_name("ha")
    source = {"object": {"key": key}}
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MediaJob",
        "metadata": {"name": name},
        "spec": {
            "operation": "ImageConvert",
            **({"inputs": [source] * inputs} if inputs else {"input": source}),
            "imageConvert": {"format": "webp", "quality": 80},
        },
    }
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )
    return name


def status(kube: client.ApiClient, namespace: str, name: str) -> dict:
    mj = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
    return mj.get("status") or {}


def handled_lines(log: Path, names: list[str]) -> list[str]:
    """Lines of an operator's log that mention one of these MediaJobs (Kopf names the object
    in every line of a handler)."""
    return [line for line in log.read_text().splitlines() if any(n in line for n in names)]


def lines_before_leading(log: Path) -> list[str]:
    lines = log.read_text().splitlines()
    for index, line in enumerate(lines):
        if "acquired the Lease" in line:
            return lines[:index]
    return lines


def test_one_leader_hands_over_on_kill_and_on_sigterm_without_double_handling(
    kube: client.ApiClient, scratch: ScratchNamespace, minio_settings: MinioSettings, tmp_path
) -> None:
    ns = scratch.name
    key = f"{ns}/samples/photo.jpg"
    minio_settings.client().fput_object(
        minio_settings.bucket, key, str(make_photo(tmp_path / "photo.jpg"))
    )
    ports = {who: free_port() for who in ("a", "b", "a2", "c")}
    operators: dict[str, OperatorProcess] = {}
    names: list[str] = []
    measured: dict[str, float] = {}
    try:
        operators["a"] = candidate("a", ns, ports["a"])
        wait_until("a to lead", lambda: holder(kube, ns).startswith("a-"), timeout=30)
        operators["b"] = candidate("b", ns, ports["b"])  # live on its port as a standby

        # Before the kill: a handles it (its Job is named in the status).
        names.append(create(kube, ns, key))
        wait_until("a to handle it", lambda: status(kube, ns, names[0]).get("jobName"), 60)
        assert holder(kube, ns).startswith("a-")
        assert not handled_lines(operators["b"].log, names), "the standby handled a MediaJob"

        # A MediaJob of 30 photos, in its pod while the leader is killed: the next leader
        # takes its items over from the pod's log, each converted once.
        batch = create(kube, ns, key, inputs=30)
        names.append(batch)
        # Once an item runs, a has written every slot (a crash between the status and the
        # slots instead ends with the unwritten ones given a pod again: attempts 2).
        wait_until(
            "a's pod to run the items",
            lambda: status(kube, ns, batch).get("phase") in ("Running", "Succeeded"),
            60,
            0.1,
        )

        # kill -9 the leader; one more MediaJob right after it.
        operators["a"].process.kill()
        killed = time.monotonic()
        operators["a"].process.wait()
        names.append(create(kube, ns, key))
        wait_until(
            "b to take the Lease",
            lambda: holder(kube, ns).startswith("b-"),
            timeout=KILL_BOUND + 10,
            interval=0.1,
        )
        measured["kill: Lease taken"] = time.monotonic() - killed
        wait_until("b to handle it", lambda: status(kube, ns, names[1]).get("jobName"), 60, 0.1)
        measured["kill: first MediaJob handled"] = time.monotonic() - killed

        # The Deployment would restart the killed pod: it comes back as a standby.
        operators["a2"] = candidate("a2", ns, ports["a2"])
        time.sleep(2 * RETRY_PERIOD)
        assert holder(kube, ns).startswith("b-")

        # A standby told to stop (SIGTERM, as a rolling update does) goes at once and never
        # leads. In its container it is PID 1, which gets no signal it has no handler for:
        # before, it waited out the grace period and could take the Lease meanwhile.
        operators["c"] = candidate("c", ns, ports["c"])
        wait_until("c to stand by", lambda: "standby;" in operators["c"].log.read_text(), 30)
        operators["c"].process.send_signal(signal.SIGTERM)
        assert operators["c"].process.wait(timeout=10) == 0
        assert "withdrawn (stopping) as a standby" in operators["c"].log.read_text()
        assert "acquired the Lease" not in operators["c"].log.read_text()

        # A graceful stop of the leader (a rolling update): it releases the Lease.
        operators["b"].process.send_signal(signal.SIGTERM)
        terminated = time.monotonic()
        names.append(create(kube, ns, key))
        wait_until(
            "a2 to take the Lease",
            lambda: holder(kube, ns).startswith("a2-"),
            timeout=TERM_BOUND + 5,
            interval=0.1,
        )
        measured["sigterm: Lease taken"] = time.monotonic() - terminated
        wait_until("a2 to handle it", lambda: status(kube, ns, names[2]).get("jobName"), 60, 0.1)
        measured["sigterm: first MediaJob handled"] = time.monotonic() - terminated
        assert operators["b"].process.wait(timeout=30) == 0

        for name in names:
            wait_until(
                f"{name} to succeed",
                lambda name=name: status(kube, ns, name).get("phase") == "Succeeded",
                timeout=180,
            )
        print("handover:", json.dumps({k: round(v, 2) for k, v in measured.items()}))

        assert measured["kill: Lease taken"] <= KILL_BOUND, measured
        assert measured["sigterm: Lease taken"] <= TERM_BOUND, measured
        items = status(kube, ns, batch)["items"]
        assert [(i["phase"], i.get("attempts", 1)) for i in items] == [("Succeeded", 1)] * 30
        assert len({i["jobName"] for i in items}) == 1, items  # one pod for all, never again
        assert len(pods_created(scratch, items[0]["jobName"])) == 1
        for name in [n for n in names if n != batch]:
            # One Job, one pod: the Job controller's Events outlive the Job, which goes once
            # the result is recorded.
            job_name = status(kube, ns, name)["jobName"]
            assert len(pods_created(scratch, job_name)) == 1
            wait_until(f"{name}'s Job to go", lambda name=name: gone(scratch, name), timeout=60)
            events = scratch.core.list_namespaced_event(
                ns, field_selector=f"involvedObject.name={name},reason=Succeeded"
            ).items
            # The first was handled by a, which the kill may stop between its status write
            # and its Event (Events are best effort): never two, though.
            expected = {0, 1} if name == names[0] else {1}
            assert len(events) in expected, [e.message for e in events]
            assert sum(e.count or 1 for e in events) == len(events)
        # A standby never handled anything before it took the Lease.
        for who in ("b", "a2"):
            early = lines_before_leading(operators[who].log)
            assert not [line for line in early if any(n in line for n in names)], who
            assert not [line for line in early if "Handler" in line], who
    finally:
        # The leader's finalizer must run before the namespace goes.
        api = client.CustomObjectsApi(kube)
        for name in names:
            try:
                api.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
            except client.ApiException as error:
                if error.status != 404:
                    raise
        # No leader left (the test failed early): a later operator releases them.
        with contextlib.suppress(TimeoutError):
            wait_until(
                "the MediaJobs to go",
                lambda: not api.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"],
                timeout=60,
            )
        for operator in operators.values():
            operator.stop()


class ApiProxy:
    """A TCP relay to the API server that the test can cut: then every connection through it
    is closed and new ones are refused, as when a node loses the network."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut_off = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_off.is_set():
                downstream.close()
                continue
            upstream = socket.create_connection(self.upstream)
            self.sockets += [downstream, upstream]
            for a, b in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        self.cut_off.set()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.cut()
        self.listener.close()


def api_server() -> tuple[str, int]:
    kubeconfig = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    server = urlsplit(kubeconfig["clusters"][0]["cluster"]["server"])
    return server.hostname or "", server.port or 443


def proxied_kubeconfig(folder: Path, port: int) -> Path:
    """A copy of the kubeconfig that reaches the API server through 127.0.0.1:port (one of
    the names in the server's certificate)."""
    kubeconfig = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    kubeconfig["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


def test_a_leader_cut_off_from_the_api_server_exits_before_a_standby_takes_over(
    kube: client.ApiClient, scratch: ScratchNamespace, tmp_path
) -> None:
    ns = scratch.name
    proxy = ApiProxy(api_server())
    kubeconfig = proxied_kubeconfig(tmp_path, proxy.port)
    operators: dict[str, OperatorProcess] = {}
    try:
        operators["a"] = candidate("a", ns, free_port(), kubeconfig)
        wait_until("a to lead", lambda: holder(kube, ns).startswith("a-"), timeout=30)
        operators["b"] = candidate("b", ns, free_port())
        time.sleep(3 * RETRY_PERIOD)  # a renews a few times, b watches
        assert holder(kube, ns).startswith("a-")

        proxy.cut()
        cut = time.monotonic()
        # a cannot renew: its watchdog ends it renew_deadline after its last renewal began.
        assert operators["a"].wait_exit(timeout=RENEW_DEADLINE + 10) == 3, operators["a"].tail()
        exited = time.monotonic() - cut
        wait_until(
            "b to take the Lease",
            lambda: holder(kube, ns).startswith("b-"),
            timeout=LEASE_DURATION + 2 * RETRY_PERIOD + 10,
            interval=0.1,
        )
        taken = time.monotonic() - cut
        print(
            "cut off:",
            json.dumps({"leader exited": round(exited, 2), "Lease taken": round(taken, 2)}),
        )
        assert RENEW_DEADLINE - RETRY_PERIOD - 1 <= exited <= RENEW_DEADLINE + 0.5
        # The old leader was gone before the standby began: never two at work.
        assert taken > exited
        assert "lost the Lease" in operators["a"].tail()
    finally:
        proxy.close()
        for operator in operators.values():
            operator.stop()
