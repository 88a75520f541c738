"""`mediaflow.io/delete-input` deletes only an upload made for the MediaJob itself (issue 10,
item 1): any other key, even one the MediaJob may read, is kept."""

import pytest

from mediaflow_core.naming import MediaJobRef, upload_prefix
from mediaflow_operator.builders import decide_input_deletion

REF = MediaJobRef(
    name="0f8e6c1a-9d7b-4c3e-8a21-5b6d7e8f9a0b",
    namespace="team-a",
    uid="0123abcd-4567-89ef-0123-456789abcdef",
)
ASKS = {"mediaflow.io/delete-input": "true"}
BUCKET = "mediaflow"


def decide(key: str, annotations: dict | None = None, bucket: str | None = None):
    source = {"key": key} if bucket is None else {"key": key, "bucket": bucket}
    return decide_input_deletion(REF, ASKS if annotations is None else annotations, source, BUCKET)


def test_the_upload_made_for_the_mediajob_is_deleted() -> None:
    key = f"team-a/uploads/{REF.name}/input"
    assert upload_prefix(REF) == f"team-a/uploads/{REF.name}/"
    decision = decide(key)
    assert decision is not None
    assert decision.allowed
    assert decision.key == key
    assert decide(key, bucket=BUCKET).allowed


@pytest.mark.parametrize(
    "annotations", [{}, {"mediaflow.io/delete-input": "false"}, {"mediaflow.io/cancel": "true"}]
)
def test_without_the_annotation_nothing_is_decided(annotations: dict) -> None:
    assert decide(f"team-a/uploads/{REF.name}/input", annotations) is None


def test_a_url_input_has_nothing_to_delete() -> None:
    assert decide_input_deletion(REF, ASKS, {}, BUCKET) is None


@pytest.mark.parametrize(
    "key",
    [
        "team-a/samples/photo.jpg",  # readable by the MediaJob, shared by its namespace
        "team-a/uploads/other-job/input",  # another MediaJob's upload
        f"team-a/uploads/{REF.name}-2/input",  # a name that merely starts like this one
        f"team-a/uploads/{REF.name}",  # the prefix without its slash
        f"team-a/uploads/{REF.name}/",  # the folder itself
        f"team-a/uploads/{REF.name}/../other-job/input",
        f"team-a/uploads/{REF.name}/./input",
        f"team-a/uploads/{REF.name}//input",
        f"team-b/uploads/{REF.name}/input",  # another namespace (a Failed MediaJob names it)
        "someone-else/secret.png",
        f"team-a/results/{REF.uid}/output",
        f"/team-a/uploads/{REF.name}/input",
    ],
)
def test_any_other_key_is_kept_with_a_reason(key: str) -> None:
    decision = decide(key)
    assert decision is not None
    assert not decision.allowed
    assert decision.key == key
    assert decision.reason == (
        f"only an upload made for this MediaJob (under 'team-a/uploads/{REF.name}/') may be deleted"
    )


def test_a_key_of_another_bucket_is_kept() -> None:
    decision = decide(f"team-a/uploads/{REF.name}/input", bucket="elsewhere")
    assert decision is not None
    assert not decision.allowed
    assert decision.reason == "it is in bucket 'elsewhere', not 'mediaflow'"
