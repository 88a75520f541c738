"""The release's worker NetworkPolicy, enforced (hack/cluster-up.sh runs kube-router's policy
controller): a pod labelled as the operator labels worker pods reaches the object storage and
DNS and nothing else of the cluster; the same pod without those labels reaches all of it, so a
refused connection is the policy's doing, not a broken network.

The release is the one `make up` installs: hack/helm-up.sh gives the policy the environment's
addresses (MinIO and CoreDNS on the host, at the bridge address 10.244.0.1).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml

from mediaflow_core import constants as c
from mediaflow_operator.builders import WORKER_UID
from tests.e2e.conftest import RELEASE, run
from tests.environment import unique_name

NODE_IP = "10.244.0.1"  # the bridge address: MinIO, CoreDNS, kube-apiserver, kubelet
MINIO = (NODE_IP, 9000)
KUBERNETES_SERVICE = ("10.96.0.1", 443)
CLUSTER_DNS = ("10.96.0.10", 53)
IMAGE = "mediaflow.local/mediaflow:dev"
LISTEN_PORT = 8080
CONNECT_TIMEOUT = 2.0
METADATA = ("169.254.169.254", 80)

# Runs inside the pods: TCP connects bounded by a timeout, and name lookups through the pod's
# resolver. Prints {target: "open" | "refused" | "timeout" | "error: ..." | [addresses]}.
PROBE = """
import json, socket, sys
timeout = float(sys.argv[1])
out = {}
for kind, host, port in json.loads(sys.argv[2]):
    key = f"{kind} {host}:{port}"
    if kind == "dns":
        try:
            out[key] = sorted({a[4][0] for a in socket.getaddrinfo(host, port, socket.AF_INET)})
        except OSError as e:
            out[key] = f"error: {e}"
        continue
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        out[key] = "open"
    except ConnectionRefusedError:
        out[key] = "refused"
    except TimeoutError:
        out[key] = "timeout"
    except OSError as e:
        out[key] = f"error: {e}"
print(json.dumps(out))
"""

# The pods' program: listen (to show that ingress is refused too), then wait to be probed.
SERVE = f"""
import socket, time
s = socket.socket()
s.bind(("0.0.0.0", {LISTEN_PORT}))
s.listen()
time.sleep(900)
"""


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    ip: str

    def probe(self, *targets: tuple[str, str, int]) -> dict[str, object]:
        out = run(
            [
                "kubectl",
                "-n",
                self.namespace,
                "exec",
                self.name,
                "--",
                "python3",
                "-c",
                PROBE,
                str(CONNECT_TIMEOUT),
                json.dumps(targets),
            ],
            timeout=60,
        )
        return json.loads(out)

    def tcp(self, host: str, port: int) -> object:
        return self.probe(("tcp", host, port))[f"tcp {host}:{port}"]


def pod_manifest(name: str, namespace: str, labels: dict[str, str]) -> dict:
    """A pod as restricted as a worker pod (builders.py), running SERVE from the image."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 1,
            "activeDeadlineSeconds": 600,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": WORKER_UID,
                "runAsGroup": WORKER_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "-c", SERVE],
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "64Mi"},
                        "limits": {"cpu": "200m", "memory": "64Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def pods(release: str) -> Iterator[tuple[Pod, Pod]]:
    """(worker, control): the first with exactly the labels the operator puts on worker pods,
    the second with none of them; both Ready in the release namespace, deleted afterwards."""
    worker = unique_name("np-worker")
    control = unique_name("np-control")
    labels = {c.LABEL_MANAGED_BY: c.MANAGED_BY, c.LABEL_MEDIAJOB: unique_name("np-job")}
    manifests = [
        pod_manifest(worker, release, labels),
        pod_manifest(control, release, {"app.kubernetes.io/name": "np-control"}),
    ]
    try:
        run(["kubectl", "apply", "-f", "-"], stdin=yaml.safe_dump_all(manifests))
        run(
            [
                *("kubectl", "-n", release, "wait", "--for=condition=Ready", "--timeout=120s"),
                *(f"pod/{worker}", f"pod/{control}"),
            ],
            timeout=150,
        )
        ips = [
            run(["kubectl", "-n", release, "get", "pod", n, "-o", "jsonpath={.status.podIP}"])
            for n in (worker, control)
        ]
        yield Pod(worker, release, ips[0]), Pod(control, release, ips[1])
    finally:
        subprocess.run(
            [
                *("kubectl", "-n", release, "delete", "pod", worker, control),
                *("--ignore-not-found", "--wait=false"),
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="module")
def api_targets(release: str) -> list[tuple[str, int]]:
    """The release's API Service (ClusterIP, port) and its pods' (IP, target port)."""
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=api"
    service = json.loads(
        run(["kubectl", "-n", release, "get", "service", "-l", selector, "-o", "json"])
    )["items"][0]
    targets = [(service["spec"]["clusterIP"], service["spec"]["ports"][0]["port"])]
    selector = f"kubernetes.io/service-name={service['metadata']['name']}"
    slices = json.loads(
        run(["kubectl", "-n", release, "get", "endpointslices", "-l", selector, "-o", "json"])
    )["items"]
    for s in slices:
        port = s["ports"][0]["port"]
        for endpoint in s["endpoints"]:
            if (endpoint.get("conditions") or {}).get("ready"):
                targets += [(address, port) for address in endpoint["addresses"]]
    assert len(targets) >= 2, f"no ready API endpoint: {slices}"
    return targets


@pytest.fixture(scope="module")
def enforced(pods: tuple[Pod, Pod], api_targets: list[tuple[str, int]]) -> tuple[Pod, Pod]:
    """The pods once the policy applies to the worker pod: the policy controller programs a
    new pod's rules after it learns the pod's address, within seconds."""
    worker, _ = pods
    api_pod = api_targets[-1]
    started = time.monotonic()
    while worker.tcp(*api_pod) == "open":
        assert time.monotonic() - started < 30, "the worker policy did not apply within 30 s"
        time.sleep(1)
    return pods


def test_worker_pod_reaches_object_storage_and_dns(enforced: tuple[Pod, Pod]) -> None:
    worker, _ = enforced
    result = worker.probe(
        ("tcp", *MINIO),
        ("tcp", NODE_IP, 53),
        ("dns", "kubernetes.default.svc.cluster.local", 443),
    )
    assert result == {
        f"tcp {MINIO[0]}:{MINIO[1]}": "open",
        f"tcp {NODE_IP}:53": "open",
        "dns kubernetes.default.svc.cluster.local:443": [KUBERNETES_SERVICE[0]],
    }


def test_worker_pod_reaches_nothing_else_of_the_cluster(
    enforced: tuple[Pod, Pod], api_targets: list[tuple[str, int]]
) -> None:
    worker, control = enforced
    denied = [
        KUBERNETES_SERVICE,  # the Kubernetes API Service
        (NODE_IP, 6443),  # the kube-apiserver itself
        (NODE_IP, 10250),  # the kubelet
        *api_targets,  # the MediaFlow API: Service and pod
        (control.ip, LISTEN_PORT),  # any other pod
        # This machine's other addresses (here a 192.0.2.0/24 one, outside the private
        # ranges), where MinIO and the kubelet listen too.
        *[(address, port) for address in host_addresses() for port in (MINIO[1], 10250)],
    ]
    result = worker.probe(*[("tcp", host, port) for host, port in denied])
    reached = {target: state for target, state in result.items() if state == "open"}
    assert not reached, f"the worker pod reached {reached}"


def test_pod_without_the_worker_labels_reaches_them_all(
    enforced: tuple[Pod, Pod], api_targets: list[tuple[str, int]]
) -> None:
    """The control: the same pod, unlabelled, gets through, so the worker's refusals above
    come from the policy."""
    _, control = enforced
    reachable = [MINIO, KUBERNETES_SERVICE, (NODE_IP, 6443), *api_targets]
    result = control.probe(*[("tcp", host, port) for host, port in reachable])
    assert set(result.values()) == {"open"}, result
    dns = control.probe(("dns", "kubernetes.default.svc.cluster.local", 443))
    assert list(dns.values()) == [[KUBERNETES_SERVICE[0]]]


def test_worker_pod_accepts_no_connections(enforced: tuple[Pod, Pod]) -> None:
    worker, control = enforced
    # It listens (seen from inside, over loopback), yet the control pod may not connect.
    assert worker.tcp("127.0.0.1", LISTEN_PORT) == "open"
    assert control.tcp(worker.ip, LISTEN_PORT) != "open"


def host_addresses() -> list[str]:
    """This machine's global IPv4 addresses other than the bridge's."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    addresses = [line.split()[3].split("/")[0] for line in out.splitlines()]
    return [a for a in addresses if a != NODE_IP]


def metadata_route_stays_on_this_machine() -> bool:
    """Whether a packet to the metadata address would go nowhere off this machine."""
    route = subprocess.run(
        ["ip", "route", "get", METADATA[0]], capture_output=True, text=True, check=False
    )
    if route.returncode != 0:  # no route at all
        return True
    return route.stdout.split()[0] in {"unreachable", "blackhole", "prohibit", "local"}


def test_worker_pod_cannot_reach_cloud_metadata(enforced: tuple[Pod, Pod]) -> None:
    if not metadata_route_stays_on_this_machine():
        pytest.skip(
            f"{METADATA[0]} routes off this machine here; the tests send nothing there "
            "(tests/unit/test_manifests_chart.py checks the policy excepts 169.254.0.0/16)"
        )
    worker, _ = enforced
    assert worker.tcp(*METADATA) != "open"
