"""How much the MediaJob path adds over a bare Job running the same container.

For N small image conversions it creates, side by side and interleaved, N MediaJobs (through
the operator) and N bare Jobs whose pod runs the same worker with the same kind of presigned
URLs, and measures on this client's clock, from the create call:
  - to the Job's creation (MediaJobs only; bare Jobs are created by the call itself),
  - to the worker container's start (the pod's container reported running or terminated),
  - to completion (MediaJob phase Succeeded / Job condition Complete).

Needs the local environment (`make up`, `source .local/env`) and runs the operator itself.
Usage: uv run python bench/mediajob_latency.py [--jobs 50] [--parallel 4]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from kubernetes import client, watch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.environment import MinioSettings, kube_client, restricted_namespace  # noqa: E402
from tests.integration.operator_process import OperatorProcess  # noqa: E402
from tests.media import make_photo  # noqa: E402

from mediaflow_core.mediajob import MediaJobSpec  # noqa: E402
from mediaflow_core.naming import MediaJobRef  # noqa: E402
from mediaflow_operator.builders import build_job  # noqa: E402
from mediaflow_operator.config import OperatorSettings  # noqa: E402

GROUP, VERSION, PLURAL = "mediaflow.io", "v1alpha1", "mediajobs"
SPEC = {"operation": "ImageConvert", "imageConvert": {"format": "webp", "quality": 80}}


class Timeline:
    """Client-side times of what the watches saw, per object name."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, dict[str, float]] = {}

    def mark(self, name: str, what: str) -> None:
        with self.lock:
            self.times.setdefault(name, {}).setdefault(what, time.monotonic())


def watch_all(api: client.ApiClient, namespace: str, timeline: Timeline, stop: threading.Event):
    core, batch, custom = (
        client.CoreV1Api(api),
        client.BatchV1Api(api),
        client.CustomObjectsApi(api),
    )

    def pods() -> None:
        for event in watch.Watch().stream(core.list_namespaced_pod, namespace, timeout_seconds=0):
            pod = event["object"]
            labels = pod.metadata.labels or {}
            owner = labels.get("bench-name") or labels.get("mediaflow.io/mediajob")
            for status in pod.status.container_statuses or []:
                if owner and (status.state.running or status.state.terminated):
                    timeline.mark(owner, "started")
            if stop.is_set():
                return

    def jobs() -> None:
        for event in watch.Watch().stream(batch.list_namespaced_job, namespace, timeout_seconds=0):
            job = event["object"]
            labels = job.metadata.labels or {}
            if "mediaflow.io/mediajob" in labels:
                timeline.mark(labels["mediaflow.io/mediajob"], "job")
            if "bench-name" in labels:
                for condition in (job.status and job.status.conditions) or []:
                    if condition.type == "Complete" and condition.status == "True":
                        timeline.mark(labels["bench-name"], "done")
            if stop.is_set():
                return

    def mediajobs() -> None:
        stream = watch.Watch().stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            timeout_seconds=0,
        )
        for event in stream:
            obj = event["object"]
            if (obj.get("status") or {}).get("phase") == "Succeeded":
                timeline.mark(obj["metadata"]["name"], "done")
            if stop.is_set():
                return

    for target in (pods, jobs, mediajobs):
        threading.Thread(target=target, daemon=True).start()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument(
        "--parallel",
        type=int,
        default=2,
        help="conversions in flight per path; keep 2 x this x 500m CPU within the node's, or "
        "pods queue for CPU and the path created second waits longest",
    )
    args = parser.parse_args()

    api = kube_client()
    minio = MinioSettings.from_env()
    settings = OperatorSettings()
    subprocess.run(["kubectl", "apply", "--server-side", "-f", str(REPO / "crds/mediajobs.yaml")],
                   check=True, capture_output=True)  # fmt: skip
    operator = OperatorProcess.start()
    scratch = restricted_namespace(api, "mf-bench")
    ns = next(scratch)
    try:
        photo = make_photo(Path("/tmp/mf-bench-photo.jpg"), size="640x480")  # noqa: S108
        key = f"{ns.name}/bench/photo.jpg"
        minio.client().fput_object(minio.bucket, key, str(photo))
        timeline, stop = Timeline(), threading.Event()
        watch_all(api, ns.name, timeline, stop)
        time.sleep(1)
        custom, batch = client.CustomObjectsApi(api), client.BatchV1Api(api)
        created: dict[str, float] = {}
        signer = minio.client(internal=True)

        def bare_job(name: str) -> dict:
            spec = MediaJobSpec.model_validate({"input": {"object": {"key": key}}, **SPEC})
            ref = MediaJobRef(name=name, namespace=ns.name, uid="00000000-bench")
            job = build_job(ref, spec, settings, input_size=photo.stat().st_size)
            job = copy.deepcopy(job)
            job["metadata"]["name"] = name
            # The URLs, as the operator hands them over: a Secret mounted as files (made
            # before the clock starts, see submit).
            volumes = job["spec"]["template"]["spec"]["volumes"]
            next(v for v in volumes if v["name"] == "urls")["secret"]["secretName"] = name
            del job["metadata"]["ownerReferences"]
            job["metadata"]["labels"] = {"bench-name": name}
            job["spec"]["template"]["metadata"]["labels"] = {"bench-name": name}
            return job

        def submit(kind: str, i: int) -> str:
            name = f"{kind}-{i:03d}"
            if kind == "bare":
                body = bare_job(name)
                urls = {
                    "input-url": signer.presigned_get_object(minio.bucket, key, timedelta(hours=1)),
                    "output-url": signer.presigned_put_object(
                        minio.bucket, f"{ns.name}/bench/{name}", timedelta(hours=1)
                    ),
                }
                ns.core.create_namespaced_secret(
                    ns.name, {"metadata": {"name": name}, "stringData": urls}
                )
                created[name] = time.monotonic()
                batch.create_namespaced_job(ns.name, body)
            else:
                body = {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "MediaJob",
                    "metadata": {"name": name},
                    "spec": {"input": {"object": {"key": key}}, **SPEC},
                }
                created[name] = time.monotonic()
                custom.create_namespaced_custom_object(GROUP, VERSION, ns.name, PLURAL, body)
            return name

        # Interleave the two paths in waves so both see the same load.
        for start in range(0, args.jobs, args.parallel):
            wave = [submit(kind, i) for i in range(start, min(start + args.parallel, args.jobs))
                    for kind in ("mj", "bare")]  # fmt: skip
            deadline = time.monotonic() + 300
            while not all("done" in timeline.times.get(n, {}) for n in wave):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"wave starting at {start} did not finish")
                time.sleep(0.05)
        stop.set()

        def stats(kind: str, what: str) -> tuple[float, float]:
            values = [
                timeline.times[n][what] - created[n]
                for n in created
                if n.startswith(kind) and what in timeline.times.get(n, {})
            ]
            values.sort()
            return statistics.median(values), values[int(len(values) * 0.9) - 1]

        print(f"\n{args.jobs} image conversions per path, {args.parallel} in flight per path\n")
        header = ("from create call to", "MediaJob p50", "bare Job p50", "added p50")
        print(f"{header[0]:28} {header[1]:>13} {header[2]:>13} {header[3]:>10}"
              f" {'MediaJob p90':>13} {'bare Job p90':>13}")  # fmt: skip
        for what, label in (("job", "Job created"), ("started", "container started"),
                            ("done", "Succeeded / Complete")):  # fmt: skip
            mj50, mj90 = stats("mj", what)
            if what == "job":
                print(
                    f"{label:28} {mj50:12.2f}s {'(0)':>13} {mj50:9.2f}s {mj90:12.2f}s {'(0)':>13}"
                )
                continue
            bare50, bare90 = stats("bare", what)
            print(f"{label:28} {mj50:12.2f}s {bare50:12.2f}s {mj50 - bare50:9.2f}s"
                  f" {mj90:12.2f}s {bare90:12.2f}s")  # fmt: skip
        return 0
    finally:
        operator.stop()
        next(scratch, None)


if __name__ == "__main__":
    sys.exit(main())
