"""A MediaJob of many small photos (spec.inputs) against the bare encoder, in one run.

    source .local/env && uv run python bench/many_photos.py [--photos 100] [--size 640x480]

Starts an operator process from this tree for one scratch namespace `mf-bench-*`, uploads
`--photos` distinct JPEGs, and for each case (WebP q85, AVIF q60, a resize to 320 px wide
WebP) creates one MediaJob listing them all in `spec.inputs`, then reads its warm pod's log
with timestamps. Reported per photo:

- in the pod: from the first item's start to the last item's outcome, divided by the number
  of photos (the pod converts `MEDIAFLOW_WARM_CONCURRENCY` at once, on this machine's cores,
  with every check of the worker: fetch, sniffing, header limits, encode, full decode of the
  output, upload);
- end to end: from the MediaJob's creation to its `Succeeded`, divided likewise (includes
  the pod's start);
- bare: the worker's own encoder command (cwebp, avifenc; cwebp -resize for the resize) on
  the same photos on this machine, one thread, one after the other, without any check,
  fetch or upload;

and the ratio in-pod / bare (the issue's goal: within 2x).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from kubernetes import client

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.photo_latency import start_operator, wait_healthy  # noqa: E402
from tests.environment import MinioSettings, kube_client, restricted_namespace  # noqa: E402
from tests.integration.processes import terminate  # noqa: E402
from tests.media import make_photo  # noqa: E402

from mediaflow_core import constants as c  # noqa: E402

CASES = {
    "webp": ("ImageConvert", {"imageConvert": {"format": "webp", "quality": 85}}),
    "avif": ("ImageConvert", {"imageConvert": {"format": "avif", "quality": 60}}),
    "resize": ("ImageResize", {"imageResize": {"width": 320, "format": "webp"}}),
}


def bare(case: str, paths: list[Path], out: Path) -> float:
    """The worker's own encoder command lines (mediaflow_worker.commands), one thread, one
    photo after the other."""
    from mediaflow_worker.commands import avifenc_args, cwebp_args

    commands = {
        "webp": lambda p, o: cwebp_args(str(p), f"{o}.webp", 85, False, 1),
        "avif": lambda p, o: avifenc_args(str(p), f"{o}.avif", 60, 1),
        "resize": lambda p, o: [
            *cwebp_args(str(p), f"{o}.webp", 85, False, 1)[:-2],
            "-resize",
            "320",
            "0",
            "--",
            str(p),
        ],
    }
    started = time.monotonic()
    for n, path in enumerate(paths):
        subprocess.run(
            commands[case](path, out / f"{case}{n}"), check=True, stdout=subprocess.DEVNULL
        )
    return time.monotonic() - started


def in_pod_seconds(core: client.CoreV1Api, namespace: str, job: str) -> float:
    """First item-start to last item outcome, from the warm pod's log timestamps."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"{c.LABEL_SESSION}={job}").items
    text = core.read_namespaced_pod_log(
        pods[0].metadata.name, namespace, container="worker", timestamps=True
    )
    starts, ends = [], []
    for line in text.splitlines():
        stamp, _, rest = line.partition(" ")
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if '"event":"item-start"' in rest:
            starts.append(when)
        elif '"event":"item"' in rest:
            ends.append(when)
    return (max(ends) - min(starts)).total_seconds()


def phases(core: client.CoreV1Api, namespace: str, job: str) -> dict[str, float]:
    """Median milliseconds between consecutive log lines of an item ("fetch" is the time
    from the line before to the fetch's end), from the warm pod's log timestamps. Only
    meaningful when the pod converts one item at a time (--concurrency 1): lines of items
    converted at once interleave."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"{c.LABEL_SESSION}={job}").items
    text = core.read_namespaced_pod_log(
        pods[0].metadata.name, namespace, container="worker", timestamps=True
    )
    spans: dict[str, list[float]] = {}
    before: tuple[str, datetime] | None = None
    for line in text.splitlines():
        stamp, _, rest = line.partition(" ")
        try:
            event = json.loads(rest)["event"]
        except (ValueError, KeyError, TypeError):
            continue
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if event == "item-start":
            before = (event, when)
            continue
        if before is None:
            continue
        spans.setdefault(f"{before[0]} -> {event}", []).append(
            (when - before[1]).total_seconds() * 1000
        )
        before = None if event == "item" else (event, when)
    return {name: statistics.median(values) for name, values in spans.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument(
        "--concurrency", type=int, default=None,
        help="items a warm pod converts at once (default: the operator's, 2); with 1 the "
        "phases of an item are printed too",
    )  # fmt: skip
    args = parser.parse_args()
    kube = kube_client()
    custom, core = client.CustomObjectsApi(kube), client.CoreV1Api(kube)
    minio = MinioSettings.from_env()
    scratch = restricted_namespace(kube, "mf-bench")
    namespace = next(scratch).name
    port = 18720
    operator = start_operator(
        namespace, None, REPO / ".local/logs/bench-many.log", port,
        extra_env={
            "MEDIAFLOW_WARM_IDLE_SECONDS": "5",
            **({"MEDIAFLOW_WARM_CONCURRENCY": str(args.concurrency)} if args.concurrency else {}),
        },
    )  # fmt: skip
    rows = []
    try:
        wait_healthy(port)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            photo = make_photo(folder / "photo.jpg", size=args.size).read_bytes()
            paths = []
            keys = []
            for n in range(args.photos):
                path = folder / f"p{n}.jpg"
                path.write_bytes(photo)
                paths.append(path)
                key = f"{namespace}/photos/{n}.jpg"
                minio.client().put_object(minio.bucket, key, io.BytesIO(photo), len(photo))
                keys.append(key)
            for case in args.cases.split(","):
                operation, options = CASES[case]
                name = f"many-{case}"
                body = {
                    "apiVersion": c.API_VERSION, "kind": c.KIND, "metadata": {"name": name},
                    "spec": {"operation": operation, **options,
                             "inputs": [{"object": {"key": k}} for k in keys]},
                }  # fmt: skip
                started = time.monotonic()
                custom.create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL,
                                                       body)  # fmt: skip
                while True:
                    mj = custom.get_namespaced_custom_object(
                        c.GROUP, c.VERSION, namespace, c.PLURAL, name
                    )
                    status = mj.get("status") or {}
                    if status.get("phase") in ("Succeeded", "Failed"):
                        break
                    if time.monotonic() - started > 900:
                        raise SystemExit(f"{name} did not finish in 900 s")
                    time.sleep(0.2)
                e2e = time.monotonic() - started
                failed = [i for i in status["items"] if i["phase"] != "Succeeded"]
                if failed:
                    raise SystemExit(f"{name}: {len(failed)} items failed: {failed[0]}")
                pod = in_pod_seconds(core, namespace, status["items"][0]["jobName"])
                if args.concurrency == 1:
                    for span, ms in phases(core, namespace, status["items"][0]["jobName"]).items():
                        print(f"  {case} {span:28} {ms:7.1f} ms (median)", file=sys.stderr)
                plain = bare(case, paths, folder)
                rows.append((case, pod, e2e, plain))
                print(f"{case}: in pod {pod:.2f} s, end to end {e2e:.2f} s, bare {plain:.2f} s",
                      file=sys.stderr)  # fmt: skip
                time.sleep(7)  # the warm pod ends (idle 5 s): the next case starts cold
        n = args.photos
        print(f"{n} photos of {args.size}, per photo (ms):")
        print(f"{'case':8}{'in pod':>10}{'e2e':>10}{'bare':>10}{'pod/bare':>10}")
        for case, pod, e2e, plain in rows:
            print(f"{case:8}{pod / n * 1000:10.1f}{e2e / n * 1000:10.1f}{plain / n * 1000:10.1f}"
                  f"{pod / plain:10.2f}")  # fmt: skip
        subprocess.run(["kubectl", "-n", namespace, "delete", "mediajobs", "--all",
                        "--timeout=120s"], check=False, capture_output=True)  # fmt: skip
    finally:
        terminate(operator)
        for _ in scratch:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
