"""The committed CRDs are what the models generate; every sample is a valid MediaJob."""

from pathlib import Path

import pytest
import yaml

from mediaflow_core import constants as c
from mediaflow_core.mediajob import OPTIONS_FIELD, MediaJobSpec
from mediaflow_core.options import Operation
from mediaflow_operator.crd import CRD_PATHS, build_crd, render

REPO = Path(__file__).resolve().parents[3]
SAMPLES = sorted((REPO / "manifests/samples").glob("*.yaml"))


@pytest.mark.parametrize("path", CRD_PATHS, ids=lambda p: str(p.relative_to(REPO)))
def test_committed_crd_matches_the_models(path: Path) -> None:
    assert path.read_text() == render(), f"{path} is stale: run `make crds`"


def test_every_schema_field_has_a_description() -> None:
    def walk(node: dict, where: str) -> list[str]:
        missing = [] if "description" in node or where.count(".") < 2 else [where]
        for name, child in (node.get("properties") or {}).items():
            missing += walk(child, f"{where}.{name}")
        if "items" in node:
            missing += walk(node["items"], f"{where}[]")
        return missing

    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert walk(schema["properties"]["spec"], ".spec") == []
    assert walk(schema["properties"]["status"], ".status") == []


def test_there_is_one_sample_per_operation() -> None:
    operations = {yaml.safe_load(p.read_text())["spec"]["operation"] for p in SAMPLES}
    assert operations == {op.value for op in Operation}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_is_a_valid_mediajob(path: Path) -> None:
    body = yaml.safe_load(path.read_text())
    assert body["apiVersion"] == c.API_VERSION
    assert body["kind"] == c.KIND
    spec = MediaJobSpec.model_validate(body["spec"])
    assert spec.options is not None
    assert OPTIONS_FIELD[spec.operation] in body["spec"] or "renditions" in body["spec"]


def test_the_crd_refuses_names_that_cannot_be_label_values() -> None:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["x-kubernetes-validations"] == [
        {
            "rule": "self.metadata.name.size() <= 63",
            "message": "metadata.name must be at most 63 characters: it is the value of the "
            "label mediaflow.io/mediajob on the MediaJob's Job and pods",
        }
    ]
