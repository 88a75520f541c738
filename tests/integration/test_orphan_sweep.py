"""The operator's orphan sweep against the real MinIO and API server: objects of its
namespaces' `uploads/` and `results/` prefixes that no MediaJob accounts for go; a MediaJob's
input and result, other prefixes, namespaces it does not serve and prefixes named after no
existing namespace stay."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

from kubernetes import client

from tests.environment import (
    MinioSettings,
    ScratchNamespace,
    lane_prefix,
    unique_name,
    wait_until,
)
from tests.integration.operator_process import OperatorProcess
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
