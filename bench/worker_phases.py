"""Where a small job's worker time goes: a phase breakdown against real MinIO presigned URLs.

    source .local/env && uv run python bench/worker_phases.py [--runs 7] [--size 640x480]
    uv run python bench/worker_phases.py --loopback [--before DIR]   # no MinIO needed

Generates a JPEG with ffmpeg, puts it in the environment's MinIO (MINIO_* from .local/env), or
with --loopback serves it from an HTTP server on 127.0.0.1 that also takes the PUT, writes
presigned GET/PUT URLs into files of a directory as the pod's Secret volume holds them
(MEDIAFLOW_URL_DIR), and runs `mediaflow-worker` as a local process, as the pod runs it (no
arguments, MEDIAFLOW_* environment, ImageConvert to WebP at quality 85 as the operator sends
it), with the tools installed on this host (the image installs the same Debian packages).

Phases come from the arrival time of the worker's JSON log lines (it flushes each line), the
process's start and its exit; the parts that no log line separates (interpreter, imports,
libmagic, pydantic, the bare tools) are measured on their own in separate processes. Medians of
`--runs` alternating rounds; noise only adds time, so the minimum is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from minio import Minio

OPTIONS = '{"format":"webp","quality":85}'
WORKER = shutil.which("mediaflow-worker") or "mediaflow-worker"


def minio() -> Minio:
    endpoint = os.environ["MINIO_ENDPOINT"]
    secure = endpoint.startswith("https://")
    host = endpoint.split("://", 1)[-1].rstrip("/")
    return Minio(
        host,
        access_key=os.environ["MINIO_ACCESS_KEY"],
        secret_key=os.environ["MINIO_SECRET_KEY"],
        secure=secure,
        region=os.environ.get("MINIO_REGION") or None,
    )


def loopback(root: Path) -> str:
    """GET /NAME serves root/NAME; PUT discards the body. Returns the base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            data = (root / self.path.split("?")[0].lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def run_worker(env: dict[str, str]) -> dict[str, float]:
    """Seconds from the process's start to each log event (first of its name), and to exit;
    "cpu": CPU seconds (user + system) of the process and the tools it ran."""
    started = time.monotonic()
    proc = subprocess.Popen([WORKER], env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    marks: dict[str, float] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)["event"]
        marks.setdefault(event, time.monotonic() - started)
    _, status, usage = os.wait4(proc.pid, 0)  # reaps it, with the CPU of its whole tree
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"the worker failed ({proc.returncode}); last events: {marks}")
    marks["exit"] = time.monotonic() - started
    marks["cpu"] = usage.ru_utime + usage.ru_stime
    return marks


def timed(args: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


PY = sys.executable
SEPARATE = {
    "python -c pass": [PY, "-c", "pass"],
    "python -S -c pass (no site)": [PY, "-S", "-c", "pass"],
    "import mediaflow_worker.__main__": [PY, "-c", "import mediaflow_worker.__main__"],
    "+ pipeline, settings (before the job)": [
        PY,
        "-c",
        "import mediaflow_worker.__main__, mediaflow_worker.pipeline, mediaflow_worker.settings",
    ],
    "+ libmagic load and one sniff": [
        PY,
        "-c",
        "import sys, mediaflow_worker.pipeline as p; p.sniff(sys.argv[1], 'image')",
        "{jpeg}",
    ],
    "pydantic + option models + one validation": [
        PY,
        "-c",
        f"from mediaflow_core.options import parse_options; "
        f"parse_options('ImageConvert', '{OPTIONS}')",
    ],
    "cwebp -q 85 (bare)": ["cwebp", "-quiet", "-q", "85", "{jpeg}", "-o", "{webp}"],
    "dwebp -yuv (the verify decode)": ["dwebp", "-quiet", "{webp}", "-yuv", "-o", "/dev/null"],
}

# (label, from event, to event): the worker's phases as its log separates them.
PHASES = [
    ("interpreter + imports + settings", None, "start"),
    ("options (now: pydantic) + connect", "start", "fetch"),
    ("download + libmagic sniff", "fetch", "sniffed"),
    ("header parse + limits", "sniffed", "inspected"),
    ("plan + encoder start", "inspected", "convert"),
    ("encoder", "convert", "converted"),
    ("output checks + upload + decode", "converted", "verified"),
    ("termination message + log", "verified", "done"),
    ("exit", "done", "exit"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--no-verify", action="store_true", help="MEDIAFLOW_VERIFY_DECODE=0")
    parser.add_argument(
        "--loopback", action="store_true", help="serve the input from 127.0.0.1, not MinIO"
    )
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="also run, alternately, the worker whose packages are in DIR/operator and DIR/core "
        "(a copy of an older tree; PYTHONPATH puts them ahead of the installed ones)",
    )
    args = parser.parse_args()

    client = None if args.loopback else minio()
    bucket = os.environ.get("MINIO_BUCKET", "")
    tmp = Path(tempfile.mkdtemp(prefix="worker-phases-"))
    try:
        jpeg, webp = tmp / "in.jpg", tmp / "out.webp"
        subprocess.run(
            [
                *("ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"),
                *(f"testsrc2=size={args.size}:rate=1", "-frames:v", "1", "-q:v", "3", str(jpeg)),
            ],
            check=True,
        )
        key = f"bench/worker-phases-{os.getpid()}"
        urls = tmp / "urls"
        urls.mkdir()
        if client is None:
            base = loopback(tmp)
            get_url = f"{base}/in.jpg?X-Amz-Signature=x"
            put_url = f"{base}/out?X-Amz-Signature=x"
        else:
            client.fput_object(bucket, f"{key}/in.jpg", str(jpeg), content_type="image/jpeg")
            hour = timedelta(hours=1)
            get_url = client.presigned_get_object(bucket, f"{key}/in.jpg", expires=hour)
            put_url = client.presigned_put_object(bucket, f"{key}/out.webp", expires=hour)
        (urls / "input-url").write_text(get_url)
        (urls / "output-url").write_text(put_url)
        env = {
            **os.environ,
            "MEDIAFLOW_OPERATION": "ImageConvert",
            "MEDIAFLOW_OPTIONS": OPTIONS,
            "MEDIAFLOW_URL_DIR": str(urls),
            "MEDIAFLOW_WORK_DIR": str(tmp / "work"),
            "MEDIAFLOW_TERMINATION_LOG": str(tmp / "termination-log"),
            "MEDIAFLOW_THREADS": "1",
            "MEDIAFLOW_VERIFY_DECODE": "0" if args.no_verify else "1",
        }
        subprocess.run(["cwebp", "-quiet", "-q", "85", str(jpeg), "-o", str(webp)], check=True)
        fill = {"{jpeg}": str(jpeg), "{webp}": str(webp)}
        separate = {k: [fill.get(a, a) for a in v] for k, v in SEPARATE.items()}

        variants = {"now": env}
        if args.before:
            old = Path(args.before).resolve()
            variants = {"before": {**env, "PYTHONPATH": f"{old}/operator:{old}/core"}, **variants}
        worker_runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        parts: dict[str, list[float]] = {k: [] for k in separate}
        for variant in variants.values():
            run_worker(variant)  # warm the page cache
        for _ in range(args.runs):
            for name, variant in variants.items():
                worker_runs[name].append(run_worker(variant))
            for label, command in separate.items():
                parts[label].append(timed(command))

        def cells(values: list[float]) -> str:
            med, low = statistics.median(values) * 1000, min(values) * 1000
            return f"{med:.0f} | {low:.0f}"

        def row(label: str, values: list[float]) -> str:
            return f"| {label} | {cells(values)} |"

        print(f"{args.size} JPEG -> WebP q85, {args.runs} runs, load {os.getloadavg()[0]:.1f}")
        heads = " | ".join(f"{name} median ms | {name} min ms" for name in variants)
        print(f"\n| worker phase | {heads} |\n|---|{'---|---|' * len(variants)}")
        for label, start, end in [*PHASES, ("**whole process**", None, "exit")]:
            columns = [
                cells([m[end] - (m[start] if start else 0.0) for m in runs])
                for runs in worker_runs.values()
            ]
            print(f"| {label} | {' | '.join(columns)} |")
        cpu = [cells([m["cpu"] for m in runs]) for runs in worker_runs.values()]
        print(f"| CPU of the process and its tools | {' | '.join(cpu)} |")
        print("\n| measured alone (own process) | median ms | min ms |\n|---|---|---|")
        for label, values in parts.items():
            print(row(label, values))
        if client is not None:
            client.remove_object(bucket, f"{key}/in.jpg")
            client.remove_object(bucket, f"{key}/out.webp")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
