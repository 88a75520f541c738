"""Hooks of the schemathesis run of tests/integration/test_api_schema.py (loaded by
schemathesis through SCHEMATHESIS_HOOKS, in its own process): access tokens, and the
generated requests left out (ones that test nothing, and uploads naming a preset).

`POST /auth/logout-all` ends every login of the user whose token it is given. With one user
for everything, each of its cases would revoke the token the other operations are being
tested with (on the other worker too), leaving them nothing but 401s. So it gets a user of
its own, logged in afresh for each case; every other operation uses the test's user, logged
in once (and again on a 401). Uploads naming a preset are left out (names_a_preset).
"""

from __future__ import annotations

import os
import re

import httpx
import schemathesis
from schemathesis import AuthContext, Case, HookContext

LOGOUT_EVERYWHERE = "logoutEverywhere"


def log_in(context: AuthContext, email: str) -> str:
    """An access token of `email` (the password is the same for both users)."""
    response = httpx.post(
        f"{context.operation.schema.get_base_url()}/api/v1/auth/login",
        data={"username": email, "password": os.environ["MEDIAFLOW_SCHEMA_PASSWORD"]},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def bear(case: Case, token: str) -> None:
    case.headers = case.headers or {}
    case.headers["Authorization"] = f"Bearer {token}"


@schemathesis.auth().skip_for(operation_id=LOGOUT_EVERYWHERE)
class TestUser:
    def get(self, _case: Case, context: AuthContext) -> str:
        return log_in(context, os.environ["MEDIAFLOW_SCHEMA_EMAIL"])

    def set(self, case: Case, token: str, _context: AuthContext) -> None:
        bear(case, token)


@schemathesis.auth(refresh_interval=None).apply_to(operation_id=LOGOUT_EVERYWHERE)
class LoggedOutUser:
    def get(self, _case: Case, context: AuthContext) -> str:
        return log_in(context, os.environ["MEDIAFLOW_SCHEMA_LOGOUT_EMAIL"])

    def set(self, case: Case, token: str, _context: AuthContext) -> None:
        bear(case, token)


FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


@schemathesis.hook
def filter_case(_context: HookContext, case: Case) -> bool:
    """Leave out form bodies with a field whose value is an empty list or object.

    Such a field sends nothing at all: on the wire the request is the same as one without the
    field, which other cases cover. As a negative case ("quality must be an integer, here it
    is []") schemathesis 4.32 judges it by the generated value when the form also carries a
    file, and reports the API's 202 to the field-less request as a schema-violating request
    accepted.
    """
    if not isinstance(case.body, dict) or (case.media_type or "").split(";")[0] not in FORMS:
        return True
    if names_a_preset(case.body.get("preset")):
        return False
    return not any(value in ([], {}) for value in case.body.values())


ENCODER_SPEEDS = {"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                  "slower", "veryslow"}  # fmt: skip
PRESET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def names_a_preset(value: object) -> bool:
    """An upload whose `preset` field is a well-formed preset name (issue 15) is left out too:
    whether a preset of a generated name exists is data in the cluster, not something the
    schema can state, so a schema-valid name of no preset is rightly answered 422 (tested with
    real presets in tests/integration/test_presets.py). Malformed names (negative cases) and
    /video/convert's encoder speeds stay in the run."""
    return (
        isinstance(value, str)
        and value not in ENCODER_SPEEDS
        and len(value) <= 253
        and PRESET_NAME.match(value) is not None
    )
