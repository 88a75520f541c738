"""The API side of completion webhooks (issue 15): the form field and the users' keys."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from mediaflow_api.uploads.forms import ENDPOINTS, InvalidFieldsError, check_fields_so_far
from mediaflow_api.uploads.openapi import request_body
from mediaflow_api.webhooks.keys import current, data_key

OWNER = "0f8fad5b-d9cb-469f-a165-70867728950e"
NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def encoded(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_every_upload_endpoint_takes_a_callback_url() -> None:
    for endpoint in ENDPOINTS.values():
        check_fields_so_far(endpoint, {"callback_url": "https://hooks.example/x?a=1"})
        schema = request_body(endpoint).content["multipart/form-data"].schema
        field = schema.properties["callback_url"]  # type: ignore[union-attr,index]
        assert field.max_length == 2048
        assert field.pattern is not None


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "https://user:pw@example.com/", "https://" + "a" * 2050, "x"]
)
def test_a_bad_callback_url_is_refused_before_the_file(url: str) -> None:
    with pytest.raises(InvalidFieldsError) as raised:
        check_fields_so_far(ENDPOINTS["/image/convert/webp"], {"callback_url": url})
    assert raised.value.errors[0][0] == "callback_url"


def test_a_users_key_and_the_previous_one_during_the_grace() -> None:
    key = data_key(OWNER)
    assert key == "0f8fad5bd9cb469fa16570867728950e"
    assert current({}, OWNER, NOW, 60) is None
    data = {key: encoded("whsec_new")}
    found = current(data, OWNER, NOW, 60)
    assert found is not None
    assert (found.secret, found.previous) == ("whsec_new", None)
    data = {
        key: encoded("whsec_new whsec_old"),
        f"{key}.rotated": encoded((NOW - timedelta(seconds=30)).isoformat()),
    }
    found = current(data, OWNER, NOW, 60)
    assert found is not None
    assert (found.secret, found.previous) == ("whsec_new", "whsec_old")
    assert found.previous_expires_at == NOW + timedelta(seconds=30)
    later = current(data, OWNER, NOW + timedelta(seconds=31), 60)
    assert later is not None
    assert later.previous is None
