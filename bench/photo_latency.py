"""One small photo through the HTTP API: upload start to `completed`, as a client sees it.

    source .local/env && uv run python bench/photo_latency.py [--photos 20] [--before DIR]

Starts the API (`python -m mediaflow_api`) and an operator process from this tree, both for
one scratch namespace `mf-bench-*` (no other operator watches it), registers a user and, one
after the other, uploads a 640x480 JPEG to `POST /api/v1/image/convert/webp` and polls
`GET /api/v1/jobs/{id}` every 0.1 s (as the previous service's clients did) until the job is
`completed`. Reported: p50, p90 and max of the time from the upload's first byte to the poll
that saw `completed`, and of the upload itself.

`--before DIR`: a checkout of an older tree (e.g. `git worktree add /tmp/before f2beb00`);
its operator (`PYTHONPATH=DIR/operator:DIR/core`) runs the same photos, alternating with
this tree's operator in rounds of 5, in the same run, so that the ratio holds on a shared
machine. The worker image is the same for both (the local cluster's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.environment import kube_client, restricted_namespace  # noqa: E402
from tests.integration.api_process import ApiProcess  # noqa: E402
from tests.integration.processes import start_module, terminate  # noqa: E402
from tests.integration.test_api_jobs import User  # noqa: E402
from tests.media import make_photo  # noqa: E402

ROUND = 5
POLL_SECONDS = 0.1


def start_operator(
    namespace: str,
    pythonpath: str | None,
    log: Path,
    port: int,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen:
    env = {**os.environ, **(extra_env or {})}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return start_module(
        "mediaflow_operator", ["--liveness-port", str(port), "--namespace", namespace], env, log
    )


def wait_healthy(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the operator on :{port} did not become healthy")


def one_photo(user: User, photo: bytes) -> tuple[float, float]:
    """Seconds from the upload's first byte to `completed`, and of the upload alone."""
    started = time.monotonic()
    response = httpx.post(
        f"{user.api.url}/api/v1/image/convert/webp",
        files={"file": ("photo.jpg", photo, "image/jpeg")},
        data={"quality": "85"},
        headers=user.headers,
        timeout=60,
    )
    uploaded = time.monotonic() - started
    if response.status_code != 202:
        raise SystemExit(f"upload: {response.status_code} {response.text}")
    job_id = response.json()["data"]["job_id"]
    while True:
        status = user.get(f"/{job_id}").json()["data"]["status"]
        if status == "completed":
            return time.monotonic() - started, uploaded
        if status == "failed":
            raise SystemExit(f"job {job_id} failed")
        if time.monotonic() - started > 120:
            raise SystemExit(f"job {job_id} not completed in 120 s")
        time.sleep(POLL_SECONDS)


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (
        f"{name:8} p50 {statistics.median(ordered):6.2f} s  p90 {p90:6.2f} s  "
        f"max {ordered[-1]:6.2f} s  (n={len(ordered)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=20, help="photos per tree")
    parser.add_argument("--before", help="an older checkout to compare with, side by side")
    args = parser.parse_args()
    variants = {"now": None}
    if args.before:
        old = Path(args.before).resolve()
        variants = {"before": f"{old}/operator:{old}/core", **variants}
    kube = kube_client()
    scratch = restricted_namespace(kube, "mf-bench")
    namespace = next(scratch).name
    logs = REPO / ".local/logs"
    env = {
        "MEDIAFLOW_API_NAMESPACE": namespace,
        "MEDIAFLOW_API_RATE_LIMIT_IMAGE_PER_MINUTE": "10000",
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "1000",
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    try:
        with tempfile.TemporaryDirectory() as folder:
            photo = make_photo(Path(folder) / "photo.jpg", size="640x480").read_bytes()
        with ApiProcess(env) as api:
            user = User(api)
            rounds = -(-args.photos // ROUND)
            for number in range(rounds):
                for name, pythonpath in variants.items():
                    port = 18700 + len(results[name]) % 2
                    operator = start_operator(
                        namespace, pythonpath, logs / f"bench-photo-{name}.log", port
                    )
                    try:
                        wait_healthy(port)
                        time.sleep(1)  # its watches have listed
                        for _ in range(min(ROUND, args.photos - number * ROUND)):
                            results[name].append(one_photo(user, photo))
                            print(f"  {name}: {results[name][-1][0]:.2f} s", file=sys.stderr)
                    finally:
                        terminate(operator)
                    print(f"round {number + 1}/{rounds} {name}: done", file=sys.stderr)
        for name, values in results.items():
            print(summary(f"{name} e2e", [v[0] for v in values]))
            print(summary(f"{name} upl", [v[1] for v in values]))
        if "before" in results:
            ratio = statistics.median(v[0] for v in results["before"]) / statistics.median(
                v[0] for v in results["now"]
            )
            print(f"p50 before / now: {ratio:.2f}")
    finally:
        # MediaJobs go while an operator runs (their finalizer), then the namespace.
        operator = start_operator(namespace, None, logs / "bench-photo-now.log", 18702)
        try:
            wait_healthy(18702)
            subprocess.run(["kubectl", "-n", namespace, "delete", "mediajobs", "--all",
                            "--timeout=120s"], check=False, capture_output=True)  # fmt: skip
        finally:
            terminate(operator)
        for _ in scratch:  # deletes the namespace
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
