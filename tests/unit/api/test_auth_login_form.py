"""The login form, read from either encoding OAuth2 password forms come in."""

from __future__ import annotations

import pytest
from litestar.exceptions import ValidationException

from mediaflow_api.controllers.auth import parse_login_form
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
