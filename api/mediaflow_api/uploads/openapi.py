"""OpenAPI request bodies of the upload endpoints.

The handlers read the body themselves (streaming), so Litestar cannot infer it from a
`data` parameter; each endpoint's form model is described here instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from mediaflow_api.uploads.forms import UploadEndpoint

_TYPES = {
    "integer": OpenAPIType.INTEGER,
    "string": OpenAPIType.STRING,
    "boolean": OpenAPIType.BOOLEAN,
    "number": OpenAPIType.NUMBER,
}


def _plain(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """`prop` with references resolved and `X | None` reduced to X (optional in a form)."""
    if "$ref" in prop:
        target = defs[prop["$ref"].rsplit("/", 1)[-1]]
        prop = {**_plain(target, defs), **{k: v for k, v in prop.items() if k != "$ref"}}
    if "anyOf" in prop:
        (chosen, *_) = [p for p in prop["anyOf"] if p.get("type") != "null"]
        prop = {**_plain(chosen, defs), **{k: v for k, v in prop.items() if k != "anyOf"}}
    return prop


def _property(prop: dict[str, Any], defs: dict[str, Any]) -> Schema:
    """A Schema for one property of a pydantic JSON schema (the subset the forms use)."""
    prop = _plain(prop, defs)
    return Schema(
        type=_TYPES.get(prop.get("type", "string"), OpenAPIType.STRING),
        description=prop.get("description"),
        default=prop.get("default"),
        enum=prop.get("enum"),
        minimum=prop.get("minimum"),
        maximum=prop.get("maximum"),
        pattern=prop.get("pattern"),
    )


def request_body(endpoint: UploadEndpoint) -> RequestBody:
    schema = endpoint.form.model_json_schema()
    defs = schema.get("$defs", {})
    file = Schema(
        type=OpenAPIType.STRING,
        format=OpenAPIFormat.BINARY,
        description=f"The {endpoint.kind.value}; its type is sniffed from its content.",
    )
    files = (
        Schema(type=OpenAPIType.ARRAY, items=file, max_items=endpoint.max_files)
        if endpoint.batch
        else file
    )
    properties = {endpoint.file_field: files}
    properties |= {name: _property(p, defs) for name, p in schema["properties"].items()}
    return RequestBody(
        required=True,
        content={
            "multipart/form-data": OpenAPIMediaType(
                schema=Schema(
                    type=OpenAPIType.OBJECT,
                    properties=properties,
                    required=[endpoint.file_field, *schema.get("required", [])],
                )
            )
        },
    )


def upload_operation(endpoint: UploadEndpoint) -> type[Operation]:
    """An Operation class (Litestar's `operation_class`) with the endpoint's form as body."""
    body = request_body(endpoint)

    @dataclass
    class UploadOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = body

    return UploadOperation
