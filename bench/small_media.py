"""Small photos through the HTTP API with and without warm pods, side by side in one run.

    source .local/env && uv run python bench/small_media.py [--rounds 3] [--photos 10]

Starts the API and an operator process from this tree for one scratch namespace `mf-bench-*`
(no other operator watches it) and, for each variant of the operator's settings, measures
what issue 12 asks, as the previous service's clients saw it (polling `GET /api/v1/jobs/{id}`
every 0.1 s until `completed`, on one kept-alive connection per user as a client library
keeps it: a new httpx client per request costs this machine about 80 ms of its own, which
would be measured as the API's):

- cold photo: a new user's first 640x480 JPEG to WebP, upload start to `completed`;
- warm photo: the same user's next photos, one after the other (its warm pod is up);
- 40 photos: two `POST /api/v1/image/batch/convert/webp` requests of 20 sent at once by a
  new user (cold) and again by the same user (warm), first byte to the last `completed`;
- bare cwebp: the same 20 photos converted in a row by `cwebp -q 85` on this machine.

Variants (each a fresh operator with these settings, the rounds alternating between them):
`one-shot` (MEDIAFLOW_WARM_PODS=false, and the API making a MediaJob per file of a batch: a
pod per photo, as before warm pods), `warm-per-file` (warm pods, but a MediaJob per file of
a batch, as before batches were one MediaJob), `warm` (the defaults: warm pods, a batch
request one MediaJob, no CPU limit) and `warm-limited` (the defaults with CPU limits equal
to requests, MEDIAFLOW_WORKER_CPU_LIMITS=true: 500m per pod).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.photo_latency import start_operator, wait_healthy  # noqa: E402
from tests.environment import kube_client, restricted_namespace  # noqa: E402
from tests.integration.api_process import ApiProcess  # noqa: E402
from tests.integration.processes import terminate  # noqa: E402
from tests.integration.test_api_jobs import User  # noqa: E402
from tests.media import make_photo  # noqa: E402

POLL_SECONDS = 0.1
VARIANTS = {
    "one-shot": {"MEDIAFLOW_WARM_PODS": "false"},
    "warm-per-file": {},
    "warm": {},
    "warm-limited": {"MEDIAFLOW_WORKER_CPU_LIMITS": "true"},
}
# The variants served by an API that makes a MediaJob per file of a batch.
PER_FILE = {"one-shot", "warm-per-file"}


_SESSIONS: dict[str, httpx.Client] = {}


def session(user: User) -> httpx.Client:
    """The user's client: one per user, its connections kept alive (thread-safe)."""
    if user.email not in _SESSIONS:
        _SESSIONS[user.email] = httpx.Client(
            base_url=f"{user.api.url}/api/v1", headers=user.headers, timeout=120
        )
    return _SESSIONS[user.email]


# The polling of the last wait_completed: each GET's seconds, and when each job was first
# seen completed (seconds since its `started`); printed by --trace.
POLLS: list[float] = []
SEEN: list[float] = []
WALL_STARTED = 0.0  # time.time() of the last forty_photos' first byte


def wait_completed(user: User, job_ids: list[str], started: float, limit: float = 300) -> float:
    """Poll every job until all are `completed`; seconds since `started`."""
    pending = set(job_ids)
    POLLS.clear()
    SEEN.clear()
    while pending:
        for job_id in list(pending):
            asked = time.monotonic()
            status = session(user).get(f"/jobs/{job_id}").json()["data"]["status"]
            POLLS.append(time.monotonic() - asked)
            if status == "completed":
                pending.discard(job_id)
                SEEN.append(time.monotonic() - started)
            elif status == "failed":
                raise SystemExit(f"job {job_id} failed")
        if not pending:
            break
        if time.monotonic() - started > limit:
            raise SystemExit(f"{len(pending)} jobs not completed in {limit} s")
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started


def one_photo(user: User, photo: bytes) -> float:
    started = time.monotonic()
    response = session(user).post(
        "/image/convert/webp",
        files={"file": ("photo.jpg", photo, "image/jpeg")},
        data={"quality": "85"},
    )
    if response.status_code != 202:
        raise SystemExit(f"upload: {response.status_code} {response.text}")
    return wait_completed(user, [response.json()["data"]["job_id"]], started)


def pod_span(namespace: str, since: float) -> str:
    """When the warm pods of `namespace` started their first item and reported their last
    one after `since` (Unix time), in seconds from `since`, from their logs' kubelet
    timestamps."""
    out = subprocess.run(
        ["kubectl", "-n", namespace, "logs", "-l", "mediaflow.io/session", "--timestamps",
         "--tail=-1", "--prefix=false", "--max-log-requests=20"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    starts, ends = [], []
    for line in out.splitlines():
        stamp, _, rest = line.partition(" ")
        try:
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - since
        except ValueError:
            continue
        if when < 0:
            continue
        if '"item-start"' in rest:
            starts.append(when)
        elif '"event": "item"' in rest or '"event":"item"' in rest:
            ends.append(when)
    if not starts or not ends:
        return "pods: no item lines"
    return f"pods: first item start {min(starts):.2f} s, last item end {max(ends):.2f} s"


def forty_photos(user: User, photos: list[bytes]) -> tuple[float, float]:
    """Two batch requests of 20 at once: (first byte to all completed, uploads alone)."""
    global WALL_STARTED
    WALL_STARTED = time.time()
    started = time.monotonic()
    ids: list[list[str]] = [[], []]
    uploaded: list[float] = []

    def send(n: int) -> None:
        files = [("files", (f"p{n}-{i}.jpg", p, "image/jpeg")) for i, p in enumerate(photos)]
        response = session(user).post(
            "/image/batch/convert/webp", files=files, data={"quality": "85"}
        )
        uploaded.append(time.monotonic() - started)
        if response.status_code != 202:
            raise SystemExit(f"batch: {response.status_code} {response.text}")
        ids[n] = [job["job_id"] for job in response.json()["data"]["jobs"]]

    threads = [threading.Thread(target=send, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return wait_completed(user, ids[0] + ids[1], started), max(uploaded)


def bare_cwebp(paths: list[Path], folder: Path) -> float:
    started = time.monotonic()
    for n, path in enumerate(paths):
        subprocess.run(
            ["cwebp", "-quiet", "-q", "85", str(path), "-o", str(folder / f"bare{n}.webp")],
            check=True,
        )
    return time.monotonic() - started


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the variants")
    parser.add_argument("--photos", type=int, default=10, help="warm photos per round")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="which variants")
    parser.add_argument(
        "--trace", action="store_true", help="print the polling of each warm 40-photo round"
    )
    args = parser.parse_args()
    variants = {name: VARIANTS[name] for name in args.variants.split(",")}
    kube = kube_client()
    scratch = restricted_namespace(kube, "mf-bench")
    namespace = next(scratch).name
    logs = REPO / ".local/logs"
    env = {
        "MEDIAFLOW_API_NAMESPACE": namespace,
        "MEDIAFLOW_API_RATE_LIMIT_IMAGE_PER_MINUTE": "100000",
        "MEDIAFLOW_API_RATE_LIMIT_BATCH_PER_MINUTE": "100000",
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "1000",
        "MEDIAFLOW_API_AUTH_ACCOUNT_RATE_LIMIT_BURST": "1000",
    }
    keys = ("cold", "warm", "40 cold", "40 warm", "40 upload", "bare 20")
    results = {name: {k: [] for k in keys} for name in variants}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            paths = [make_photo(folder / f"photo{n}.jpg", size="640x480") for n in range(20)]
            photos = [p.read_bytes() for p in paths]
            per_file = {**env, "MEDIAFLOW_API_BATCH_AS_ONE_MEDIAJOB": "false"}
            with ApiProcess(env) as one_mediajob, ApiProcess(per_file) as per_file_api:
                for number in range(args.rounds):
                    for name, settings in variants.items():
                        api = per_file_api if name in PER_FILE else one_mediajob
                        port = 18710
                        operator = start_operator(
                            namespace, None, logs / f"bench-small-{name}.log", port,
                            extra_env=settings,
                        )  # fmt: skip
                        try:
                            wait_healthy(port)
                            time.sleep(1)  # its watches have listed
                            r = results[name]
                            user = User(api)
                            r["cold"].append(one_photo(user, photos[0]))
                            for n in range(args.photos):
                                r["warm"].append(one_photo(user, photos[n % 20]))
                            batch_user = User(api)
                            total, upload = forty_photos(batch_user, photos)
                            r["40 cold"].append(total)
                            r["40 upload"].append(upload)
                            warm40, upload40 = forty_photos(batch_user, photos)
                            r["40 warm"].append(warm40)
                            if args.trace:
                                print(
                                    f"  40 warm: uploads {upload40:.2f} s; first completed seen "
                                    f"{min(SEEN):.2f} s, 20th {sorted(SEEN)[19]:.2f} s, last "
                                    f"{max(SEEN):.2f} s; {len(POLLS)} GETs, median "
                                    f"{statistics.median(POLLS) * 1000:.1f} ms, p90 "
                                    f"{sorted(POLLS)[int(len(POLLS) * 0.9)] * 1000:.1f} ms; "
                                    f"{pod_span(namespace, WALL_STARTED)}",
                                    file=sys.stderr,
                                )
                            r["bare 20"].append(bare_cwebp(paths, folder))
                            line = ", ".join(f"{k} {v[-1]:.2f}" for k, v in r.items())
                            print(f"round {number + 1} {name}: {line}", file=sys.stderr)
                        finally:
                            terminate(operator)
                        # Let the warm pods of this variant end (idle) before the next.
                        time.sleep(2)
                print("p50 over the rounds (seconds):")
                print(f"{'variant':14}" + "".join(f"{k:>11}" for k in keys))
                for name, r in results.items():
                    print(f"{name:14}" + "".join(f"{p50(r[k]):11.2f}" for k in keys))
                base = results.get("one-shot")
                if base is not None:
                    for name, r in results.items():
                        if name == "one-shot":
                            continue
                        print(
                            f"{name}: cold photo {p50(base['cold']) / p50(r['cold']):.1f}x, "
                            f"warm photo {p50(base['warm']) / p50(r['warm']):.1f}x, "
                            f"40 photos {p50(base['40 cold']) / p50(r['40 cold']):.1f}x faster "
                            "than one-shot"
                        )
                # Leave nothing: MediaJobs go while an operator runs (their finalizer).
                operator = start_operator(namespace, None, logs / "bench-small-end.log", 18711)
                try:
                    wait_healthy(18711)
                    delete = ["kubectl", "-n", namespace, "delete", "mediajobs", "--all"]
                    subprocess.run([*delete, "--timeout=300s"], check=False, capture_output=True)
                finally:
                    terminate(operator)
    finally:
        for _ in scratch:  # deletes the namespace
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
