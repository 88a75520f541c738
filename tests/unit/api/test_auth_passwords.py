"""argon2id password hashing."""

from __future__ import annotations

from mediaflow_api.auth.passwords import hash_password, verify_password


def test_hash_is_salted_argon2id_without_the_password() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("$argon2id$")
    assert first != second  # a fresh salt each time
    assert "correct horse" not in first


def test_verify() -> None:
    stored = hash_password("correct horse")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "Correct horse")
    assert not verify_password(stored, "")


def test_unknown_user_and_broken_hash_fail() -> None:
    assert not verify_password(None, "mediaflow-no-such-user")  # not even the dummy's password
    assert not verify_password("not a hash", "anything")
