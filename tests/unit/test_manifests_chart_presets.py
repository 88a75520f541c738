"""The chart's presets: shipped as values (schema-checked), readable by the operator and the
API (checked with `helm template`, no cluster)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mediaflow_core.preset import PresetSpec
from tests.unit.test_manifests_chart import find, rights_of, template, template_error

pytestmark = pytest.mark.unit

RENDITIONS = [{"name": "w320", "format": "webp", "width": 320}]
VALUES = {
    "presets": {
        "cluster": [
            {"name": "web-thumbnails", "spec": {"operation": "ImageConvert",
                                                "renditions": RENDITIONS}},
        ],
        "namespaced": [
            {"name": "web-video", "spec": {"operation": "VideoConvert", "description": "VP9",
                                           "videoConvert": {"container": "webm"}}},
        ],
    }
}  # fmt: skip


def values_file(tmp_path: Path, values: dict) -> str:
    path = tmp_path / "values.json"
    path.write_text(json.dumps(values))
    return str(path)


def test_presets_in_values_become_resources_that_validate(tmp_path: Path) -> None:
    documents = template("-f", values_file(tmp_path, VALUES))
    cluster = find(documents, "ClusterMediaPreset", "web-thumbnails")
    assert "namespace" not in cluster["metadata"]
    namespaced = find(documents, "MediaPreset", "web-video")
    assert namespaced["metadata"]["namespace"] == "mediaflow"
    for preset in (cluster, namespaced):
        assert PresetSpec.model_validate(preset["spec"]).options is not None


def test_no_presets_by_default() -> None:
    kinds = {d["kind"] for d in template()}
    assert not kinds & {"MediaPreset", "ClusterMediaPreset"}


def test_a_preset_value_without_an_operation_is_refused(tmp_path: Path) -> None:
    bad = {"presets": {"cluster": [{"name": "x", "spec": {"imageConvert": {"format": "png"}}}]}}
    assert "operation" in template_error("-f", values_file(tmp_path, bad))


def test_the_operator_reads_presets() -> None:
    documents = template()
    observe = find(documents, "ClusterRole", "mediaflow-mediaflow-operator-observe")
    assert ("clustermediapresets", "get") in rights_of(observe)
    role = find(documents, "Role", "mediaflow-operator")
    assert ("mediapresets", "get") in rights_of(role)
