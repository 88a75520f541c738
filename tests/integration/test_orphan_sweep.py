"""The operator's orphan sweep against the real MinIO and API server: objects of its
namespaces' `uploads/` and `results/` prefixes that no MediaJob accounts for go; a MediaJob's
input and result, other prefixes, namespaces it does not serve, prefixes named after no
existing namespace and the files of an API upload still in progress stay."""

from __future__ import annotations

import io
import json
import socket
import time
import uuid
from pathlib import Path

from kubernetes import client

from mediaflow_core.naming import upload_marker_key
from tests.environment import (
    MinioSettings,
    ScratchNamespace,
    lane_prefix,
    unique_name,
    wait_until,
)
from tests.integration.api_process import ApiProcess
from tests.integration.operator_process import OperatorProcess
from tests.integration.test_api_jobs import User
from tests.integration.test_mediajob import create_mediajob, wait_finished
from tests.media import make_photo

# Rounds every second, for objects over a second old (the chart's defaults: 900 s each).
SWEEPING = {"MEDIAFLOW_ORPHAN_SWEEP_INTERVAL_SECONDS": "1", "MEDIAFLOW_ORPHAN_GRACE_SECONDS": "1"}


def test_the_sweep_deletes_only_what_no_mediajob_accounts_for(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    storage, bucket, ns = minio_settings.client(), minio_settings.bucket, namespace.name

    def put(key: str) -> str:
        storage.put_object(bucket, key, io.BytesIO(b"x"), 1)
        return key

    def exists(key: str) -> bool:
        return any(storage.list_objects(bucket, prefix=key))

    # A MediaJob whose input lives under uploads/, as the API stores them: it and its result stay.
    upload = f"{ns}/uploads/{uuid.uuid4()}/input"
    storage.fput_object(bucket, upload, str(make_photo(tmp_path / "photo.jpg")))
    mj = create_mediajob(
        kube, namespace, "kept",
        {"operation": "ImageConvert", "input": {"object": {"key": upload}},
         "imageConvert": {"format": "webp"}},
    )  # fmt: skip
    assert wait_finished(kube, ns, "kept")["status"]["phase"] == "Succeeded"
    result = f"{ns}/results/{mj['metadata']['uid']}/output"
    assert exists(result)
    orphans = [
        put(f"{ns}/uploads/{uuid.uuid4()}/input"),  # its MediaJob was never created
        put(f"{ns}/results/{uuid.uuid4()}/output"),  # its MediaJob is gone
    ]
    others = [
        put(f"{ns}/samples/photo.jpg"),  # a kubectl user's input
        put(f"{unique_name('mf-other')}/uploads/{uuid.uuid4()}/input"),  # not served
        # served, no such namespace
        put(f"{unique_name(lane_prefix('mf-test'))}/uploads/{uuid.uuid4()}/input"),
    ]

    operator.stop()
    sweeping = OperatorProcess.start(extra_env=SWEEPING)
    try:
        wait_until(
            "the sweep to delete the orphans",
            lambda: not any(exists(key) for key in orphans),
            timeout=60,
        )
        # One made while it runs goes at a later round.
        late = put(f"{ns}/uploads/{uuid.uuid4()}/input")
        wait_until("the sweep to delete a new orphan", lambda: not exists(late), timeout=60)
        for key in (upload, result, *others):
            assert exists(key), key
    finally:
        sweeping.stop()
        for key in others[1:]:
            storage.remove_object(bucket, key)
        operator.restart()


def test_the_sweep_spares_a_slow_batch_upload_in_progress(
    kube: client.ApiClient,
    namespace: ScratchNamespace,
    minio_settings: MinioSettings,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    """A batch's first file is stored long before its MediaJob exists (the MediaJobs are made
    when the whole body is in). With a grace of one second the sweep would delete it; the
    API's marker keeps it, and the batch completes with both inputs."""
    storage, bucket, ns = minio_settings.client(), minio_settings.bucket, namespace.name

    def under_uploads() -> set[str]:
        return {
            o.object_name for o in storage.list_objects(bucket, f"{ns}/uploads/", recursive=True)
        }

    photo = make_photo(tmp_path / "photo.jpg").read_bytes()
    part = b'--b0undary\r\nContent-Disposition: form-data; name="files"; filename="{}"\r\n\r\n'
    first = part.replace(b"{}", b"one.jpg") + photo + b"\r\n"
    second_head = part.replace(b"{}", b"two.jpg") + photo[:1000]
    rest = photo[1000:] + b"\r\n--b0undary--\r\n"

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    operator.stop()
    sweeping = OperatorProcess.start(extra_env=SWEEPING)
    api_env = {
        "MEDIAFLOW_API_NAMESPACE": ns,
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "10000",
        "MEDIAFLOW_API_UPLOAD_IDLE_TIMEOUT_SECONDS": "120",
    }
    try:
        with ApiProcess(api_env) as api:
            user = User(api)
            host, port = api.url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port))) as sock:
                sock.sendall(
                    (
                        f"POST /api/v1/image/batch/convert/webp HTTP/1.1\r\nHost: {host}\r\n"
                        f"Authorization: {user.headers['Authorization']}\r\n"
                        "Content-Type: multipart/form-data; boundary=b0undary\r\n"
                        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                    ).encode()
                    + chunk(first + second_head)
                )
                stored = wait_until(
                    "the first file to be stored",
                    lambda: {k for k in under_uploads() if k.endswith("/input")},
                    timeout=30,
                )
                (first_key,) = stored
                # The sweep runs: an unmarked upload of the same age goes ...
                control = f"{ns}/uploads/{uuid.uuid4()}/input"
                storage.put_object(bucket, control, io.BytesIO(b"x"), 1)
                wait_until(
                    "the sweep to delete an unmarked upload",
                    lambda: control not in under_uploads(),
                    timeout=60,
                )
                time.sleep(3)  # ... and a few more rounds pass, well past the grace
                assert first_key in under_uploads()
                assert upload_marker_key(first_key) in under_uploads()

                sock.sendall(chunk(rest) + b"0\r\n\r\n")
                sock.settimeout(60)
                answer = b""
                while data := sock.recv(65536):
                    answer += data
            assert answer.startswith(b"HTTP/1.1 202"), answer[:500]
            jobs = json.loads(answer.split(b"\r\n\r\n", 1)[1])["data"]["jobs"]
            ids = {job["job_id"] for job in jobs}
            # The batch's one MediaJob has an input per file, each under the job's id.
            inputs = {
                k for k in under_uploads() if k.endswith("/input") and k.split("/")[-2] in ids
            }
            assert len(inputs) == 2
            assert first_key in inputs
            # Both inputs stay (their MediaJobs account for them), the markers are gone.
            assert under_uploads() >= inputs
            assert not [k for k in under_uploads() if k.endswith("/in-progress")]
    finally:
        sweeping.stop()
        operator.restart()
