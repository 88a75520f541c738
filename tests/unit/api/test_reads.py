"""Which version the API reads a MediaJob at (mediaflow_api.jobs.reads; pure parts). The
reads themselves are proven against the real API server by the integration tests of the
jobs endpoints (a job is found right after it is made, gone right after it is deleted)."""

from __future__ import annotations

import uuid

import pytest

from mediaflow_api.jobs import reads
from mediaflow_api.jobs.model import JobType, batch_mediajob_body, new_batch_name, new_job_id

pytestmark = pytest.mark.unit


def test_a_mediajob_this_process_never_wrote_is_read_from_the_cache() -> None:
    assert reads.read_version(f"never-{uuid.uuid4()}") == "0"
    assert reads.read_version(f"never-{uuid.uuid4()}", fresh=True) == reads.QUORUM


def test_after_its_own_write_the_process_reads_no_older_than_that_write() -> None:
    name = f"job-{uuid.uuid4()}"
    reads.wrote(name, {"kind": "MediaJob", "metadata": {"name": name, "resourceVersion": "42"}})
    assert reads.read_version(name) == "42"
    reads.wrote(name, {"metadata": {"name": name, "resourceVersion": "57"}})  # a later patch
    assert reads.read_version(name) == "57"
    assert reads.read_version(name, fresh=True) == reads.QUORUM


def test_a_delete_without_a_version_sends_the_next_read_to_etcd() -> None:
    name = f"job-{uuid.uuid4()}"
    reads.wrote(name, {"metadata": {"resourceVersion": "7"}})
    # Deleted at once (no finalizer): the API server answers with a Status, whose version
    # is not the MediaJob's; nor does a 404 (deleted already) give one.
    reads.wrote(name, {"kind": "Status", "status": "Success", "metadata": {}})
    assert reads.read_version(name) == reads.QUORUM
    other = f"job-{uuid.uuid4()}"
    reads.wrote(other, None)
    assert reads.read_version(other) == reads.QUORUM


def test_a_batch_made_here_knows_where_its_files_jobs_are() -> None:
    ids = [new_job_id() for _ in range(3)]
    name = new_batch_name()
    spec = {
        "operation": "ImageConvert",
        "inputs": [{"object": {"key": f"mf/u/{n}"}} for n in range(3)],
    }
    body = batch_mediajob_body(
        name, "mf", "alice", [(i, f"{n}.jpg") for n, i in enumerate(ids)],
        JobType.IMAGE_CONVERT_WEBP, spec, retention_seconds=60,
    )  # fmt: skip
    body["metadata"]["resourceVersion"] = "9"
    reads.created(body)
    assert [reads.BATCH_OF.get(i) for i in ids] == [name] * 3
    assert reads.read_version(name) == "9"


def test_the_recent_map_forgets_the_least_recently_used_first() -> None:
    recent = reads.Recent(size=2)
    recent.put("a", "1")
    recent.put("b", "2")
    assert recent.get("a") == "1"  # used: b is now the oldest
    recent.put("c", "3")
    assert (recent.get("a"), recent.get("b"), recent.get("c")) == ("1", None, "3")
