"""The committed preset CRDs are what the models generate; the preset samples validate."""

from pathlib import Path

import pytest
import yaml

from mediaflow_core import constants as c
from mediaflow_core.mediajob import MediaJobSpec, PresetKind
from mediaflow_core.preset import PresetSpec, resolve_preset
from mediaflow_operator.crd import PRESET_CRD_PATHS, build_preset_crd, render_preset

REPO = Path(__file__).resolve().parents[3]
SAMPLES = sorted((REPO / "manifests/samples/presets").glob("*.yaml"))
PATHS = [(kind, path) for kind, paths in PRESET_CRD_PATHS.items() for path in paths]


@pytest.mark.parametrize(("kind", "path"), PATHS, ids=lambda p: str(p))
def test_committed_preset_crd_matches_the_models(kind: PresetKind, path: Path) -> None:
    assert path.read_text() == render_preset(kind), f"{path} is stale: run `make crds`"


@pytest.mark.parametrize("kind", list(PresetKind))
def test_preset_crd_names_scope_and_explain_text(kind: PresetKind) -> None:
    crd = build_preset_crd(kind)
    names = crd["spec"]["names"]
    cluster = kind is PresetKind.CLUSTER_MEDIA_PRESET
    assert crd["spec"]["scope"] == ("Cluster" if cluster else "Namespaced")
    assert names["shortNames"] == (["cmp"] if cluster else ["mp"])
    assert names["categories"] == ["mediaflow"]
    version = crd["spec"]["versions"][0]
    assert [col["name"] for col in version["additionalPrinterColumns"]] == [
        "Operation",
        "Description",
        "Age",
    ]

    def undescribed(node: dict, where: str) -> list[str]:
        missing = [] if "description" in node else [where]
        for name, child in (node.get("properties") or {}).items():
            missing += undescribed(child, f"{where}.{name}")
        if "items" in node:
            missing += undescribed(node["items"], f"{where}[]")
        return missing

    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert undescribed(spec, ".spec") == []
    rules = {r["message"] for r in spec["x-kubernetes-validations"]}
    assert "operation VideoConvert needs spec.videoConvert" in rules
    assert "renditions is only allowed with operation ImageConvert" in rules


def test_the_mediajob_crd_says_preset_or_options_never_both() -> None:
    from mediaflow_operator.crd import build_crd

    spec = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(spec["properties"]["preset"]["properties"]) == {"name", "kind"}
    rule = next(
        r for r in spec["x-kubernetes-validations"] if r["message"].startswith("set either")
    )
    assert rule["rule"].startswith("!has(self.preset) || (!has(self.imageConvert)")
    status = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    assert {"preset", "resolved"} <= set(status["status"]["properties"])


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_preset_sample_validates(path: Path) -> None:
    body = yaml.safe_load(path.read_text())
    assert body["apiVersion"] == c.API_VERSION
    if body["kind"] == c.KIND:
        spec = MediaJobSpec.model_validate(body["spec"])
        assert spec.preset is not None
        preset_path = path.parent / f"{spec.preset.name}.yaml"
        preset = yaml.safe_load(preset_path.read_text())
        assert preset["kind"] == spec.preset.kind.value
        preset["metadata"]["resourceVersion"] = "1"
        _ref, resolved = resolve_preset(spec, body["metadata"]["namespace"], preset)
        assert spec.with_resolution(resolved).options is not None
        return
    assert body["kind"] in {k.value for k in PresetKind}
    assert ("namespace" in body["metadata"]) == (body["kind"] == "MediaPreset")
    assert PresetSpec.model_validate(body["spec"]).options is not None


def test_web_thumbnails_is_webp_and_avif_at_three_widths() -> None:
    body = yaml.safe_load((REPO / "manifests/samples/presets/web-thumbnails.yaml").read_text())
    renditions = PresetSpec.model_validate(body["spec"]).renditions or []
    assert {(r.format.value, r.width) for r in renditions} == {
        (f, w) for f in ("webp", "avif") for w in (320, 640, 1280)
    }
