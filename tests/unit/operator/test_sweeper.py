"""The orphan sweep's decisions: which objects no MediaJob accounts for."""

from datetime import UTC, datetime, timedelta

from mediaflow_operator.sweeper import LiveMediaJobs, StoredObject, orphans, served

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
