"""The orphan sweep's decisions: which objects no MediaJob accounts for."""

from datetime import UTC, datetime, timedelta

import pytest

from mediaflow_core.naming import UPLOAD_MARKER_TTL, upload_marker_key
from mediaflow_operator.sweeper import (
    LiveMediaJobs,
    StoredObject,
    orphans,
    served,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=15)
OLD = NOW - timedelta(hours=1)


def mediajob(uid: str, key: str | None = None) -> dict:
    spec = {"input": {"object": {"key": key}} if key else {"url": "https://example.com/a.jpg"}}
    return {"metadata": {"uid": uid}, "spec": spec}


def test_only_unaccounted_uploads_and_results_past_the_grace_period_are_orphans() -> None:
    live = LiveMediaJobs.from_items(
        [mediajob("uid-live", "ns/uploads/job-live/input"), mediajob("uid-url")]
    )
    objects = [
        StoredObject("ns/uploads/job-live/input", OLD),  # a MediaJob's input
        StoredObject("ns/uploads/job-gone/input", OLD),  # orphan
        StoredObject("ns/uploads/job-new/input", NOW - timedelta(seconds=2)),  # its MediaJob
        StoredObject("ns/results/uid-live/output", OLD),  # is about to be created
        StoredObject("ns/results/uid-url/output", OLD),
        StoredObject("ns/results/uid-gone/output", OLD),  # orphan
        StoredObject("ns/samples/photo.jpg", OLD),  # a kubectl user's input: not ours
        StoredObject("ns-other/uploads/x/input", OLD),  # another namespace
        StoredObject("nsx/uploads/y/input", OLD),  # a namespace that merely starts alike
    ]
    assert orphans("ns", objects, live, NOW, GRACE) == [
        "ns/uploads/job-gone/input",
        "ns/results/uid-gone/output",
    ]


def test_a_namespace_without_mediajobs_loses_only_old_objects_of_its_own_prefixes() -> None:
    objects = [
        StoredObject("ns/results/a/output", NOW - GRACE),
        StoredObject("ns/results/b/output", NOW - GRACE + timedelta(seconds=1)),
        StoredObject("ns/inputs/c", OLD),
    ]
    live = LiveMediaJobs.from_items([])
    assert orphans("ns", objects, live, NOW, GRACE) == ["ns/results/a/output"]


def test_served_namespaces_follow_the_operators_globs() -> None:
    assert served("anything", ())
    assert served("mf-test-1", ("mf-test-*", "mf-api-*"))
    assert not served("mediaflow", ("mf-test-*", "mf-api-*"))
    assert served("mediaflow", ("mediaflow",))


def test_a_fresh_upload_marker_spares_its_prefix_and_a_stale_one_does_not() -> None:
    """A slow batch: its first file is stored long before its MediaJob exists."""
    live = LiveMediaJobs.from_items([])
    fresh = NOW - UPLOAD_MARKER_TTL + timedelta(seconds=1)
    stale = NOW - UPLOAD_MARKER_TTL
    grace = timedelta(seconds=1)  # the tests' setting: only the markers keep objects
    objects = [
        StoredObject("ns/uploads/slow-1/input", OLD),  # stored an hour ago
        StoredObject("ns/uploads/slow-1/in-progress", fresh),  # its request still runs
        StoredObject("ns/uploads/dead-1/input", OLD),
        StoredObject("ns/uploads/dead-1/in-progress", stale),  # its API died
        StoredObject("ns/uploads/other/input", OLD),  # no marker of its own
        StoredObject("ns/uploads/in-progress", OLD),  # not a marker: not under an upload
    ]
    assert orphans("ns", objects, live, NOW, grace) == [
        "ns/uploads/dead-1/input",
        "ns/uploads/dead-1/in-progress",
        "ns/uploads/other/input",
        "ns/uploads/in-progress",
    ]


def test_a_marker_of_another_namespace_spares_nothing_here() -> None:
    objects = [
        StoredObject("ns/uploads/a/input", OLD),
        StoredObject("other/uploads/a/in-progress", NOW),
    ]
    assert orphans("ns", objects, LiveMediaJobs.from_items([]), NOW, GRACE) == [
        "ns/uploads/a/input"
    ]


def test_marker_keys() -> None:
    assert upload_marker_key("ns/uploads/job/input") == "ns/uploads/job/in-progress"
    with pytest.raises(ValueError, match="not under"):
        upload_marker_key("ns/samples/photo.jpg")


def test_mailboxes_of_warm_pods_that_are_gone_are_swept_after_the_grace() -> None:
    from datetime import UTC, datetime, timedelta

    from mediaflow_operator.sweeper import StoredObject, stale_mailboxes

    now, grace = datetime(2026, 12, 2, 12, tzinfo=UTC), timedelta(minutes=15)
    old, fresh = now - timedelta(hours=1), now - timedelta(minutes=1)
    objects = [
        StoredObject("_sessions/team/mf-warm-gone/000000.json", old),
        StoredObject("_sessions/team/mf-warm-gone/000001.json", old),
        StoredObject("_sessions/team/mf-warm-live/000000.json", old),  # its Job exists
        StoredObject("_sessions/team/mf-warm-new/000000.json", old),
        StoredObject("_sessions/team/mf-warm-new/000001.json", fresh),  # written a minute ago
        StoredObject("team/results/x/output", old),  # not a mailbox
    ]
    keys = stale_mailboxes(objects, {("team", "mf-warm-live")}, now, grace)
    assert sorted(keys) == [
        "_sessions/team/mf-warm-gone/000000.json",
        "_sessions/team/mf-warm-gone/000001.json",
    ]


def test_every_input_of_a_mediajob_of_many_inputs_is_live() -> None:
    batch = {
        "metadata": {"uid": "uid-batch"},
        "spec": {"inputs": [{"object": {"key": "ns/uploads/batch-1/job-a/input"}},
                            {"url": "https://example.com/b.jpg"},
                            {"object": {"key": "ns/uploads/batch-1/job-c/input"}}]},
    }  # fmt: skip
    live = LiveMediaJobs.from_items([batch, mediajob("uid-one", "ns/uploads/one/input")])
    objects = [
        StoredObject("ns/uploads/batch-1/job-a/input", OLD),
        StoredObject("ns/uploads/batch-1/job-b/input", OLD),  # its file was cancelled: orphan
        StoredObject("ns/uploads/batch-1/job-c/input", OLD),
        StoredObject("ns/uploads/one/input", OLD),
        StoredObject("ns/results/uid-batch/items/000/output", OLD),
    ]
    assert orphans("ns", objects, live, NOW, GRACE) == ["ns/uploads/batch-1/job-b/input"]
