"""`GET /jobs` for a user with a long history: the in-memory list before, this tree's after.

    source .local/env && uv run python bench/jobs_list.py [--jobs 2000] [--requests 40]

Makes a scratch namespace `mf-bench-*` that no operator watches, registers a user there and
creates `--jobs` MediaJobs of that user straight through the Kubernetes API as the upload
endpoints and then the operator leave them (tests/integration/mediajob_history.py: API
labels, Kopf's annotations, the phase label, a status of a mix of phases; job types cycling
through all nine). No Job or pod is made.

Two API processes (tests/integration/api_process.py) then serve that namespace side by side:
"before", the `mediaflow_api` and `mediaflow_operator` packages of git ref `--before`
(default: the commit before the server-side list) extracted to a temporary folder and put
first on PYTHONPATH; and "after", this tree. Each signs its user in. For each query, one
warm-up request to each, then `--requests` rounds of one request to each in turn (so both
see the same machine load); reported: p50 and p95 of the client's wall-clock time and the
after/before ratio of the p50s. Both answers of every round must have the same `total` and
the same ids. Measurements start 15 s after the last MediaJob was written.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.environment import kube_client, restricted_namespace  # noqa: E402
from tests.integration.api_process import ApiProcess  # noqa: E402
from tests.integration.mediajob_history import seed_mediajob  # noqa: E402

# The commit this work started from: the list read every MediaJob of the user in full.
BEFORE = "8e411ba"
PASSWORD = "correct horse battery"  # noqa: S105 - a bench password
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("page 1", {"page": 1, "page_size": 10}),
    ("page 100", {"page": 100, "page_size": 10}),
    ("status=completed", {"page": 1, "page_size": 10, "status": "completed"}),
    ("status=failed, page 5", {"page": 5, "page_size": 10, "status": "failed"}),
    ("job_type=video_trim", {"page": 1, "page_size": 10, "job_type": "video_trim"}),
    (
        "completed image_resize",
        {"page": 1, "page_size": 10, "status": "completed", "job_type": "image_resize"},
    ),
]


def seed(kube: client.ApiClient, namespace: str, owner: str, count: int) -> None:
    api = client.CustomObjectsApi(kube)
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: seed_mediajob(api, namespace, owner, i), range(count)))
    print(f"created {count} MediaJobs in {time.monotonic() - started:.0f} s", flush=True)


def extract(ref: str, folder: Path) -> dict[str, str]:
    """The API and operator packages of `ref` in `folder`; the environment that runs them."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "api", "operator"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return {"PYTHONPATH": f"{folder / 'api'}:{folder / 'operator'}"}


class Client:
    def __init__(self, api: ApiProcess, email: str) -> None:
        self.http = httpx.Client(base_url=f"{api.url}/api/v1", timeout=60)
        response = self.http.post("/auth/login", data={"username": email, "password": PASSWORD})
        response.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def jobs(self, params: dict[str, Any]) -> tuple[float, tuple[int, list[str]]]:
        started = time.perf_counter()
        response = self.http.get("/jobs", params=params)
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        data = response.json()["data"]
        return elapsed, (data["total"], [item["id"] for item in data["items"]])


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--before", default=BEFORE, help="git ref of the code before")
    args = parser.parse_args()

    kube = kube_client()
    for scratch in restricted_namespace(kube, "mf-bench"):
        namespace = scratch.name
        env = {
            "MEDIAFLOW_API_NAMESPACE": namespace,
            "MEDIAFLOW_API_USERS_NAMESPACE": namespace,
            "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "100",
            "MEDIAFLOW_API_AUTH_ACCOUNT_RATE_LIMIT_BURST": "100",
        }
        with tempfile.TemporaryDirectory() as folder, ApiProcess(env) as after:
            old = extract(args.before, Path(folder))
            with ApiProcess(env | old) as before:
                email = f"bench-{namespace}@example.com"
                registered = httpx.post(
                    f"{after.url}/api/v1/auth/register",
                    json={"email": email, "password": PASSWORD},
                    timeout=60,
                )
                registered.raise_for_status()
                owner = registered.json()["data"]["user"]["id"]
                seed(kube, namespace, owner, args.jobs)
                time.sleep(15)  # the API server's and etcd's work after 4,000 writes settles
                clients = {"before": Client(before, email), "after": Client(after, email)}
                print(
                    f"\nGET /api/v1/jobs, a user with {args.jobs} jobs, {args.requests} "
                    f"requests each (before = {args.before})\n"
                )
                print("| query | before p50 | before p95 | after p50 | after p95 | after/before |")
                print("| --- | --- | --- | --- | --- | --- |")
                for label, params in QUERIES:
                    times: dict[str, list[float]] = {"before": [], "after": []}
                    for round_ in range(args.requests + 1):
                        answers = {}
                        for name, api in clients.items():
                            elapsed, answers[name] = api.jobs(params)
                            if round_:  # the first is a warm-up
                                times[name].append(elapsed)
                        if answers["before"] != answers["after"]:
                            raise SystemExit(f"{label}: before and after differ: {answers}")
                    b, a = times["before"], times["after"]
                    print(
                        f"| {label} (total {answers['after'][0]}) | "
                        f"{statistics.median(b):.3f} s | {p95(b):.3f} s | "
                        f"{statistics.median(a):.3f} s | {p95(a):.3f} s | "
                        f"{statistics.median(a) / statistics.median(b):.2f} |",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
