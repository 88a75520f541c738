"""User Secrets: naming, encoding, and the refresh-family rotation rules."""

# ruff: noqa: S106 - test passwords and token ids are fixtures, not secrets

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime

from kubernetes import client as kube

from mediaflow_api.auth.users import (
    MAX_FAMILIES,
    Family,
    Rotation,
    User,
    decode_secret,
    encode_data,
    prune,
    public_id,
    rotate,
    secret_name,
    storage_id,
    user_id,
)


def test_secret_name_is_deterministic_and_case_insensitive() -> None:
    uid = user_id(" Ada@Example.COM ")
    assert uid == hashlib.sha256(b"ada@example.com").hexdigest()[:32]
    assert uid == user_id("ada@example.com")
    assert user_id("bob@example.com") != uid
    name = secret_name(uid)
    assert name == f"user-{uid}"
    assert len(name) <= 63  # also a valid label value / DNS label


def test_encode_decode_round_trip_without_plaintext() -> None:
    user = User(
        id=user_id("ada@example.com"),
        email="ada@example.com",
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$salt$hash",
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        families={"f1": Family(current="t1", expires_at=123, ends_at=456)},
    )
    data = encode_data(user)
    assert set(data) == {"email", "password-hash", "created-at", "refresh-families"}
    secret = kube.V1Secret(
        metadata=kube.V1ObjectMeta(name=secret_name(user.id), resource_version="42"), data=data
    )
    decoded = decode_secret(secret)
    assert decoded.resource_version == "42"
    decoded.resource_version = None
    assert decoded == user
    assert base64.b64decode(data["password-hash"]).decode() == user.password_hash


def test_rotate_advances_the_family() -> None:
    families = {"f1": Family("t1", 100, 1000), "f2": Family("u1", 100, 1000)}
    assert rotate(families, "f1", "t1", "t2", 200) is Rotation.ROTATED
    assert families["f1"] == Family("t2", 200, 1000)
    assert families["f2"] == Family("u1", 100, 1000)


def test_rotation_never_reaches_past_the_end_of_the_login() -> None:
    families = {"f1": Family("t1", 100, 150)}
    assert rotate(families, "f1", "t1", "t2", 200) is Rotation.ROTATED
    assert families["f1"] == Family("t2", 150, 150)
    assert prune(families, now=150) == {}  # and at its end it is gone


def test_families_of_earlier_releases_end_where_they_expire() -> None:
    user = User(
        id=user_id("ada@example.com"),
        email="ada@example.com",
        password_hash="h",
        created_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    data = encode_data(user)
    data["refresh-families"] = base64.b64encode(b'{"f1":{"current":"t1","expiresAt":99}}').decode()
    secret = kube.V1Secret(metadata=kube.V1ObjectMeta(name=secret_name(user.id)), data=data)
    assert decode_secret(secret).families == {"f1": Family("t1", 99, 99)}


def test_reusing_a_token_revokes_only_its_family() -> None:
    families = {"f1": Family("t2", 100, 1000), "f2": Family("u1", 100, 1000)}
    assert rotate(families, "f1", "t1", "t3", 200) is Rotation.REUSED
    assert "f1" not in families
    assert "f2" in families
    # The newest token of the revoked family is now unknown too.
    assert rotate(families, "f1", "t2", "t4", 200) is Rotation.UNKNOWN


def test_prune_drops_expired_and_keeps_the_newest() -> None:
    families = {f"f{i}": Family(f"t{i}", 1000 + i, 5000) for i in range(MAX_FAMILIES + 5)}
    families["old"] = Family("x", 10, 5000)
    kept = prune(families, now=500)
    assert "old" not in kept
    assert len(kept) == MAX_FAMILIES
    assert "f0" not in kept
    assert f"f{MAX_FAMILIES + 4}" in kept


def test_ids_are_shown_as_uuids_and_read_either_way() -> None:
    uid = user_id("ada@example.com")
    shown = public_id(uid)
    assert re.fullmatch(r"[0-9a-f-]{36}", shown)
    assert shown.replace("-", "") == uid
    assert storage_id(shown) == uid
    assert storage_id(uid) == uid  # tokens and labels of earlier releases
    assert storage_id(shown.upper()) == uid
    assert storage_id("../../etc") is None
    assert storage_id("x" * 32) is None


def test_a_users_jobs_are_found_under_either_form_of_the_id() -> None:
    from mediaflow_api.jobs.model import is_owned_by, owner_selector

    uid = user_id("ada@example.com")
    shown = public_id(uid)
    assert owner_selector(shown) == f"mediaflow.io/owner in ({shown},{uid})"

    def mediajob(owner: str) -> dict:
        labels = {"mediaflow.io/owner": owner, "mediaflow.io/job-type": "image_convert_webp"}
        return {"metadata": {"labels": labels}}

    assert is_owned_by(mediajob(shown), shown)
    assert is_owned_by(mediajob(uid), shown)  # labelled by an earlier release
    assert not is_owned_by(mediajob(public_id(user_id("bob@example.com"))), shown)
