"""Presets: named operations with their options (MediaPreset, ClusterMediaPreset).

A preset's spec is an operation with the options block of a MediaJob (the same models:
mediajob.OperationOptions), renditions where ImageConvert takes them, and a description. A
MediaJob names one in spec.preset instead of an options block; the operator resolves it once,
when it accepts the MediaJob (resolve_preset), and records the result in the MediaJob's
status.preset and status.resolved. The API resolves the same way for its upload endpoints.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from mediaflow_core import constants as c
from mediaflow_core.mediajob import (
    MAX_OUTPUTS,
    TOO_MANY_OUTPUTS,
    MediaJobSpec,
    OperationOptions,
    PresetKind,
    PresetStatusRef,
    _options_rules,
    validations,
)

PRESET_PLURAL = "mediapresets"
PRESET_SINGULAR = "mediapreset"
PRESET_SHORT_NAMES = ["mp"]
CLUSTER_PRESET_PLURAL = "clustermediapresets"
CLUSTER_PRESET_SINGULAR = "clustermediapreset"
CLUSTER_PRESET_SHORT_NAMES = ["cmp"]
PLURALS: dict[PresetKind, str] = {
    PresetKind.MEDIA_PRESET: PRESET_PLURAL,
    PresetKind.CLUSTER_MEDIA_PRESET: CLUSTER_PRESET_PLURAL,
}
CRD_NAMES: dict[PresetKind, str] = {kind: f"{plural}.{c.GROUP}" for kind, plural in PLURALS.items()}

# Condition reasons (Accepted=False) of a MediaJob whose preset cannot be used.
REASON_NOT_FOUND = "PresetNotFound"
REASON_INVALID = "PresetInvalid"


class PresetSpec(OperationOptions):
    """A named operation with its options: what a MediaJob's spec.preset stands for."""

    model_config = validations(*_options_rules())

    description: str | None = Field(
        default=None, max_length=1024, description="What the preset is for, for people."
    )


class PresetError(Exception):
    """A preset that cannot be used: reason is PresetNotFound or PresetInvalid."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def describe(kind: PresetKind, name: str, namespace: str | None) -> str:
    return f"{kind.value} {namespace}/{name}" if namespace else f"{kind.value} {name}"


def preset_spec(body: dict[str, Any]) -> PresetSpec:
    """Parse a preset object's spec (raises pydantic.ValidationError)."""
    return PresetSpec.model_validate(body.get("spec") or {})


def check_preset(
    kind: PresetKind, name: str, namespace: str | None, body: dict[str, Any] | None
) -> PresetSpec:
    """The preset's spec, or PresetError: PresetNotFound when there is none, PresetInvalid
    when its spec does not validate (a preset applied without the CRD's rules)."""
    what = describe(kind, name, namespace)
    if body is None:
        raise PresetError(REASON_NOT_FOUND, f"{what} not found")
    try:
        return preset_spec(body)
    except ValidationError as error:
        problems = "; ".join(e["msg"] for e in error.errors())
        raise PresetError(REASON_INVALID, f"{what} is invalid: {problems}") from error


def resolve_preset(
    spec: MediaJobSpec, namespace: str, body: dict[str, Any] | None
) -> tuple[PresetStatusRef, OperationOptions]:
    """What a MediaJob naming a preset runs with: the preset's reference (with the
    resourceVersion read) and its operation and options, or PresetError. `body` is the
    preset as read (None: not found); a MediaPreset is looked up in the MediaJob's own
    namespace only. The MediaJob's operation must be the preset's."""
    if spec.preset is None:
        raise ValueError("the MediaJob names no preset")
    kind, name = spec.preset.kind, spec.preset.name
    in_namespace = namespace if kind is PresetKind.MEDIA_PRESET else None
    preset = check_preset(kind, name, in_namespace, body)
    what = describe(kind, name, in_namespace)
    if preset.operation is not spec.operation:
        raise PresetError(
            REASON_INVALID,
            f"{what} is for operation {preset.operation.value}, the MediaJob's is "
            f"{spec.operation.value}",
        )
    renditions = len(preset.renditions or [])
    if renditions and len(spec.items) * renditions > MAX_OUTPUTS:
        raise PresetError(REASON_INVALID, f"{what}: {TOO_MANY_OUTPUTS}")
    assert body is not None  # noqa: S101 (check_preset raised otherwise)
    ref = PresetStatusRef(
        kind=kind,
        name=name,
        namespace=in_namespace,
        resource_version=str(body["metadata"].get("resourceVersion") or ""),
    )
    resolved = OperationOptions.model_validate(preset.options_block())
    return ref, resolved
