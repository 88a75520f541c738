"""Upload API: memory of the API process and upload throughput against a direct PUT to MinIO.

    source .local/env && uv run python bench/upload_api.py [--sizes 10,100,1024] [--runs 3]

Starts `python -m mediaflow_api` (tests/integration/api_process.py) writing into a scratch
namespace `mf-bench-*` that no operator watches, registers a user, and uploads an MP4 made with
ffmpeg and padded with zeros to each size (libmagic only reads the head) to /video/convert.
Each upload streams the file from disk in 1 MiB chunks as a multipart body with a known
Content-Length. Interleaved with it, the same file goes straight to the same MinIO endpoint and
bucket the API writes to, as one presigned PUT streamed by the same httpx client.

During each upload a thread samples the API process's VmRSS every 20 ms; VmHWM is reset before
(/proc/PID/clear_refs) and read after, so the peak between samples is seen too. Reported: the
RSS just before the upload, the peak growth over it, the API's CPU time, wall-clock MiB/s
(the client's CPU time of API uploads includes the sampling thread's).
The MediaJobs (left Pending: no operator) and objects are deleted after each upload.

    source .local/env && uv run python bench/upload_api.py --case photos [--before DIR]
        [--rounds 10] [--spans] [--concurrency 4,8,16]

`--case photos`: the 40 small photos of issue 12 (item 6), as the previous service's clients
send them: two `POST /api/v1/image/batch/convert/webp` of 20 photos (640x480 JPEG, about
30 KB) sent at once, timed from the first byte to the second 202. With `--before DIR` (an
older tree of this repository, e.g. `git archive <commit> | tar -x -C DIR`) the API of that
tree runs too, from the same virtualenv with DIR's packages first on PYTHONPATH, and the
rounds alternate between the two, so both see the same machine. `--spans` runs each API under
bench/api_spans.py and adds a table of where the time went per round (S3 and Kubernetes
requests by kind, libmagic, the multipart parser, waits for an executor thread).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from minio import Minio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.environment import kube_client, require_env, restricted_namespace, wait_until  # noqa: E402
from tests.integration.api_process import ApiProcess  # noqa: E402
from tests.integration.test_api_jobs import User  # noqa: E402
from tests.media import make_clip, make_photo  # noqa: E402

GROUP, VERSION, PLURAL = "mediaflow.io", "v1alpha1", "mediajobs"
MIB = 1 << 20
CHUNK = MIB  # what the client reads from disk and hands to httpx at a time
ENDPOINT = "/api/v1/video/convert"
FIELDS = {"output_format": "mp4", "preset": "ultrafast"}
PHOTO_ENDPOINT = "/api/v1/image/batch/convert/webp"
PHOTOS_PER_BATCH = 20
SAMPLE_SECONDS = 0.02
CLK_TCK = os.sysconf("SC_CLK_TCK")


class ProcessWatch:
    """RSS samples (every 20 ms, from a thread) and CPU time of one process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def status(self) -> dict[str, int]:
        """VmRSS and VmHWM in bytes."""
        values = {}
        with Path(f"/proc/{self.pid}/status").open() as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) * 1024
        return values

    def cpu_seconds(self) -> float:
        """User + system time of all threads so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def reset_hwm(self) -> bool:
        """Reset VmHWM to the current RSS (Linux >= 4.0); False when not allowed."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def __enter__(self) -> ProcessWatch:
        self.samples = []
        self._stop.clear()

        def sample() -> None:
            while not self._stop.is_set():
                self.samples.append(self.status()["VmRSS"])
                time.sleep(SAMPLE_SECONDS)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@dataclass
class Result:
    kind: str  # "api" or "direct"
    size: int
    seconds: float
    client_cpu: float
    rss_before: int = 0
    rss_peak: int = 0  # max of the samples and of VmHWM
    api_cpu: float = 0.0

    @property
    def mib_per_s(self) -> float:
        return self.size / MIB / self.seconds

    @property
    def growth(self) -> int:
        return self.rss_peak - self.rss_before


def file_chunks(path: Path, head: bytes = b"", tail: bytes = b"") -> Iterator[bytes]:
    """`head`, the file in CHUNK pieces, `tail`: never more than one chunk in memory."""
    if head:
        yield head
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk
    if tail:
        yield tail


def multipart(path: Path, fields: dict[str, str]) -> tuple[str, int, Iterator[bytes]]:
    """Content-Type, Content-Length and chunks of a multipart/form-data body with `path` last."""
    boundary = uuid.uuid4().hex
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        f"Content-Type: video/mp4\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + path.stat().st_size + len(tail)
    return f"multipart/form-data; boundary={boundary}", length, file_chunks(path, head, tail)


def make_input(clip: Path, path: Path, size: int) -> Path:
    """The clip followed by zeros up to `size` bytes (written, not sparse)."""
    data = clip.read_bytes()
    zeros = bytes(CHUNK)
    with path.open("wb") as out:
        out.write(data)
        left = size - len(data)
        while left > 0:
            left -= out.write(zeros[: min(CHUNK, left)])
    return path


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Bench:
    def __init__(
        self,
        api: ApiProcess,
        user: User,
        http: httpx.Client,
        kube: client.ApiClient,
        minio: Minio,
        bucket: str,
        ns: str,
    ) -> None:
        assert api.process is not None
        self.api, self.user, self.http = api, user, http
        self.minio, self.bucket, self.ns = minio, bucket, ns
        self.watch = ProcessWatch(api.process.pid)
        self.custom = client.CustomObjectsApi(kube)

    def through_api(self, path: Path) -> Result:
        content_type, length, body = multipart(path, FIELDS)
        headers = {
            **self.user.headers,
            "Content-Type": content_type,
            "Content-Length": str(length),
        }
        time.sleep(0.5)  # let the previous request's memory settle
        before = self.watch.status()["VmRSS"]
        hwm_reset = self.watch.reset_hwm()
        cpu0, own0 = self.watch.cpu_seconds(), client_cpu()
        with self.watch:
            started = time.monotonic()
            response = self.http.post(f"{self.api.url}{ENDPOINT}", content=body, headers=headers)
            seconds = time.monotonic() - started
        cpu, own = self.watch.cpu_seconds() - cpu0, client_cpu() - own0
        if response.status_code != 202:
            raise SystemExit(f"upload failed: {response.status_code} {response.text}")
        status = self.watch.status()
        peak = max([*self.watch.samples, status["VmRSS"]])
        if hwm_reset:
            peak = max(peak, status["VmHWM"])
        job_id = response.json()["data"]["job_id"]
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, job_id)
        self.minio.remove_object(self.bucket, f"{self.ns}/uploads/{job_id}/input")
        return Result("api", path.stat().st_size, seconds, own, before, peak, cpu)

    def direct(self, path: Path) -> Result:
        key = f"{self.ns}/bench/direct-{uuid.uuid4().hex[:8]}"
        url = self.minio.presigned_put_object(self.bucket, key, expires=timedelta(hours=1))
        size = path.stat().st_size
        headers = {"Content-Length": str(size), "Content-Type": "video/mp4"}
        time.sleep(0.5)
        own0 = client_cpu()
        started = time.monotonic()
        response = self.http.put(url, content=file_chunks(path), headers=headers)
        seconds = time.monotonic() - started
        own = client_cpu() - own0
        response.raise_for_status()
        if self.minio.stat_object(self.bucket, key).size != size:
            raise SystemExit("the direct PUT stored a different size")
        self.minio.remove_object(self.bucket, key)
        return Result("direct", size, seconds, own)


def mib(n: float) -> str:
    return f"{n / MIB:.1f}"


def size_label(size: int) -> str:
    return f"{size // 1024**3} GiB" if size >= 1024**3 else f"{size // MIB} MiB"


def report(results: list[Result], sizes: list[int], start_rss: int, max_rss: int) -> None:
    print()
    print(
        "| file | API MiB/s | direct PUT MiB/s | API/direct | API RSS before | "
        "API peak growth (max) | API CPU s per GiB | client CPU s per GiB (API / direct) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        api = [r for r in results if r.kind == "api" and r.size == size]
        direct = [r for r in results if r.kind == "direct" and r.size == size]
        api_rate = statistics.median(r.mib_per_s for r in api)
        direct_rate = statistics.median(r.mib_per_s for r in direct)
        gib = size / 1024**3
        before = statistics.median(r.rss_before for r in api)
        print(
            f"| {size_label(size)} | {api_rate:.0f} | {direct_rate:.0f} | "
            f"{api_rate / direct_rate:.2f} | {mib(before)} MiB"
            f" | {mib(statistics.median(r.growth for r in api))} MiB "
            f"({mib(max(r.growth for r in api))}) | "
            f"{statistics.median(r.api_cpu for r in api) / gib:.1f} | "
            f"{statistics.median(r.client_cpu for r in api) / gib:.1f} / "
            f"{statistics.median(r.client_cpu for r in direct) / gib:.1f} |"
        )
    print(
        f"\nAPI process RSS after start-up {mib(start_rss)} MiB, highest sample of the run "
        f"{mib(max_rss)} MiB (growth {mib(max_rss - start_rss)} MiB, warm-up included)."
    )
    print("\nEvery run (MiB/s; API RSS before -> peak):")
    for r in results:
        extra = f"; {mib(r.rss_before)} -> {mib(r.rss_peak)} MiB" if r.kind == "api" else ""
        rate = f"{r.mib_per_s:7.1f} MiB/s in {r.seconds:6.2f} s"
        print(f"  {size_label(r.size):>8} {r.kind:6} {rate}{extra}")


def machine(load_at_start: tuple[float, float, float]) -> str:
    cpu = "?"
    with Path("/proc/cpuinfo").open() as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    start, end = load_at_start, os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), shared by the client, the API, MinIO, the cluster and "
        f"other users; 1-min load average {start[0]:.1f} at the start, {end[0]:.1f} at the end; "
        f"Python {sys.version.split()[0]}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--case",
        choices=("large", "photos"),
        default="large",
        help="large: one big file against a direct PUT (default); photos: 40 photos in two "
        "batches of 20 at once",
    )
    parser.add_argument("--sizes", default="10,100,1024", help="file sizes in MiB")
    parser.add_argument("--runs", type=int, default=3, help="runs of sizes below 1 GiB")
    parser.add_argument("--big-runs", type=int, default=2, help="runs of sizes from 1 GiB")
    parser.add_argument("--rounds", type=int, default=10, help="photos: rounds per API")
    parser.add_argument(
        "--before", type=Path, help="photos: an older tree whose API runs alternately"
    )
    parser.add_argument("--spans", action="store_true", help="photos: time the parts too")
    parser.add_argument(
        "--concurrency",
        help="photos: e.g. 4,8,16: this tree's API once per value of the stores and creates "
        "a request runs at once",
    )
    args = parser.parse_args()
    if args.case == "photos":
        values = [int(v) for v in args.concurrency.split(",")] if args.concurrency else None
        return photos_main(args.rounds, args.before, args.spans, values)
    sizes = [int(s) * MIB for s in args.sizes.split(",")]
    load_at_start = os.getloadavg()

    workdir = Path(tempfile.mkdtemp(prefix="mf-bench-upload-"))
    free = shutil.disk_usage(workdir).free
    if free < sum(sizes) + 2 * 1024**3:
        raise SystemExit(f"only {free / 1024**3:.1f} GiB free in {workdir}")
    kube = kube_client()
    endpoint = urlsplit(require_env("MEDIAFLOW_S3_ENDPOINT"))  # the one the API writes to
    bucket = os.environ.get("MEDIAFLOW_S3_BUCKET", "mediaflow")
    minio = Minio(
        endpoint.netloc,
        access_key=require_env("MEDIAFLOW_S3_ACCESS_KEY"),
        secret_key=require_env("MEDIAFLOW_S3_SECRET_KEY"),
        secure=endpoint.scheme == "https",
        region=os.environ.get("MEDIAFLOW_S3_REGION", "us-east-1"),
    )
    scratch = restricted_namespace(kube, "mf-bench")
    ns = next(scratch).name
    limit = str(max(sizes) + 64 * MIB)
    env = {
        "MEDIAFLOW_API_NAMESPACE": ns,
        "MEDIAFLOW_API_MAX_UPLOAD_BYTES": limit,
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "10000",
        "MEDIAFLOW_API_RATE_LIMIT_IMAGE_PER_MINUTE": "10000",
        "MEDIAFLOW_API_RATE_LIMIT_VIDEO_PER_MINUTE": "10000",
        "MEDIAFLOW_API_RATE_LIMIT_BATCH_PER_MINUTE": "10000",
    }
    try:
        print(f"namespace {ns}; inputs in {workdir}", file=sys.stderr)
        clip = make_clip(workdir / "clip.mp4")
        inputs = {s: make_input(clip, workdir / f"input-{s // MIB}MiB.mp4", s) for s in sizes}
        with ApiProcess(env) as api, httpx.Client(timeout=httpx.Timeout(600.0)) as http:
            bench = Bench(api, User(api), http, kube, minio, bucket, ns)
            start_rss = bench.watch.status()["VmRSS"]
            bench.through_api(inputs[sizes[0]])  # warm-up: imports, libmagic, connections
            bench.direct(inputs[sizes[0]])
            results: list[Result] = []
            for size in sizes:
                for run in range(args.runs if size < 1024**3 else args.big_runs):
                    pair = (bench.through_api, bench.direct)
                    for measure in pair if run % 2 == 0 else pair[::-1]:
                        result = measure(inputs[size])
                        results.append(result)
                        print(
                            f"{size_label(size)} {result.kind}: {result.mib_per_s:.1f} MiB/s",
                            file=sys.stderr,
                        )
            max_rss = max(max(r.rss_peak for r in results), bench.watch.status()["VmHWM"])
        print(f"\nMachine: {machine(load_at_start)}")
        print(
            f"Upload: {ENDPOINT} through the API (uvicorn, multipart parsed as it arrives, "
            f"8 MiB parts sent on presigned URLs from one upload thread) vs one presigned PUT to "
            f"the same MinIO "
            f"({endpoint.netloc}); client httpx streaming {CHUNK // MIB} MiB chunks from disk."
        )
        report(results, sizes, start_rss, max_rss)
        return 0
    finally:
        cleanup(kube, minio, bucket, ns)
        next(scratch, None)
        shutil.rmtree(workdir, ignore_errors=True)


# --- the 40-photo case -------------------------------------------------------------------


@dataclass
class PhotoApi:
    """One API process of the photos case: its tree, user and spans file."""

    name: str
    api: ApiProcess
    user: User | None = None
    spans: Path | None = None
    watch: ProcessWatch | None = None


def photo_api(
    name: str,
    tree: Path | None,
    env: dict[str, str],
    spans: Path | None,
    concurrency: int | None = None,
) -> PhotoApi:
    """The API of `tree` (None: this one), under bench/api_spans.py when `spans` or
    `concurrency` (this tree's stores and creates at once) is given."""
    env = dict(env)
    paths = [str(REPO)]  # bench/api_spans.py
    if tree is not None:
        paths = [str(tree / "api"), str(tree / "core"), *paths]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if spans is not None:
        env["MEDIAFLOW_BENCH_SPANS"] = str(spans)
    if concurrency is not None:
        env["MEDIAFLOW_BENCH_CONCURRENCY"] = str(concurrency)
    wrapped = spans is not None or concurrency is not None
    module = "bench.api_spans" if wrapped else "mediaflow_api"
    return PhotoApi(name, ApiProcess(env, module=module), spans=spans)


def forty_photos(target: PhotoApi, photos: list[bytes]) -> tuple[float, float, float]:
    """Two batch requests of 20 sent at once: (start, seconds from the first byte to the
    second 202, the API's CPU seconds meanwhile)."""
    assert target.user is not None
    assert target.watch is not None
    user, errors = target.user, []

    def send(n: int) -> None:
        files = [
            ("files", (f"p{n}-{i}.jpg", photo, "image/jpeg")) for i, photo in enumerate(photos)
        ]
        response = httpx.post(
            f"{target.api.url}{PHOTO_ENDPOINT}",
            files=files,
            data={"quality": "85"},
            headers=user.headers,
            timeout=120,
        )
        if response.status_code != 202 or response.json()["data"]["total"] != len(photos):
            errors.append(f"{response.status_code} {response.text[:300]}")

    threads = [threading.Thread(target=send, args=(n,)) for n in (0, 1)]
    cpu0 = target.watch.cpu_seconds()
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    cpu = target.watch.cpu_seconds() - cpu0
    if errors:
        raise SystemExit(f"{target.name}: batch failed: {errors}")
    return started, seconds, cpu


def clear_namespace(kube: client.ApiClient, minio: Minio, bucket: str, ns: str) -> None:
    """Delete the MediaJobs and objects a round made (no operator: no finalizers)."""
    custom = client.CustomObjectsApi(kube)
    custom.delete_collection_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
    wait_until(
        "the MediaJobs to be gone",
        lambda: not custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"],
        timeout=60,
        interval=0.2,
    )
    for obj in minio.list_objects(bucket, prefix=f"{ns}/", recursive=True):
        minio.remove_object(bucket, obj.object_name)


def span_table(spans: Path, windows: list[tuple[float, float]]) -> dict[str, tuple[int, float]]:
    """Per span name: (count, total seconds) per round, over the spans that started within
    one of the measured `windows` (start, end; one monotonic clock across processes)."""
    totals: dict[str, list[float]] = {}
    for line in spans.read_text().splitlines():
        span = json.loads(line)
        if any(start <= span["start"] <= end for start, end in windows):
            totals.setdefault(span["span"], []).append(span["seconds"])
    rounds = len(windows)
    return {name: (len(v) // rounds, sum(v) / rounds) for name, v in totals.items()}


def report_spans(apis: list[PhotoApi], windows: dict[str, list[tuple[float, float]]]) -> None:
    tables = {a.name: span_table(a.spans, windows[a.name]) for a in apis if a.spans is not None}
    names = sorted({n for t in tables.values() for n in t}, key=lambda n: (n.split()[0], n))
    print("\nWhere the time went, per round (count, then summed seconds: spans overlap)")
    print("| span | " + " | ".join(f"{a} count | {a} s" for a in tables) + " |")
    print("|---|" + "---:|---:|" * len(tables))
    for name in names:
        cells = []
        for table in tables.values():
            count, seconds = table.get(name, (0, 0.0))
            cells += [str(count), f"{seconds:.3f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")


def photos_main(
    rounds: int, before: Path | None, spans: bool, concurrency: list[int] | None = None
) -> int:
    load_at_start = os.getloadavg()
    kube = kube_client()
    endpoint = urlsplit(require_env("MEDIAFLOW_S3_ENDPOINT"))
    bucket = os.environ.get("MEDIAFLOW_S3_BUCKET", "mediaflow")
    minio = Minio(
        endpoint.netloc,
        access_key=require_env("MEDIAFLOW_S3_ACCESS_KEY"),
        secret_key=require_env("MEDIAFLOW_S3_SECRET_KEY"),
        secure=endpoint.scheme == "https",
        region=os.environ.get("MEDIAFLOW_S3_REGION", "us-east-1"),
    )
    workdir = Path(tempfile.mkdtemp(prefix="mf-bench-photos-"))
    scratch = restricted_namespace(kube, "mf-bench")
    ns = next(scratch).name
    env = {
        "MEDIAFLOW_API_NAMESPACE": ns,
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "10000",
        "MEDIAFLOW_API_RATE_LIMIT_BATCH_PER_MINUTE": "10000",
    }
    variants: dict[str, tuple[Path | None, int | None]] = {}
    if before is not None:
        variants["before"] = (before.resolve(), None)
    for value in concurrency or [None]:  # type: ignore[list-item]
        variants["after" if value is None else f"after-c{value}"] = (None, value)
    apis = [
        photo_api(name, tree, env, workdir / f"spans-{name}.jsonl" if spans else None, value)
        for name, (tree, value) in variants.items()
    ]
    results: dict[str, list[tuple[float, float]]] = {a.name: [] for a in apis}
    windows: dict[str, list[tuple[float, float]]] = {a.name: [] for a in apis}
    try:
        paths = [make_photo(workdir / f"photo{n}.jpg", size="640x480") for n in range(20)]
        photos = [p.read_bytes() for p in paths]
        for target in apis:
            target.api.__enter__()
            assert target.api.process is not None
            target.user = User(target.api)
            target.watch = ProcessWatch(target.api.process.pid)
            forty_photos(target, photos)  # warm-up: imports, libmagic, connections
            clear_namespace(kube, minio, bucket, ns)
        for number in range(rounds):
            for target in apis if number % 2 == 0 else apis[::-1]:
                time.sleep(0.5)
                started, seconds, cpu = forty_photos(target, photos)
                windows[target.name].append((started, started + seconds))
                results[target.name].append((seconds, cpu))
                print(f"round {number + 1} {target.name}: {seconds:.3f} s", file=sys.stderr)
                clear_namespace(kube, minio, bucket, ns)
        print(f"\nMachine: {machine(load_at_start)}")
        sizes = sorted(len(p) for p in photos)
        print(
            f"40 photos ({sizes[0] // 1024}-{sizes[-1] // 1024} KiB, 640x480 JPEG): two "
            f"{PHOTO_ENDPOINT} of {PHOTOS_PER_BATCH} sent at once, first byte to the second "
            f"202; {rounds} rounds per API, alternating, in a namespace no operator watches.\n"
        )
        print("| API | p50 s | min s | max s | API CPU s (p50) |")
        print("|---|---:|---:|---:|---:|")
        for name, runs in results.items():
            walls = [r[0] for r in runs]
            cpus = [r[1] for r in runs]
            print(
                f"| {name} | {statistics.median(walls):.3f} | {min(walls):.3f} | "
                f"{max(walls):.3f} | {statistics.median(cpus):.2f} |"
            )
        if "before" in results:
            base = statistics.median(r[0] for r in results["before"])
            for name, runs in results.items():
                if name != "before":
                    ratio = base / statistics.median(r[0] for r in runs)
                    print(f"\nbefore/{name} (p50): {ratio:.2f}x")
        if spans:
            report_spans(apis, windows)
        return 0
    finally:
        for target in apis:
            target.api.__exit__()
        cleanup(kube, minio, bucket, ns)
        next(scratch, None)
        shutil.rmtree(workdir, ignore_errors=True)


def cleanup(kube: client.ApiClient, minio: Minio, bucket: str, ns: str) -> None:
    """Whatever an interrupted run left: MediaJobs (no finalizer: no operator) and objects."""
    custom = client.CustomObjectsApi(kube)
    for mj in custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]:
        try:
            custom.delete_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, mj["metadata"]["name"]
            )
        except ApiException as error:
            if error.status != 404:
                raise
    wait_until(
        "the MediaJobs to be gone",
        lambda: not custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"],
        timeout=60,
    )
    for obj in minio.list_objects(bucket, prefix=f"{ns}/", recursive=True):
        minio.remove_object(bucket, obj.object_name)


if __name__ == "__main__":
    sys.exit(main())
