"""OpenAPI request bodies and error responses of the upload endpoints.

The handlers read the body themselves (streaming), so Litestar cannot infer it from a
`data` parameter; each endpoint's form model is described here instead, with every
constraint a schema can state (patterns, bounds, enums, "width or height"), the media types
the file may have (`encoding`), and what each error status means for this endpoint. What a
schema cannot state (a file's content, end after start, a codec that fits the container) is
said in the descriptions and answered 415/422 with a precise `detail`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Encoding, OpenAPIMediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from mediaflow_api.problems import PROBLEM_JSON, ProblemDetails
from mediaflow_api.uploads.forms import (
    PRESET_FIELD,
    PRESET_NAME_MAX,
    MediaKind,
    UploadEndpoint,
)
from mediaflow_core.media import IMAGE_TYPES, VIDEO_TYPES
from mediaflow_core.mediajob import PRESET_NAME_PATTERN
from mediaflow_core.options import Operation as MediaOperation
from mediaflow_core.options import Preset

# What libmagic must find in a file of each kind (the worker's own allowlist).
ACCEPTED_TYPES = {MediaKind.IMAGE: sorted(IMAGE_TYPES), MediaKind.VIDEO: sorted(VIDEO_TYPES)}

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


# The texts a boolean form field takes, as the previous (FastAPI) service took them and
# pydantic's lax mode reads them: any letter case.
BOOLEAN_WORDS = ("true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n")
BOOLEAN_TEXT = (
    "^("
    + "|".join(
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in w) for w in BOOLEAN_WORDS
    )
    + ")$"
)


def _property(prop: dict[str, Any], defs: dict[str, Any]) -> Schema:
    """A Schema for one property of a pydantic JSON schema (the subset the forms use)."""
    prop = _plain(prop, defs)
    if prop.get("type") == "boolean":
        return Schema(
            one_of=[
                Schema(type=OpenAPIType.BOOLEAN),
                Schema(type=OpenAPIType.STRING, pattern=BOOLEAN_TEXT),
            ],
            description=f"{prop.get('description', '')} true/false, also 1/0, yes/no, on/off.",
            default=prop.get("default"),
        )
    return Schema(
        type=_TYPES.get(prop.get("type", "string"), OpenAPIType.STRING),
        description=prop.get("description"),
        default=prop.get("default"),
        enum=prop.get("enum"),
        minimum=prop.get("minimum"),
        maximum=prop.get("maximum"),
        min_length=prop.get("minLength"),
        max_length=prop.get("maxLength"),
        pattern=prop.get("pattern"),
    )


def _item_property(prop: dict[str, Any], defs: dict[str, Any]) -> Schema:
    """A property of an object in a JSON form field: unlike a form field, JSON can send
    null, which an optional property (`X | None`) takes."""
    schema = _property(prop, defs)
    nullable = any(p.get("type") == "null" for p in prop.get("anyOf", []))
    if nullable and isinstance(schema.type, OpenAPIType):
        return dataclasses.replace(schema, type=[schema.type, OpenAPIType.NULL])
    return schema


def _json_list(schema: dict[str, Any], description: str | None) -> Schema:
    """The Schema of a form field sent as a JSON list of objects (e.g. renditions): what
    the list and each item take, as the MediaJob models state it."""
    defs = schema.get("$defs", {})
    item = _plain(schema["items"], defs)
    return Schema(
        type=OpenAPIType.ARRAY,
        description=description,
        min_items=schema.get("minItems"),
        max_items=schema.get("maxItems"),
        items=Schema(
            type=OpenAPIType.OBJECT,
            description=item.get("description"),
            properties={name: _item_property(p, defs) for name, p in item["properties"].items()},
            required=item.get("required"),
            additional_properties=False,
        ),
    )


def request_body(endpoint: UploadEndpoint) -> RequestBody:
    schema = endpoint.form.model_json_schema()
    defs = schema.get("$defs", {})
    accepted = ACCEPTED_TYPES[endpoint.kind]
    file = Schema(
        type=OpenAPIType.STRING,
        format=OpenAPIFormat.BINARY,
        min_length=1,  # an empty file is refused (422)
        description=f"The {endpoint.kind.value}; its type is sniffed from its content "
        f"(libmagic), which must be one of {', '.join(accepted)} (else 415).",
    )
    files = (
        Schema(type=OpenAPIType.ARRAY, items=file, min_items=1, max_items=endpoint.max_files)
        if endpoint.batch
        else file
    )
    properties = {endpoint.file_field: files}
    properties |= {name: _property(p, defs) for name, p in schema["properties"].items()}
    json_parts = endpoint.form.json_parts()
    for name, part in json_parts.items():
        properties[name] = _json_list(part, properties[name].description)
    properties[PRESET_FIELD] = preset_property(endpoint)
    # Model-level constraints of the form (e.g. width or height), as the form states them.
    # A branch may narrow a field too (e.g. fit fill needs both sides: a fit of one side).
    any_of = [
        Schema(
            required=list(option["required"]),
            properties={
                name: Schema(enum=narrowed["enum"])
                for name, narrowed in option.get("properties", {}).items()
            }
            or None,
        )
        for option in schema.get("anyOf", [])
    ]
    # A preset stands for the option fields: where the form states alternatives (width or
    # height), a preset is one more. A form's plainly required fields (output_format,
    # start_time and end_time, renditions) stay required in the schema, though the API does
    # not need them with a preset: stated as "these or a preset", schemathesis 4.32 makes
    # negative cases of it that are valid (docs/api.md, Presets).
    if any_of:
        any_of.append(Schema(required=[PRESET_FIELD]))
    return RequestBody(
        required=True,
        description=schema.get("description"),
        content={
            "multipart/form-data": OpenAPIMediaType(
                schema=Schema(
                    type=OpenAPIType.OBJECT,
                    properties=properties,
                    required=[endpoint.file_field, *schema.get("required", [])],
                    any_of=any_of or None,
                ),
                encoding={
                    endpoint.file_field: Encoding(content_type=", ".join(accepted)),
                    **{name: Encoding(content_type="application/json") for name in json_parts},
                },
            )
        },
    )


def preset_property(endpoint: UploadEndpoint) -> Schema:
    """The `preset` form field (issue 15): a preset's name instead of the option fields."""
    description = (
        "The name of a preset (GET /api/v1/presets) to use instead of the option fields, "
        "which are then ignored: the MediaPreset of that name in the API's namespace, else "
        "the ClusterMediaPreset. A preset that does not exist or does not fit this endpoint "
        "is a 422."
    )
    name = Schema(type=OpenAPIType.STRING, max_length=PRESET_NAME_MAX, pattern=PRESET_NAME_PATTERN)
    if endpoint.operation is MediaOperation.VIDEO_CONVERT:
        speeds = [p.value for p in Preset]
        return Schema(
            any_of=[Schema(type=OpenAPIType.STRING, enum=speeds), name],
            default=Preset.MEDIUM.value,
            description=f"An encoder speed ({', '.join(speeds)}; slower means smaller output), "
            f"as before presets existed; any other value: {description[0].lower()}"
            f"{description[1:]}",
        )
    return dataclasses.replace(name, description=description)


def error_responses(endpoint: UploadEndpoint) -> dict[int, ResponseSpec]:
    """What each error status of an upload endpoint means (problem details bodies)."""
    kind = endpoint.kind.value
    meanings = {
        400: "The body is not readable multipart/form-data (e.g. truncated).",
        401: "No access token, or an expired or invalid one.",
        408: "The client sent nothing for the upload idle timeout "
        "(MEDIAFLOW_API_UPLOAD_IDLE_TIMEOUT_SECONDS); nothing was kept.",
        413: "A file is larger than MEDIAFLOW_API_MAX_UPLOAD_BYTES (checked on "
        "Content-Length and while streaming); nothing was kept.",
        415: f"The body is not multipart/form-data, or a file's content is not an accepted "
        f"{kind} ({', '.join(ACCEPTED_TYPES[endpoint.kind])}), whatever its name or declared "
        "type; nothing was kept.",
        422: "A field is invalid (see `errors`), the file is missing or empty, too many files, "
        "or fields that do not go together (e.g. end_time not after start_time, a codec the "
        "container cannot hold, crf outside the codec's range), or `preset` names no preset "
        "or one that does not fit this endpoint; nothing was kept.",
        429: "Too many requests (Retry-After says when to retry): the upload rate limit, "
        "MEDIAFLOW_API_MAX_CONCURRENT_UPLOADS_PER_USER uploads of yours already in progress, "
        "or MEDIAFLOW_API_MAX_ACTIVE_JOBS_PER_USER active jobs reached (detail states it).",
        503: "This instance already receives MEDIAFLOW_API_MAX_CONCURRENT_UPLOADS uploads, or "
        "object storage or the Kubernetes API is unavailable (Retry-After); nothing was kept.",
    }
    return {
        status: ResponseSpec(
            ProblemDetails,
            description=meaning,
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status, meaning in meanings.items()
    }


def upload_operation(endpoint: UploadEndpoint) -> type[Operation]:
    """An Operation class (Litestar's `operation_class`) with the endpoint's form as body."""
    body = request_body(endpoint)

    @dataclass
    class UploadOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = body

    return UploadOperation
