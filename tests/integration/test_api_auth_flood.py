"""Issue 10, item 2: waves of parallel sign-ins against the API as a real process.

argon2id holds 64 MiB per hash outside the GIL, so unbounded parallel logins used to add
up (12 took the API from 130 to 549 MiB, over the chart's 512 MiB limit). With the hashing
gate the process's peak stays within base + concurrency x 64 MiB, the excess is answered
503 with Retry-After, and the API keeps answering /health.
"""

# ruff: noqa: S105 - test passwords are fixtures, not secrets

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.integration.api_process import ApiProcess

PASSWORD = "correct horse battery"
CONCURRENCY = 2
ARGON2_MIB = 64
# What else a wave may touch: request threads, their malloc arenas, parsing, responses.
SLACK_MIB = 48
WAVES = 3
PARALLEL = 16


def status_kib(pid: int, field: str) -> int:
    """A `VmRSS`/`VmHWM` line of /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def test_waves_of_parallel_sign_ins_leave_the_api_up_and_within_its_memory_bound(
    api_namespace: str, users_namespace: str
) -> None:
    env = {
        "MEDIAFLOW_API_NAMESPACE": api_namespace,
        "MEDIAFLOW_API_USERS_NAMESPACE": users_namespace,
        # Every request reaches the hashing gate: the rate limits are not what is tested.
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "10000",
        "MEDIAFLOW_API_AUTH_ACCOUNT_RATE_LIMIT_BURST": "10000",
        "MEDIAFLOW_API_PASSWORD_HASH_CONCURRENCY": str(CONCURRENCY),
        "MEDIAFLOW_API_PASSWORD_HASH_MAX_WAITING": "4",
        "MEDIAFLOW_API_PASSWORD_HASH_QUEUE_SECONDS": "3",
    }
    with ApiProcess(env) as api, httpx.Client(base_url=f"{api.url}/api/v1", timeout=60) as http:
        assert api.process is not None
        pid = api.process.pid
        email = f"flood-{uuid.uuid4().hex[:10]}@example.com"
        # Warm-up: every code path of a wave once, so the base includes what they import.
        assert http.post("/auth/register", json={"email": email, "password": PASSWORD}).is_success
        assert http.post("/auth/login", data={"username": email, "password": PASSWORD}).is_success
        assert http.get("/health").status_code == 200
        base_kib = status_kib(pid, "VmRSS")

        def sign_in(i: int) -> httpx.Response:
            if i % 4 == 0:  # a registration: one hash
                fresh = f"flood-{uuid.uuid4().hex[:10]}@example.com"
                return http.post("/auth/register", json={"email": fresh, "password": PASSWORD})
            # A login of the user, a wrong password, an unknown email: one verification each.
            username = email if i % 4 != 3 else f"nobody-{uuid.uuid4().hex[:8]}@example.com"
            password = PASSWORD if i % 4 == 1 else "wrong password!"
            return http.post("/auth/login", data={"username": username, "password": password})

        responses: list[httpx.Response] = []
        for _ in range(WAVES):
            with ThreadPoolExecutor(PARALLEL) as pool:
                responses += pool.map(sign_in, range(PARALLEL))
            assert api.process.poll() is None, "the API died"
            assert http.get("/health").status_code == 200
        peak_kib = status_kib(pid, "VmHWM")

    print(f"API VmRSS after warm-up {base_kib // 1024} MiB, VmHWM {peak_kib // 1024} MiB")
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 201, 401, 503}, statuses
    busy = [r for r in responses if r.status_code == 503]
    assert busy, "16 at once over 2 slots and a queue of 4: some must be turned away"
    for response in busy:
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["type"].endswith("busy")
    assert {200, 201} & set(statuses), "the gate lets sign-ins through, too"
    bound_kib = base_kib + (CONCURRENCY * ARGON2_MIB + SLACK_MIB) * 1024
    assert peak_kib <= bound_kib, (
        f"peak {peak_kib // 1024} MiB over base {base_kib // 1024} + {CONCURRENCY} x "
        f"{ARGON2_MIB} + {SLACK_MIB} MiB"
    )
