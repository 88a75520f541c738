"""Generate the MediaJob, MediaPreset and ClusterMediaPreset CRDs from the pydantic models.

`python -m mediaflow_operator.crd --write` (or `make crds`) writes crds/ and the
chart's crds/; a unit test fails when the committed files differ from what this produces.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from mediaflow_core import constants as c
from mediaflow_core.mediajob import (
    OBJECT_CEL,
    OPTIONS_CEL,
    MediaJobSpec,
    MediaJobStatus,
    PresetKind,
)
from mediaflow_core.preset import (
    CLUSTER_PRESET_SHORT_NAMES,
    CLUSTER_PRESET_SINGULAR,
    CRD_NAMES,
    PLURALS,
    PRESET_SHORT_NAMES,
    PRESET_SINGULAR,
    PresetSpec,
)

REPO = Path(__file__).resolve().parents[2]
CRD_PATHS = [REPO / "crds/mediajobs.yaml", REPO / "charts/mediaflow/crds/mediajobs.yaml"]

# JSON-schema keywords that a structural CRD schema accepts unchanged.
KEPT = {
    "type",
    "description",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "format",
    "default",
    "x-kubernetes-validations",
}


def structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Turn one pydantic JSON schema node into an OpenAPI v3 structural schema node.

    Resolves $ref, drops the `null` branch of optional fields (optional means "not in
    required"), and keeps only keywords the API server accepts.
    """
    node = dict(schema)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**target, **node}
    if "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"cannot express a union of {len(branches)} types in a CRD")
        branch = branches[0]
        if "$ref" in branch:
            branch = {**defs[branch["$ref"].rsplit("/", 1)[-1]]}
        # The field's own description wins over the referenced type's.
        node = {**branch, **{k: v for k, v in node.items() if k != "title"}}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    out: dict[str, Any] = {k: v for k, v in node.items() if k in KEPT}
    if out.get("default") is None:
        out.pop("default", None)
    if node.get("format") == "date-time":
        out["type"] = "string"
    elif "format" in out:
        out.pop("format")
    if "properties" in node:
        out["type"] = "object"
        out["properties"] = {
            name: structural(prop, defs) for name, prop in node["properties"].items()
        }
        if node.get("required"):
            out["required"] = list(node["required"])
    if "items" in node:
        out["items"] = structural(node["items"], defs)
    if "enum" in out and "type" not in out:
        out["type"] = "integer" if all(isinstance(v, int) for v in out["enum"]) else "string"
    return out


def model_schema(model: type, *, extra_rules: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    """The structural schema of a pydantic model, with CEL rules added to named $defs."""
    schema = model.model_json_schema(by_alias=True, mode="validation")
    defs = schema.pop("$defs", {})
    for name, rules in extra_rules.items():
        if name in defs:
            defs[name]["x-kubernetes-validations"] = rules
    return structural(schema, defs)


def build_crd() -> dict[str, Any]:
    """The MediaJob CRD as a dict, ready to be dumped to YAML."""
    rules = {model.__name__: rules for model, rules in OPTIONS_CEL.items()}
    spec = model_schema(MediaJobSpec, extra_rules=rules)
    status = model_schema(MediaJobStatus, extra_rules={})
    status["properties"]["conditions"]["x-kubernetes-list-type"] = "map"
    status["properties"]["conditions"]["x-kubernetes-list-map-keys"] = ["type"]
    status["properties"]["conditions"]["maxItems"] = 8
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": c.CRD_NAME,
            "labels": {"app.kubernetes.io/part-of": "mediaflow"},
        },
        "spec": {
            "group": c.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": c.KIND,
                "listKind": f"{c.KIND}List",
                "plural": c.PLURAL,
                "singular": c.SINGULAR,
                "shortNames": c.SHORT_NAMES,
                "categories": c.CATEGORIES,
            },
            "versions": [
                {
                    "name": c.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A MediaJob converts one image or video (or up to "
                            "100 images): the operator runs it in a Kubernetes Job's pod and "
                            "puts a presigned download URL of the result in its status.",
                            "required": ["spec"],
                            "x-kubernetes-validations": OBJECT_CEL,
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


PRINTER_COLUMNS = [
    {"name": "Operation", "type": "string", "jsonPath": ".spec.operation"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Progress", "type": "integer", "jsonPath": ".status.progress"},
    {"name": "Items", "type": "string", "jsonPath": ".status.itemsDone"},
    {"name": "Duration", "type": "string", "jsonPath": ".status.duration"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {
        "name": "Message",
        "type": "string",
        "jsonPath": ".status.message",
        "priority": 1,
    },
]


# Presets (issue 15): MediaPreset (namespaced) and ClusterMediaPreset, from preset.PresetSpec.
PRESET_CRD_PATHS: dict[PresetKind, list[Path]] = {
    kind: [REPO / f"crds/{plural}.yaml", REPO / f"charts/mediaflow/crds/{plural}.yaml"]
    for kind, plural in PLURALS.items()
}
PRESET_PRINTER_COLUMNS = [
    {"name": "Operation", "type": "string", "jsonPath": ".spec.operation"},
    {"name": "Description", "type": "string", "jsonPath": ".spec.description"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
PRESET_DESCRIPTIONS = {
    PresetKind.MEDIA_PRESET: "A MediaPreset names an operation with its options (or renditions) "
    "for the MediaJobs of its namespace: a MediaJob's spec.preset names it instead of an options "
    "block, and the operator copies it into the MediaJob's status when it accepts it.",
    PresetKind.CLUSTER_MEDIA_PRESET: "A ClusterMediaPreset names an operation with its options "
    "(or renditions) for the MediaJobs of every namespace (spec.preset.kind ClusterMediaPreset); "
    "the operator copies it into the MediaJob's status when it accepts it.",
}


def build_preset_crd(kind: PresetKind) -> dict[str, Any]:
    """The CRD of one kind of preset as a dict."""
    rules = {model.__name__: rules for model, rules in OPTIONS_CEL.items()}
    cluster = kind is PresetKind.CLUSTER_MEDIA_PRESET
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAMES[kind],
            "labels": {"app.kubernetes.io/part-of": "mediaflow"},
        },
        "spec": {
            "group": c.GROUP,
            "scope": "Cluster" if cluster else "Namespaced",
            "names": {
                "kind": kind.value,
                "listKind": f"{kind.value}List",
                "plural": PLURALS[kind],
                "singular": CLUSTER_PRESET_SINGULAR if cluster else PRESET_SINGULAR,
                "shortNames": CLUSTER_PRESET_SHORT_NAMES if cluster else PRESET_SHORT_NAMES,
                "categories": c.CATEGORIES,
            },
            "versions": [
                {
                    "name": c.VERSION,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": PRESET_PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": PRESET_DESCRIPTIONS[kind],
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": model_schema(PresetSpec, extra_rules=rules),
                            },
                        }
                    },
                }
            ],
        },
    }


def render_preset(kind: PresetKind) -> str:
    """A preset CRD as YAML text, with its header."""
    header = (
        "# Generated by `make crds` from core/mediaflow_core/preset.py.\n"
        "# Do not edit by hand: a test fails when this file drifts from the models.\n"
    )
    return header + yaml.safe_dump(build_preset_crd(kind), sort_keys=False, width=100)


def render() -> str:
    """The CRD as YAML text, with a header saying where it comes from."""
    header = (
        "# Generated by `make crds` from core/mediaflow_core/mediajob.py.\n"
        "# Do not edit by hand: a test fails when this file drifts from the models.\n"
    )
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="write the CRD files")
    args = parser.parse_args(argv)
    text = render()
    if not args.write:
        sys.stdout.write(text)
        return 0
    for path in CRD_PATHS:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for kind, paths in PRESET_CRD_PATHS.items():
        for path in paths:
            path.write_text(render_preset(kind))
    return 0


if __name__ == "__main__":
    sys.exit(main())
