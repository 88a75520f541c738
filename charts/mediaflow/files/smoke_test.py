"""`helm test`: register, upload a generated PNG for WebP conversion, wait, download.

Runs in a pod of the release's image with the standard library only. Settings come from the
environment: MEDIAFLOW_API_URL, TIMEOUT_SECONDS, DOWNLOAD_RESULT.
"""

from __future__ import annotations

import json
import os
import secrets
import struct
import sys
import time
import urllib.error
import urllib.request
import zlib

API = os.environ["MEDIAFLOW_API_URL"].rstrip("/")
TIMEOUT = float(os.environ.get("TIMEOUT_SECONDS", "180"))
DOWNLOAD = os.environ.get("DOWNLOAD_RESULT", "true") == "true"


def png(width: int, height: int) -> bytes:
    """An RGB gradient as a PNG, made with zlib and struct."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 4 % 256, y * 4 % 256, 128)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def call(
    method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310  (the release's own API URL)
        API + path, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def check(what: str, status: int, expected: int, answer: dict) -> None:
    print(f"{what}: HTTP {status}", flush=True)
    if status != expected:
        sys.exit(f"{what}: expected HTTP {expected}, got {status}: {json.dumps(answer)[:500]}")


def main() -> None:
    email = f"helm-test-{secrets.token_hex(6)}@example.com"
    password = secrets.token_urlsafe(18)
    status, answer = call(
        "POST",
        "/api/v1/auth/register",
        body=json.dumps({"email": email, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    check("register", status, 201, answer)
    auth = {"Authorization": f"Bearer {answer['data']['tokens']['access_token']}"}

    boundary = secrets.token_hex(16)
    form = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="helm-test.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png(64, 64)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, answer = call(
        "POST",
        "/api/v1/image/convert/webp",
        body=form,
        headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    check("upload", status, 202, answer)
    job_id = answer["data"]["job_id"]
    print(f"job {job_id}", flush=True)

    deadline = time.monotonic() + TIMEOUT
    while True:
        status, answer = call("GET", f"/api/v1/jobs/{job_id}", headers=auth)
        check("job", status, 200, answer)
        job = answer["data"]
        if job["status"] == "completed":
            break
        if job["status"] in {"failed", "cancelled"}:
            sys.exit(f"the job ended {job['status']}: {json.dumps(job)[:500]}")
        if time.monotonic() > deadline:
            sys.exit(f"the job is still {job['status']} after {TIMEOUT:.0f}s")
        time.sleep(2)

    if DOWNLOAD:
        with urllib.request.urlopen(job["result_url"], timeout=30) as response:  # noqa: S310
            data = response.read()
        if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
            sys.exit(f"the result is not a WebP file: {data[:16]!r}")
        print(f"downloaded the result: {len(data)} bytes of WebP", flush=True)
    # The job, its MediaJob and its files go; the test user (a Secret) stays.
    status, answer = call("DELETE", f"/api/v1/jobs/{job_id}", headers=auth)
    if status not in {200, 204}:
        sys.exit(f"deleting the job: HTTP {status}: {json.dumps(answer)[:500]}")
    print("ok", flush=True)


if __name__ == "__main__":
    main()
