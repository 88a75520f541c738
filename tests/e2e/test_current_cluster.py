"""`make up CLUSTER=current` against the local cluster, as if it were someone else's: it builds
and loads the image (containerd, detected from the context), installs a release with the
bundled MinIO into a scratch namespace, and forwards the API and MinIO to 127.0.0.1; a user
uploads through the forwarded API and downloads the result URL on this machine.
`make down CLUSTER=current` stops the port-forwards and leaves the release (and the cluster)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from minio import Minio

from tests.e2e.conftest import REPO, run
from tests.environment import require_env, wait_until
from tests.media import make_photo

# The tag `make up` (local) uses stays untouched: the `mediaflow` release's workers run it.
IMAGE = "mediaflow.local/mediaflow:current"
SETTINGS = ("IMAGE_LOAD", "REGISTRY", "BASE_IMAGE", "MINIO_IMAGE", "BUILD", "CONTEXT",
            "API_PORT", "STORAGE_PORT", "UNINSTALL", "DRY_RUN", "CLUSTER")  # fmt: skip


def make(target: str, name: str, env_file: Path, *extra: str) -> str:
    """`make TARGET CLUSTER=current` for release and namespace NAME, with the user's
    KUBECONFIG (the local cluster's, from .local/env)."""
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    result = subprocess.run(
        ["make", "--no-print-directory", target, "CLUSTER=current", f"RELEASE={name}",
         f"NAMESPACE={name}", f"IMAGE={IMAGE}", f"ENV_FILE={env_file}", *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=420, check=False,
    )  # fmt: skip
    assert result.returncode == 0, (
        f"make {target} exited {result.returncode}\n{result.stdout[-3000:]}\n"
        f"{result.stderr[-3000:]}"
    )
    return result.stdout + result.stderr


def read_env(path: Path) -> dict[str, str]:
    pairs = (
        line.removeprefix("export ").split("=", 1)
        for line in path.read_text().splitlines()
        if line.startswith("export ")
    )
    return dict(pairs)


def pidfiles(name: str) -> list[Path]:
    return sorted((REPO / ".local/run").glob(f"port-forward-{name}-{name}-*.pid"))


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


def listening(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((parts.hostname, parts.port)) == 0


@pytest.fixture(scope="module")
def name() -> Iterator[str]:
    """Release and namespace name; everything of it is removed afterwards."""
    require_env("KUBECONFIG")
    name = f"mf-cur-{uuid.uuid4().hex[:6]}"
    try:
        yield name
    finally:
        # MediaJobs first, while the operator runs (its finalizer deletes their Jobs and
        # results); make down UNINSTALL=1 does that, uninstalls, and deletes the namespace.
        subprocess.run(
            ["make", "--no-print-directory", "down", "CLUSTER=current", f"RELEASE={name}",
             f"NAMESPACE={name}", "UNINSTALL=1"],
            cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        for pidfile in pidfiles(name):  # if down failed early
            pid = int(pidfile.read_text())
            if alive(pid):
                os.kill(pid, 15)
            pidfile.unlink()
        if subprocess.run(["kubectl", "get", "ns", name], capture_output=True).returncode == 0:
            for mj in run(["kubectl", "-n", name, "get", "mj", "-o", "name"]).split():
                run(["kubectl", "-n", name, "patch", mj, "--type=merge", "-p",
                     '{"metadata":{"finalizers":null}}'])  # fmt: skip
            run(["helm", "uninstall", name, "-n", name, "--ignore-not-found"])
            run(["kubectl", "delete", "ns", name, "--ignore-not-found", "--wait=false"])


def test_up_current_converts_through_port_forwards_and_down_stops_them(
    name: str, tmp_path: Path
) -> None:
    env_file = tmp_path / "env"
    out = make("up", name, env_file)
    assert "images: containerd" in out, "the local cluster's context means its containerd"
    assert "hack/cluster-up.sh" not in out
    assert "kubectl -n" in out
    assert "get mj" in out
    env = read_env(env_file)
    api_url, storage_url = env["MEDIAFLOW_API_URL"], env["MINIO_ENDPOINT"]
    assert urlsplit(api_url).hostname == "127.0.0.1"
    assert urlsplit(storage_url).hostname == "127.0.0.1"
    assert f"API:      {api_url}" in out
    # This cluster's CoreDNS runs on the host, which no podSelector matches: without its
    # address in the worker policy, workers resolve names only until kube-router enforces it.
    assert "cluster DNS outside pods: 10.244.0.1/32" in out
    policy = json.loads(run(["kubectl", "-n", name, "get", "networkpolicy", "-o", "json"]))
    (dns_rule,) = [
        rule
        for item in policy["items"]
        for rule in item["spec"]["egress"]
        if {"protocol": "UDP", "port": 53} in rule.get("ports", [])
    ]
    assert {"ipBlock": {"cidr": "10.244.0.1/32"}} in dns_rule["to"]
    forwards = pidfiles(name)
    assert len(forwards) == 2
    assert all(alive(int(p.read_text())) for p in forwards)

    # MINIO_* open the release's bundled MinIO from this machine.
    storage = Minio(
        urlsplit(storage_url).netloc, env["MINIO_ACCESS_KEY"], env["MINIO_SECRET_KEY"],
        secure=False, region=env["MINIO_REGION"],
    )  # fmt: skip
    assert storage.bucket_exists(env["MINIO_BUCKET"])

    photo = make_photo(tmp_path / "photo.jpg")
    with httpx.Client(base_url=api_url, timeout=60) as api:
        email, password = f"cur-{uuid.uuid4().hex[:10]}@example.com", uuid.uuid4().hex
        registered = api.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert registered.status_code == 201, registered.text
        login = api.post("/api/v1/auth/login", data={"username": email, "password": password})
        assert login.status_code == 200, login.text
        api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        with photo.open("rb") as file:
            upload = api.post(
                "/api/v1/image/convert/webp", files={"file": ("photo.jpg", file, "image/jpeg")}
            )
        assert upload.status_code == 202, upload.text
        job_id = upload.json()["data"]["job_id"]

        def finished() -> dict | None:
            job = api.get(f"/api/v1/jobs/{job_id}").json()["data"]
            return job if job["status"] in {"completed", "failed", "cancelled"} else None

        job = wait_until("the job to finish", finished, timeout=120, interval=1)
    assert job["status"] == "completed", (
        f"{job}\n"
        + run(["kubectl", "-n", name, "get", "mj", job_id, "-o", "yaml"])
        + run(["kubectl", "-n", name, "get", "events", "--sort-by=.lastTimestamp"])
    )
    # Signed for the forwarded MinIO: it downloads from this machine as is.
    assert job["result_url"].startswith(f"{storage_url}/")
    result = httpx.get(job["result_url"], timeout=30)
    assert result.status_code == 200, result.text[:300]
    assert result.content[:4] == b"RIFF"
    assert result.content[8:12] == b"WEBP"

    make("down", name, env_file)
    assert pidfiles(name) == []
    deadline = time.monotonic() + 10
    while listening(api_url) or listening(storage_url):
        assert time.monotonic() < deadline, "the port-forwards still listen after make down"
        time.sleep(0.5)
    assert not env_file.exists(), "its URLs no longer work"
    # The release (and the cluster) stay: only UNINSTALL=1 removes it.
    run(["helm", "status", name, "-n", name])
    run(["kubectl", "-n", name, "get", "mj", job_id])
