"""Register's email rule is one pattern, stated in the schema exactly as the API applies it."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema_rs import Draft202012Validator
from pydantic import ValidationError

from mediaflow_api.auth.schemas import (
    EMAIL_PATTERN,
    MAX_EMAIL_LENGTH,
    WHITESPACE,
    RegisterRequest,
)

pytestmark = pytest.mark.unit

PASSWORD = "long enough"  # noqa: S105 - a test password


def registers(email: str) -> bool:
    try:
        RegisterRequest(email=email, password=PASSWORD)
    except ValidationError:
        return False
    return True


# The email as the OpenAPI schema states it, judged by the validator schemathesis uses
# (ECMA-262 regular expressions, as JSON Schema specifies).
EMAIL_SCHEMA = Draft202012Validator(
    RegisterRequest.model_json_schema()["properties"]["email"] | {"type": "string"}
)


def schema_allows(email: str) -> bool:
    return EMAIL_SCHEMA.is_valid(email)


def test_the_schema_states_the_pattern_and_the_length() -> None:
    email = RegisterRequest.model_json_schema()["properties"]["email"]
    assert (email["pattern"], email["maxLength"]) == (EMAIL_PATTERN, MAX_EMAIL_LENGTH)


def test_the_patterns_whitespace_is_what_strip_removes() -> None:
    # Spelt out rather than `\s`, whose meaning differs between Python and JSON Schema;
    # so it means the same to Python's `re` and to an ECMA-262 validator.
    characters = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    whitespace = {c for c in characters if c.isspace()}
    python = re.compile(f"^[{WHITESPACE}]$")
    ecma = Draft202012Validator({"type": "string", "pattern": f"^[{WHITESPACE}]$"})
    assert {c for c in characters if python.match(c)} == whitespace
    assert {c for c in characters if ecma.is_valid(c)} == whitespace


@pytest.mark.parametrize(
    ("email", "stored"),
    [
        ("ada@example.com", "ada@example.com"),
        ("  Ada@Example.COM\t", "ada@example.com"),
        ("a.b+c@sub.example.org", "a.b+c@sub.example.org"),
        ("0@0.0", "0@0.0"),
    ],
)
def test_an_email_is_stored_stripped_and_lowercased(email: str, stored: str) -> None:
    assert RegisterRequest(email=email, password=PASSWORD).email == stored
    assert schema_allows(email)


@pytest.mark.parametrize(
    "email",
    [
        "0" * 100,  # found by the schemathesis run: the schema allowed it
        "a@b.c\x1f@d",
        "a b@example.com",
        "a@example",
        "a@example.",
        "@example.com",
        "a@@example.com",
        "a@exa\u00a0mple.com",
        "",
        "a@" + "b" * MAX_EMAIL_LENGTH + ".com",
    ],
)
def test_what_is_no_email_is_refused_by_both(email: str) -> None:
    assert not registers(email)
    assert not schema_allows(email)


def test_the_refusal_says_what_an_email_is() -> None:
    with pytest.raises(ValidationError) as raised:
        RegisterRequest(email="ada", password=PASSWORD)
    assert "must be an email address like name@example.com" in str(raised.value)


EMAILISH = st.text(
    alphabet=st.sampled_from(["a", "Z", "0", "@", ".", "-", " ", "\t", "\n", "\x1f", "\x85"])
    | st.sampled_from(["\u00a0", "\u2003", "\ufeff", "\u00e9", "\U0001f600"])
    | st.characters(),
    max_size=40,
)


# Deterministic, and not judged on speed: the machine running it may be busy.
@settings(
    database=None,
    derandomize=True,
    max_examples=500,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(EMAILISH)
def test_register_accepts_exactly_what_the_schema_allows(email: str) -> None:
    assert registers(email) == schema_allows(email)
