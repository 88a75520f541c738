"""The login form, read from either encoding OAuth2 password forms come in."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema_rs import Draft202012Validator
from litestar.exceptions import ValidationException
from pydantic import BaseModel, Field

from mediaflow_api.auth.schemas import LoginForm
from mediaflow_api.controllers.auth import form_schema, parse_login_form
from mediaflow_api.problems import Problem


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_both_form_encodings_are_read(content_type: str) -> None:
    form = parse_login_form(content_type, {"username": "ada@example.com", "password": "pw"})
    assert (form.username, form.password) == ("ada@example.com", "pw")


def test_a_missing_field_names_it() -> None:
    with pytest.raises(ValidationException) as raised:
        parse_login_form("multipart/form-data", {"username": "ada@example.com"})
    assert [e["key"] for e in raised.value.extra] == ["password"]  # type: ignore[union-attr]


def test_a_file_where_the_password_goes_is_refused() -> None:
    with pytest.raises(ValidationException):
        parse_login_form("multipart/form-data", {"username": "a@b.c", "password": object()})


def test_anything_but_a_form_is_415() -> None:
    with pytest.raises(Problem) as raised:
        parse_login_form("application/json", {})
    assert raised.value.status_code == 415


def test_a_field_sent_empty_counts_as_left_out() -> None:
    # As the previous (FastAPI) service read forms, and as HTML forms send unfilled fields.
    form = parse_login_form(
        "multipart/form-data",
        {"username": "a@b.c", "password": "pw", "grant_type": "", "scope": ""},
    )
    assert (form.grant_type, form.scope) == (None, "")
    with pytest.raises(ValidationException) as raised:
        parse_login_form("multipart/form-data", {"username": "a@b.c", "password": ""})
    assert [e["key"] for e in raised.value.extra] == ["password"]  # type: ignore[union-attr]


def test_grant_type_is_password_when_sent() -> None:
    form = parse_login_form(
        "application/x-www-form-urlencoded",
        {"username": "a@b.c", "password": "pw", "grant_type": "password"},
    )
    assert form.grant_type == "password"
    with pytest.raises(ValidationException):
        parse_login_form(
            "application/x-www-form-urlencoded",
            {"username": "a@b.c", "password": "pw", "grant_type": "client_credentials"},
        )


def test_the_form_schema_states_the_rules_of_the_form() -> None:
    schema = form_schema(LoginForm).to_schema()
    assert schema["required"] == ["username", "password"]
    fields = schema["properties"]
    assert fields["username"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 254,
        "description": "The email.",
    }
    assert fields["password"]["minLength"] == 1
    assert fields["grant_type"]["enum"] == ["password", ""]
    assert "null" not in str(schema)  # a form field is left out, never null


def test_a_model_a_form_cannot_carry_is_refused() -> None:
    class Counted(BaseModel):
        count: int

    class OptionalButNotEmpty(BaseModel):
        name: str = Field(default="x", min_length=1)

    for model in (Counted, OptionalButNotEmpty):
        with pytest.raises(ValueError, match=model.__name__):
            form_schema(model)


FIELD_TEXT = st.sampled_from(["", "password", "a@b.c", "x" * 300, "x" * 600]) | st.text(max_size=8)
FORMS = st.dictionaries(
    st.sampled_from(["username", "password", "grant_type", "scope", "other"]), FIELD_TEXT
)


# Deterministic, and not judged on speed: the machine running it may be busy.
@settings(
    database=None,
    derandomize=True,
    max_examples=500,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(FORMS)
def test_the_login_schema_allows_exactly_the_forms_the_api_reads(form: dict[str, str]) -> None:
    # The validator schemathesis judges requests with (ECMA-262 regular expressions).
    validator = Draft202012Validator(form_schema(LoginForm).to_schema())
    try:
        parse_login_form("multipart/form-data", form)
    except ValidationException:
        read = False
    else:
        read = True
    assert read == validator.is_valid(form)
