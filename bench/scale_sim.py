"""The operator at scale on the local cluster: a KWOK scale simulation, the settle benchmark.

`sim` (make scale-sim): NODES simulated nodes (KWOK, built from its pinned module by
hack/build-binaries.sh kwok), tainted and labelled so that nothing else lands there; KWOK
stages run each pod scheduled there from Pending to Running to Succeeded, its container ending
with exit code 0 and the worker's own success termination message. An operator process from
this tree watches one scratch namespace only and places worker pods on the simulated nodes
(MEDIAFLOW_WORKER_NODE_SELECTOR / _TOLERATIONS). N MediaJobs are created through the real API
server from a few parallel clients and followed until all are Succeeded; then the same N bare
Jobs (the same pod template, no operator) run through the same nodes, the Job controller's own
pace.

`settle` (make bench-settle): N MediaJobs whose input is missing, created by 4 parallel
`kubectl create` streams; each ends Failed/InputNotFound without a pod. Time to create, time
to settle after the last create, MediaJobs/s through the operator.

Both report operator CPU-seconds (utime+stime) and peak RSS (VmHWM) from /proc, and API-server
requests (apiserver_request_total deltas from the kube-apiserver's /metrics, less the
background rate measured just before) per object. Everything made is removed at the end, also
on Ctrl-C or failure: MediaJobs (finalizers dropped if the operator is gone), Jobs, the
namespaces, the nodes, the KWOK process, the MinIO object.

Needs the local environment (`make up`, `source .local/env`).
Usage: uv run python bench/scale_sim.py sim [--jobs 5000] [--nodes 100]
       uv run python bench/scale_sim.py settle [--jobs 2000] [--streams 4]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.environment import MinioSettings, kube_client, require_env  # noqa: E402
from tests.integration.processes import terminate, wait_ready  # noqa: E402

from mediaflow_core.constants import GROUP, PLURAL, VERSION  # noqa: E402
from mediaflow_core.mediajob import MediaJobSpec  # noqa: E402
from mediaflow_core.naming import MediaJobRef  # noqa: E402
from mediaflow_operator.builders import build_job  # noqa: E402
from mediaflow_operator.config import OperatorSettings  # noqa: E402
from mediaflow_worker.report import success_message  # noqa: E402

LOG_DIR = REPO / ".local/logs"
RUN_DIR = REPO / ".local/run"
# Marks everything a run makes: nodes (label, annotation KWOK selects on, taint), namespaces.
SIM_KEY = "mediaflow.io/scale-sim"
# Pod addresses KWOK hands out: outside the real pod (10.244/16) and service (10.96/16) ranges.
SIM_POD_CIDR = "10.250.0.0/16"
SPEC = {
    "operation": "ImageConvert",
    "imageConvert": {"format": "webp", "quality": 80},
}
# What the worker writes on success (mediaflow_worker.report.success_message, the same shape
# pipeline.verify_output returns): the operator's deciders take the result from it.
SIM_RESULT = {
    "size": 2345,
    "contentType": "image/webp",
    "format": "webp",
    "width": 64,
    "height": 48,
    "duration": None,
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------- pure parts (unit-tested)


def sim_node(name: str, run: str, *, cpu: str, memory: str, pods: int) -> dict[str, Any]:
    """A simulated node: KWOK manages it (annotation), only pods tolerating its taint and
    selecting its label land there. Worker pods request scratch space: the node has plenty."""
    resources = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "1Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {SIM_KEY: run, "kubernetes.io/hostname": name, "type": "kwok"},
            "annotations": {SIM_KEY: run, "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"taints": [{"key": SIM_KEY, "value": run, "effect": "NoSchedule"}]},
        "status": {"allocatable": resources, "capacity": resources},
    }


def worker_placement_env(run: str) -> dict[str, str]:
    """The operator settings that send worker pods to this run's simulated nodes only."""
    return {
        "MEDIAFLOW_WORKER_NODE_SELECTOR": json.dumps({SIM_KEY: run}),
        "MEDIAFLOW_WORKER_TOLERATIONS": json.dumps(
            [{"key": SIM_KEY, "operator": "Equal", "value": run, "effect": "NoSchedule"}]
        ),
    }


def pod_stages(run_seconds: float) -> list[dict[str, Any]]:
    """KWOK stages for pods on the simulated nodes: Pending -> Running, Running -> Succeeded
    after `run_seconds` with the worker's success message, deleted -> gone (finalizers too)."""
    message = success_message(SIM_RESULT)
    not_deleted = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}

    def phase(value: str) -> dict[str, Any]:
        return {"key": ".status.phase", "operator": "In", "values": [value]}

    pod = {"apiGroup": "v1", "kind": "Pod"}
    start = """\
{{ $now := Now }}
conditions:
- {lastTransitionTime: {{ $now | Quote }}, status: "True", type: Initialized}
- {lastTransitionTime: {{ $now | Quote }}, status: "True", type: Ready}
- {lastTransitionTime: {{ $now | Quote }}, status: "True", type: ContainersReady}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  started: true
  state: {running: {startedAt: {{ $now | Quote }}}}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""
    finish = (
        """\
{{ $now := Now }}
{{ $started := .status.startTime }}
conditions:
- {lastTransitionTime: {{ $now | Quote }}, status: "False", type: Ready,
   reason: PodCompleted}
- {lastTransitionTime: {{ $now | Quote }}, status: "False", type: ContainersReady,
   reason: PodCompleted}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: 0
      reason: Completed
      startedAt: {{ $started | Quote }}
      finishedAt: {{ $now | Quote }}
      message: """
        + json.dumps(message)  # a JSON string is a valid YAML double-quoted scalar
        + """
{{ end }}
phase: Succeeded
"""
    )
    return [
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Stage",
            "metadata": {"name": "mediaflow-pod-start"},
            "spec": {
                "resourceRef": pod,
                "selector": {"matchExpressions": [not_deleted, phase("Pending")]},
                "next": {"statusTemplate": start},
            },
        },
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Stage",
            "metadata": {"name": "mediaflow-pod-finish"},
            "spec": {
                "resourceRef": pod,
                "selector": {"matchExpressions": [not_deleted, phase("Running")]},
                "delay": {"durationMilliseconds": int(run_seconds * 1000)},
                "next": {"statusTemplate": finish},
            },
        },
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Stage",
            "metadata": {"name": "mediaflow-pod-delete"},
            "spec": {
                "resourceRef": pod,
                "selector": {
                    "matchExpressions": [
                        {"key": ".metadata.deletionTimestamp", "operator": "Exists"}
                    ]
                },
                "next": {"finalizers": {"empty": True}, "delete": True},
            },
        },
    ]


# KWOK reads no default stages once given a stages file: these are its own node-initialize
# and node-heartbeat (kustomize/stage/node in sigs.k8s.io/kwok v0.8.0), kept short. The
# node's capacity is what sim_node created it with. No node leases: with them, KWOK v0.8.0
# left pods on nodes it had just taken Pending for minutes (it manages a node's pods only
# once it holds its lease); status heartbeats every 20-45 s keep the nodes Ready instead.
NODE_STATUS = """\
{{ $now := Now }}
{{ $since := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $since | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
addresses:
{{ with NodeIP }}
- {address: {{ . | Quote }}, type: InternalIP}
{{ end }}
{{ with NodeName }}
- {address: {{ . | Quote }}, type: Hostname}
{{ end }}
allocatable:
{{ YAML .status.allocatable 1 }}
capacity:
{{ YAML .status.capacity 1 }}
nodeInfo:
  architecture: amd64
  operatingSystem: linux
  kubeletVersion: {{ printf "kwok-%s" Version }}
  kubeProxyVersion: {{ printf "kwok-%s" Version }}
  containerRuntimeVersion: {{ printf "kwok-%s" Version }}
  kernelVersion: {{ printf "kwok-%s" Version }}
  bootID: ""
  machineID: ""
  osImage: ""
  systemUUID: ""
phase: Running
"""


def node_stages() -> list[dict[str, Any]]:
    """KWOK stages for the simulated nodes: Ready at once, a status heartbeat now and then."""
    node = {"apiGroup": "v1", "kind": "Node"}
    ready = '.status.conditions.[] | select( .type == "Ready" ) | .status'
    return [
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Stage",
            "metadata": {"name": "mediaflow-node-initialize"},
            "spec": {
                "resourceRef": node,
                "selector": {"matchExpressions": [
                    {"key": ready, "operator": "NotIn", "values": ["True"]}
                ]},
                "next": {"statusTemplate": NODE_STATUS},
            },
        },
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Stage",
            "metadata": {"name": "mediaflow-node-heartbeat"},
            "spec": {
                "resourceRef": node,
                "selector": {"matchExpressions": [
                    {"key": ready, "operator": "In", "values": ["True"]}
                ]},
                "delay": {
                    "durationMilliseconds": 20000, "jitterDurationMilliseconds": 25000
                },
                "next": {"statusTemplate": NODE_STATUS},
            },
        },
    ]  # fmt: skip


_REQUEST = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def request_totals(metrics: str) -> Counter[tuple[str, str]]:
    """apiserver_request_total summed over code, scope and version: (resource[/sub], VERB)."""
    totals: Counter[tuple[str, str]] = Counter()
    for match in _REQUEST.finditer(metrics):
        labels = dict(_LABEL.findall(match["labels"]))
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        totals[(resource, labels.get("verb", ""))] += int(float(match["value"]))
    return totals


def requests_beyond_background(
    before: Counter[tuple[str, str]],
    after: Counter[tuple[str, str]],
    background_per_second: dict[tuple[str, str], float],
    seconds: float,
) -> dict[tuple[str, str], float]:
    """What a phase added: its delta less the background rate over its duration (never <0)."""
    out = {}
    for key in set(after) | set(before):
        extra = after[key] - before[key] - background_per_second.get(key, 0.0) * seconds
        if extra >= 0.5:
            out[key] = extra
    return out


# What the operator itself asks for a MediaJob, by (resource, verb; the API server's verbs:
# POST create, PUT update). The driver's MediaJob creates and watch, the Job controller's pod
# creates and Job status updates, the scheduler's bindings and KWOK's pod status writes are
# the others; Events come from the operator and the Job controller and scheduler alike (the
# bare-Job column shows the latter's share). Since the operator deletes a MediaJob's Job once
# its result is recorded (issue 11), the garbage collector deletes the Job's pods and URL
# Secret and reads them first: pod GET, Secret GET and DELETE, which the operator itself no
# longer makes (its only Secret read is after a 409 on create), are the garbage collector's.
OPERATOR_REQUESTS = {
    ("mediajobs", "GET"),
    ("mediajobs", "PATCH"),
    ("mediajobs", "PUT"),
    ("mediajobs/status", "GET"),
    ("mediajobs/status", "PATCH"),
    ("mediajobs/status", "PUT"),
    ("jobs", "POST"),
    ("jobs", "GET"),
    ("jobs", "LIST"),
    ("jobs", "PATCH"),
    ("jobs", "DELETE"),
    ("secrets", "POST"),
    ("secrets", "PATCH"),
    ("pods", "LIST"),
    ("pods/log", "GET"),
}


def steady_rate(times: list[float]) -> float:
    """Completions per second between the 10th and the 90th percentile of completion times
    (the ramp-up and the stragglers left out)."""
    ordered = sorted(times)
    low, high = len(ordered) // 10, len(ordered) - len(ordered) // 10 - 1
    span = ordered[high] - ordered[low] if high > low else 0.0
    return (high - low) / span if span > 0 else float("nan")


# ---------------------------------------------------------------- the I/O around them


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    return subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, check=check
    ).stdout


def scrape_requests() -> Counter[tuple[str, str]]:
    return request_totals(kubectl("get", "--raw", "/metrics"))


def kwok_binary() -> Path:
    """Build KWOK at its pin if it is not cached yet (hack/build-binaries.sh, ~4 min once)."""
    subprocess.run(["bash", str(REPO / "hack/build-binaries.sh"), "kwok"], check=True)
    path = subprocess.run(
        ["bash", "-c", f"source {REPO}/hack/lib.sh && echo $KWOK_BIN"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(path) / "kwok"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ProcessStats:
    cpu_seconds: float
    peak_rss_mib: float
    rss_mib: float


def process_stats(pid: int) -> ProcessStats:
    """utime+stime and VmHWM/VmRSS of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15)
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    kib = {k: int(status[k].split()[0]) for k in ("VmHWM", "VmRSS")}
    return ProcessStats(cpu, kib["VmHWM"] / 1024, kib["VmRSS"] / 1024)


@dataclass
class Run:
    """Everything one run made, so that it can be removed again."""

    tag: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    api: client.ApiClient = field(default_factory=kube_client)
    namespaces: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    metrics_port: int = 0  # the operator's /metrics (start_operator)
    objects: list[str] = field(default_factory=list)
    minio: MinioSettings = field(default_factory=MinioSettings.from_env)

    @property
    def label(self) -> str:
        return f"{self.tag or 'run'}-{self.id}"

    def namespace(self, suffix: str) -> str:
        name = f"mf-sim{self.tag}-{self.id}-{suffix}"
        body = {"metadata": {"name": name, "labels": {SIM_KEY: self.label}}}
        client.CoreV1Api(self.api).create_namespace(body)
        self.namespaces.append(name)
        return name

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        """A process of this run, its log in .local/logs, its PID in .local/run."""
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        out = (LOG_DIR / f"scale-sim{self.tag}-{name}.log").open("w")
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        out.close()
        self.processes[name] = process
        (RUN_DIR / f"scale-sim{self.tag}-{name}.pid").write_text(f"{process.pid}\n")
        return process.pid

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        terminate(process)
        (RUN_DIR / f"scale-sim{self.tag}-{name}.pid").unlink(missing_ok=True)


def start_kwok(run: Run, run_seconds: float) -> None:
    stages = RUN_DIR / f"scale-sim{run.tag}-stages.yaml"
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    stages.write_text(yaml.safe_dump_all(node_stages() + pod_stages(run_seconds), sort_keys=False))
    binary = kwok_binary()
    run.start(
        "kwok",
        [
            str(binary),
            "--kubeconfig", require_env("KUBECONFIG"),
            "--config", str(stages),
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={SIM_KEY}={run.label}",
            "--cidr", SIM_POD_CIDR,
            "--node-lease-duration-seconds", "0",
        ],
    )  # fmt: skip
    time.sleep(1)
    if run.processes["kwok"].poll() is not None:
        raise RuntimeError(f"kwok exited; see {LOG_DIR}/scale-sim{run.tag}-kwok.log")


def add_nodes(run: Run, count: int) -> None:
    core = client.CoreV1Api(run.api)
    for i in range(count):
        name = f"mf-sim{run.tag}-{run.id}-{i:03d}"
        core.create_node(sim_node(name, run.label, cpu="32", memory="256Gi", pods=110))
        run.nodes.append(name)

    def ready() -> bool:
        nodes = core.list_node(label_selector=f"{SIM_KEY}={run.label}").items
        return (
            sum(
                any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
                for n in nodes
            )
            == count
        )

    wait(f"{count} simulated nodes Ready", ready, timeout=60 + count)


def wait(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
    return result


def start_operator(run: Run, namespace: str, extra_env: dict[str, str]) -> int:
    """`python -m mediaflow_operator` from this tree, watching only `namespace`, its /metrics
    on a free port (`run.metrics_port`)."""
    port = free_port()
    run.metrics_port = free_port()
    env = {**os.environ, "MEDIAFLOW_METRICS_PORT": str(run.metrics_port), **extra_env}
    pid = run.start(
        "operator",
        [sys.executable, "-m", "mediaflow_operator", "--liveness-port", str(port),
         "--namespace", namespace],
        env,
    )  # fmt: skip

    def live() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return True
        except OSError:
            return False

    if not wait_ready(run.processes["operator"], live, timeout=90):
        raise RuntimeError(f"the operator exited; see {LOG_DIR}/scale-sim{run.tag}-operator.log")
    return pid


class Tracker:
    """Watches one namespace's objects and records, on this client's clock, when each first
    reached a terminal state (`done` decides from the object)."""

    def __init__(
        self, list_call: Callable[..., Any], done: Callable[[dict], str | None], **kwargs: Any
    ) -> None:
        self.list_call, self.done, self.kwargs = list_call, done, kwargs
        self.finished: dict[str, tuple[float, str]] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.serializer = client.ApiClient()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _see(self, obj: dict) -> None:
        state = self.done(obj)
        if state:
            with self.lock:
                self.finished.setdefault(obj["metadata"]["name"], (time.monotonic(), state))

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                listing = self.list_call(**self.kwargs, _preload_content=False)
                body = json.loads(listing.data)
                for item in body["items"]:
                    self._see(item)
                version = body["metadata"]["resourceVersion"]
                stream = watch.Watch().stream(
                    self.list_call, **self.kwargs, resource_version=version, timeout_seconds=30
                )
                for event in stream:
                    obj = event["object"]
                    if not isinstance(obj, dict):  # typed clients give models
                        obj = self.serializer.sanitize_for_serialization(obj)
                    self._see(obj)
                    if self.stopping.is_set():
                        break
            except (ApiException, ValueError, OSError) as error:  # 410 Gone: list again
                if not self.stopping.is_set():
                    log(f"watch restarted: {str(error)[:120]}")
                    time.sleep(0.5)

    def count(self) -> int:
        with self.lock:
            return len(self.finished)

    def stop(self) -> None:
        self.stopping.set()


def mediajob_state(obj: dict) -> str | None:
    status = obj.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed", "Cancelled"):
        reason = next(
            (c.get("reason") for c in status.get("conditions") or [] if c["type"] == "Succeeded"),
            "",
        )
        return f"{status['phase']}/{reason}"
    return None


def job_state(obj: dict) -> str | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
            return condition["type"]
    return None


def create_all(create: Callable[[int], None], count: int, clients: int) -> float:
    """Call create(i) for every i from `clients` threads; the seconds it took."""
    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(create, range(count)))
    return time.monotonic() - started


def per_thread_client() -> Callable[[], client.ApiClient]:
    local = threading.local()

    def get() -> client.ApiClient:
        if not hasattr(local, "api"):
            local.api = kube_client()
        return local.api

    return get


def measure_background(seconds: float) -> dict[tuple[str, str], float]:
    """API-server requests per second while this run does nothing (other work on the
    machine, the release's operator, the control plane's own loops)."""
    before = scrape_requests()
    time.sleep(seconds)
    after = scrape_requests()
    return {k: (after[k] - before[k]) / seconds for k in after if after[k] > before[k]}


@dataclass
class Phase:
    name: str
    count: int
    create_seconds: float
    all_done_seconds: float
    steady_per_second: float
    states: Counter[str]
    requests: dict[tuple[str, str], float]


def run_phase(
    name: str,
    count: int,
    create_everything: Callable[[], float],
    tracker: Tracker,
    background: dict[tuple[str, str], float],
    timeout: float,
) -> Phase:
    before = scrape_requests()
    started = time.monotonic()
    create_seconds = create_everything()
    log(f"{name}: {count} created in {create_seconds:.1f}s ({count / create_seconds:.0f}/s)")

    def done() -> bool:
        return tracker.count() >= count

    last = [0]

    def progress() -> bool:
        n = tracker.count()
        if n - last[0] >= max(count // 10, 1):
            log(f"{name}: {n}/{count} done")
            last[0] = n
        return done()

    wait(f"{count} {name} done", progress, timeout=timeout)
    ended = time.monotonic()
    after = scrape_requests()
    tracker.stop()
    times = [t for t, _ in tracker.finished.values()]
    states = Counter(s for _, s in tracker.finished.values())
    return Phase(
        name=name,
        count=count,
        create_seconds=create_seconds,
        all_done_seconds=max(times) - started,
        steady_per_second=steady_rate(times),
        states=states,
        requests=requests_beyond_background(before, after, background, ended - started),
    )


def report_requests(phases: list[Phase]) -> dict[str, float]:
    """Print requests per object by (resource, verb), rows of at least 0.1; the operator's
    share per MediaJob (its rows, plus the Events beyond the bare Jobs' when there are any)."""
    keys = sorted(
        (k for k in {k for p in phases for k in p.requests}
         if max(p.requests.get(k, 0) / p.count for p in phases) >= 0.1),
        key=lambda k: -max(p.requests.get(k, 0) / p.count for p in phases),
    )  # fmt: skip
    print(f"\n{'resource':28} {'verb':8} " + " ".join(f"{p.name:>12}" for p in phases))
    for key in keys:
        cells = " ".join(f"{p.requests.get(key, 0) / p.count:12.2f}" for p in phases)
        mark = "  (operator)" if key in OPERATOR_REQUESTS else ""
        print(f"{key[0]:28} {key[1]:8} {cells}{mark}")
    totals = {p.name: sum(p.requests.values()) / p.count for p in phases}
    print(f"{'all requests':37} " + " ".join(f"{totals[p.name]:12.2f}" for p in phases))
    mediajobs = phases[0]
    operator = sum(v for k, v in mediajobs.requests.items() if k in OPERATOR_REQUESTS)
    events = ("events", "POST")
    if len(phases) > 1:
        operator += max(0.0, mediajobs.requests.get(events, 0) - phases[1].requests.get(events, 0))
    else:
        operator += mediajobs.requests.get(events, 0)
    print(f"{'operator (marked rows + its Events)':37} {operator / mediajobs.count:12.2f}")
    print(
        "(deltas of apiserver_request_total less the background rate of the 10 s before; "
        "other work on the machine still adds noise)"
    )
    return {"all": totals[mediajobs.name], "operator": operator / mediajobs.count}


def cleanup(run: Run) -> None:
    """Remove what the run made, in an order that lets each owner finish its part."""
    custom, core = client.CustomObjectsApi(run.api), client.CoreV1Api(run.api)
    for namespace in run.namespaces:
        with contextlib.suppress(ApiException):
            custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    operator_up = "operator" in run.processes and run.processes["operator"].poll() is None

    def mediajobs_left() -> list[tuple[str, str]]:
        return [
            (ns, item["metadata"]["name"])
            for ns in run.namespaces
            for item in custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
        ]

    if operator_up:
        with contextlib.suppress(TimeoutError):
            wait("the operator to release the MediaJobs", lambda: not mediajobs_left(), 120)
    left = mediajobs_left()
    if left:
        log(f"dropping the finalizers of {len(left)} MediaJobs")
        for namespace, name in left:
            with contextlib.suppress(ApiException):
                custom.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, {"metadata": {"finalizers": None}}
                )
    run.stop("operator")
    for namespace in run.namespaces:  # Jobs and pods go with it; KWOK removes the pods
        with contextlib.suppress(ApiException):
            core.delete_namespace(namespace)

    def namespaces_gone() -> bool:
        names = {n.metadata.name for n in core.list_namespace(label_selector=SIM_KEY).items}
        return not names & set(run.namespaces)

    with contextlib.suppress(TimeoutError):
        wait("the run's namespaces to go", namespaces_gone, timeout=300)
    for node in run.nodes:
        with contextlib.suppress(ApiException):
            core.delete_node(node)
    run.stop("kwok")
    (RUN_DIR / f"scale-sim{run.tag}-stages.yaml").unlink(missing_ok=True)
    minio = run.minio.client()
    for key in run.objects:
        with contextlib.suppress(Exception):
            minio.remove_object(run.minio.bucket, key)
    log(f"cleaned up (namespaces {', '.join(run.namespaces) or '-'}, {len(run.nodes)} nodes)")


@contextlib.contextmanager
def guarded(run: Run) -> Iterator[Run]:
    """Clean up on success, failure, Ctrl-C or SIGTERM."""
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        yield run
    finally:
        # A second Ctrl-C or SIGTERM must not leave half the run behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            cleanup(run)
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous)


def time_scrapes(port: int, times: int = 7) -> tuple[float, float, int]:
    """Median and slowest wall seconds of `times` GETs of the operator's /metrics, and the
    size of the last answer in bytes (issue 13's goal: under 50 ms at 5,000 MediaJobs)."""
    took, size = [], 0
    for _ in range(times):
        started = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
            size = len(answer.read())
        took.append(time.monotonic() - started)
    return statistics.median(took), max(took), size


def print_operator(stats: ProcessStats, cpu_before: float) -> None:
    print(
        f"operator: {stats.cpu_seconds - cpu_before:.1f} CPU-seconds in the phase, "
        f"peak RSS {stats.peak_rss_mib:.0f} MiB (VmHWM), RSS now {stats.rss_mib:.0f} MiB"
    )


def simulate(
    jobs: int,
    nodes: int,
    clients: int,
    run_seconds: float,
    tag: str = "",
    background_seconds: float = 10,
) -> dict[str, Any]:
    """The scale simulation; returns its numbers (also printed)."""
    run = Run(tag=tag)
    with guarded(run):
        log(f"run {run.label}: {nodes} simulated nodes, {jobs} MediaJobs, then {jobs} bare Jobs")
        start_kwok(run, run_seconds)
        add_nodes(run, nodes)
        mj_ns, bare_ns = run.namespace("mj"), run.namespace("bare")
        key = f"{mj_ns}/input.jpg"
        run.minio.client().put_object(
            run.minio.bucket, key, io.BytesIO(b"\xff\xd8\xff" + b"\0" * 1021), 1024,
            content_type="image/jpeg",
        )  # fmt: skip
        run.objects.append(key)
        pid = start_operator(run, mj_ns, worker_placement_env(run.label))
        log(f"operator pid {pid}; measuring the background request rate")
        background = measure_background(background_seconds)
        api = per_thread_client()

        def create_mediajob(i: int) -> None:
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "MediaJob",
                "metadata": {"name": f"sim-{i:05d}"},
                "spec": {**SPEC, "input": {"object": {"key": key}}},
            }
            client.CustomObjectsApi(api()).create_namespaced_custom_object(
                GROUP, VERSION, mj_ns, PLURAL, body
            )

        tracker = Tracker(
            client.CustomObjectsApi(run.api).list_namespaced_custom_object,
            mediajob_state,
            group=GROUP, version=VERSION, namespace=mj_ns, plural=PLURAL,
        )  # fmt: skip
        cpu_before = process_stats(pid).cpu_seconds
        timeout = 300 + jobs
        mj = run_phase(
            "MediaJobs", jobs, lambda: create_all(create_mediajob, jobs, clients), tracker,
            background, timeout,
        )  # fmt: skip
        stats = process_stats(pid)
        # Every MediaJob is in the operator's store now: what a scrape costs at this size.
        scrape = time_scrapes(run.metrics_port)
        sample = client.CustomObjectsApi(run.api).get_namespaced_custom_object(
            GROUP, VERSION, mj_ns, PLURAL, "sim-00000"
        )
        # The same pod template without the operator: build_job's Job, relabelled and unowned.
        settings = OperatorSettings(**{  # the settings the operator read from the same env
            "s3_endpoint": "http://unused", "s3_access_key": "-", "s3_secret_key": "-",
            "worker_node_selector": {SIM_KEY: run.label},
            "worker_tolerations": json.loads(
                worker_placement_env(run.label)["MEDIAFLOW_WORKER_TOLERATIONS"]
            ),
        })  # fmt: skip
        spec = MediaJobSpec.model_validate({**SPEC, "input": {"object": {"key": key}}})

        def create_bare_job(i: int) -> None:
            ref = MediaJobRef(name=f"bare-{i:05d}", namespace=bare_ns, uid=str(uuid.uuid4()))
            job = build_job(ref, spec, settings, input_size=1024)
            labels = {SIM_KEY: run.label}
            job["metadata"].pop("ownerReferences")
            job["metadata"]["labels"] = labels
            job["spec"]["template"]["metadata"]["labels"] = labels
            client.BatchV1Api(api()).create_namespaced_job(bare_ns, job)

        tracker = Tracker(
            client.BatchV1Api(run.api).list_namespaced_job, job_state, namespace=bare_ns
        )
        bare = run_phase(
            "bare Jobs", jobs, lambda: create_all(create_bare_job, jobs, clients), tracker,
            background, timeout,
        )  # fmt: skip
        print(f"\n== scale simulation {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
              f"{jobs} objects on {nodes} simulated nodes, {clients} creating clients, "
              f"pods run {run_seconds:g}s; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        for phase in (mj, bare):
            print(
                f"{phase.name}: created in {phase.create_seconds:.1f}s, all done after "
                f"{phase.all_done_seconds:.1f}s, steady {phase.steady_per_second:.1f}/s, "
                f"states {dict(phase.states)}"
            )
        print_operator(stats, cpu_before)
        print(
            f"operator /metrics with {jobs} MediaJobs in its store: median "
            f"{scrape[0] * 1000:.1f} ms, slowest {scrape[1] * 1000:.1f} ms of 7 scrapes, "
            f"{scrape[2]} bytes"
        )
        requests = report_requests([mj, bare])
        result = (sample.get("status") or {}).get("result") or {}
        print(f"a MediaJob's recorded result: {json.dumps(result)}")
        return {
            "label": run.label,
            "namespace": mj_ns,
            "mediajobs": mj,
            "bare": bare,
            "operator": stats,
            "operator_cpu": stats.cpu_seconds - cpu_before,
            "metrics_scrape_seconds": scrape[0],
            "requests": requests,
            "result": result,
        }


def settle(jobs: int, streams: int, tag: str = "") -> dict[str, Any]:
    """The settle benchmark: N MediaJobs with a missing input from `streams` kubectl creates."""
    run = Run(tag=tag)
    with guarded(run):
        namespace = run.namespace("settle")
        pid = start_operator(run, namespace, {})
        log(f"operator pid {pid}; measuring the background request rate (10 s)")
        background = measure_background(10)
        tracker = Tracker(
            client.CustomObjectsApi(run.api).list_namespaced_custom_object,
            mediajob_state,
            group=GROUP, version=VERSION, namespace=namespace, plural=PLURAL,
        )  # fmt: skip
        documents = [
            yaml.safe_dump({
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "MediaJob",
                "metadata": {"name": f"settle-{i:05d}", "namespace": namespace},
                "spec": {**SPEC, "input": {"object": {"key": f"{namespace}/missing-{i}.jpg"}}},
            })
            for i in range(jobs)
        ]  # fmt: skip
        chunks = ["---\n".join(documents[s::streams]) for s in range(streams)]
        cpu_before = process_stats(pid).cpu_seconds

        def create(stream: int) -> None:
            kubectl("create", "-f", "-", "-o", "name", stdin=chunks[stream])

        phase = run_phase(
            "MediaJobs", jobs, lambda: create_all(create, streams, streams), tracker,
            background, timeout=300 + jobs,
        )  # fmt: skip
        stats = process_stats(pid)
        pods = client.CoreV1Api(run.api).list_namespaced_pod(namespace).items
        settled_after = phase.all_done_seconds - phase.create_seconds
        per_second = jobs / phase.all_done_seconds
        print(f"\n== settle benchmark {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
              f"{jobs} MediaJobs with a missing input, {streams} kubectl create streams; "
              f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        print(
            f"created in {phase.create_seconds:.1f}s ({jobs / phase.create_seconds:.0f}/s), "
            f"all settled {settled_after:.1f}s after the last create, "
            f"{per_second:.1f} MediaJobs/s through the operator; states {dict(phase.states)}; "
            f"pods made: {len(pods)}"
        )
        print_operator(stats, cpu_before)
        requests = report_requests([phase])
        return {
            "phase": phase,
            "settled_after": settled_after,
            "per_second": per_second,
            "operator": stats,
            "pods": len(pods),
            "requests": requests,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("sim", help="KWOK scale simulation (make scale-sim)")
    sim.add_argument("--jobs", type=int, default=5000)
    sim.add_argument("--nodes", type=int, default=100)
    sim.add_argument("--clients", type=int, default=4, help="parallel creating clients")
    sim.add_argument("--pod-seconds", type=float, default=1.0, help="simulated run time")
    bench = sub.add_parser("settle", help="2,000 MediaJobs with a missing input (bench-settle)")
    bench.add_argument("--jobs", type=int, default=2000)
    bench.add_argument("--streams", type=int, default=4)
    args = parser.parse_args()
    require_env("KUBECONFIG")
    if args.command == "sim":
        simulate(args.jobs, args.nodes, args.clients, args.pod_seconds)
    else:
        settle(args.jobs, args.streams)


if __name__ == "__main__":
    main()
