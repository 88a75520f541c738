"""The OpenAPI schema as a whole says what the API answers (issue 10, item 18): every error
body is problem details, and every constraint of the pydantic models reaches the schema.
The live API is checked against it by tests/integration/test_api_schema.py."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from pydantic import BaseModel

import mediaflow_api
from mediaflow_api.problems import PROBLEM_JSON, UNREADABLE_REQUEST, problem_responses

pytestmark = pytest.mark.unit

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The keywords of a pydantic JSON schema that constrain a value.
CONSTRAINTS = (
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "enum",
    "const",
    "format",
    "minItems",
    "maxItems",
)


@pytest.fixture
def spec(client: TestClient[Litestar]) -> dict[str, Any]:
    return client.get("/docs/openapi.json").json()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def test_every_error_response_is_documented_as_problem_details(spec: dict[str, Any]) -> None:
    # Litestar documents its own 400 body (`status_code`, `detail`, `extra`, application/json)
    # for each operation that reads a body or a parameter; the API answers problem details.
    for name, operation in operations(spec):
        for status, response in operation["responses"].items():
            if int(status) < 400 or (name == "GET /api/v1/health" and status == "503"):
                continue  # health's 503 is the health report itself
            content = response.get("content", {})
            assert list(content) == [PROBLEM_JSON], (name, status)
            schema = content[PROBLEM_JSON]["schema"]
            assert schema == {"$ref": "#/components/schemas/ProblemDetails"}, (name, status)


def test_every_operation_that_reads_a_body_documents_400(spec: dict[str, Any]) -> None:
    for name, operation in operations(spec):
        if "requestBody" in operation:
            assert operation["responses"]["400"]["description"], name


def test_problem_responses_describe_each_status() -> None:
    responses = problem_responses(401, meanings={409: "taken"})
    assert sorted(responses) == [400, 401, 409]
    assert responses[400].description == UNREADABLE_REQUEST
    assert responses[401].description == "Unauthorized"
    assert responses[409].description == "taken"
    assert all(r.media_type == PROBLEM_JSON for r in responses.values())
    # A handler listing 400 itself keeps the meaning every 400 has.
    assert problem_responses(400)[400].description == UNREADABLE_REQUEST


def api_models() -> dict[str, type[BaseModel]]:
    """Every pydantic model of the API package, by name."""
    models: dict[str, type[BaseModel]] = {}
    for module in pkgutil.walk_packages(mediaflow_api.__path__, "mediaflow_api."):
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel:
                models.setdefault(value.__name__, value)
    return models


def constraints(prop: dict[str, Any]) -> dict[str, Any]:
    """The constraints of one property, with those of `X | None` read from X."""
    found = {key: prop[key] for key in CONSTRAINTS if key in prop}
    for variant in prop.get("anyOf", []) + prop.get("oneOf", []):
        found |= {key: variant[key] for key in CONSTRAINTS if key in variant}
    return found


def test_every_constraint_of_the_models_reaches_the_schema(spec: dict[str, Any]) -> None:
    # Litestar builds the schema itself and drops some of pydantic's metadata, e.g.
    # `Field(pattern=...)`: what pydantic checks must still be what the schema says.
    models = api_models()
    compared = set()
    for name, component in spec["components"]["schemas"].items():
        model = models.get(name)
        if model is None or "properties" not in component:
            continue  # enums, and generic envelopes (their parts are compared one by one)
        compared.add(name)
        own = model.model_json_schema(mode="validation")["properties"]
        for field, prop in component["properties"].items():
            assert constraints(prop) == constraints(own[field]), f"{name}.{field}"
    assert {"UserView", "RegisterRequest", "RefreshRequest", "ProblemDetails"} <= compared


def test_the_user_id_is_a_uuid(spec: dict[str, Any]) -> None:
    user_id = spec["components"]["schemas"]["UserView"]["properties"]["id"]
    assert user_id["pattern"] == ("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
