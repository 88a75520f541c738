"""A MediaJob naming a preset, through the in-memory gateway: resolved once when accepted
and recorded in the status; everything after (the Job, a warm pod's slot, a Job of its own
after a warm pod ended) uses the record, never the preset again; a missing or invalid preset
fails the MediaJob with a clear reason and an Event. (Against the real cluster:
tests/integration/test_presets.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mediaflow_core import constants as c
from mediaflow_core.mediajob import MediaJobSpec
from mediaflow_core.preset import PresetError, resolve_preset
from mediaflow_core.session import Slot, slot_key
from mediaflow_operator.observed import Key, PodView
from tests.unit.operator.test_reconciler import NS, World, condition
from tests.unit.operator.test_warm import WarmWorld

pytestmark = pytest.mark.unit

WEBP = {"operation": "ImageConvert", "imageConvert": {"format": "webp", "quality": 70}}
AVIF = {"operation": "ImageConvert", "imageConvert": {"format": "avif"}}


def named(name: str = "web", kind: str | None = None, **extra: Any) -> dict[str, Any]:
    ref = {"name": name, **({"kind": kind} if kind else {})}
    return {
        "operation": "ImageConvert",
        "input": {"object": {"key": f"{NS}/uploads/a/input"}},
        "preset": ref,
        **extra,
    }


class PresetWorld(World):
    def reconcile_new(self, name: str, body_spec: dict[str, Any]) -> Key:
        key = self.create(name, body_spec)
        self.reconcile(key)
        return key


def job_options(world: World, key: Key) -> dict[str, Any]:
    env = world.job_body(key)["spec"]["template"]["spec"]["containers"][0]["env"]
    return json.loads(next(e["value"] for e in env if e["name"] == c.ENV_OPTIONS))


def test_a_namespaced_preset_is_resolved_into_the_status_and_the_job() -> None:
    world = PresetWorld()
    preset = world.gateway.put_preset("MediaPreset", "web", WEBP, namespace=NS)
    key = world.reconcile_new("photo", named())
    status = world.mj(key)["status"]
    assert condition(world.mj(key), "Accepted")["status"] == "True"
    assert status["preset"] == {
        "kind": "MediaPreset",
        "name": "web",
        "namespace": NS,
        "resourceVersion": preset["metadata"]["resourceVersion"],
    }
    assert status["resolved"] == {
        "operation": "ImageConvert",
        "imageConvert": {"format": "webp", "quality": 70, "lossless": False},
    }
    assert job_options(world, key) == {"format": "webp", "quality": 70, "lossless": False}


def test_a_cluster_preset_is_found_without_a_namespace() -> None:
    world = PresetWorld()
    renditions = [{"name": "w320", "format": "webp", "width": 320}]
    world.gateway.put_preset(
        "ClusterMediaPreset", "thumbs", {"operation": "ImageConvert", "renditions": renditions}
    )
    key = world.reconcile_new("photo", named("thumbs", "ClusterMediaPreset"))
    status = world.mj(key)["status"]
    assert status["preset"]["kind"] == "ClusterMediaPreset"
    assert "namespace" not in status["preset"]
    assert job_options(world, key)["renditions"][0]["width"] == 320


def test_a_missing_preset_fails_the_mediajob_with_an_event_and_no_job() -> None:
    world = PresetWorld()
    # a MediaPreset of another namespace is not looked at
    world.gateway.put_preset("MediaPreset", "web", WEBP, namespace="elsewhere")
    key = world.reconcile_new("photo", named())
    body = world.mj(key)
    accepted = condition(body, "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "PresetNotFound")
    assert accepted["message"] == f"MediaPreset {NS}/web not found"
    assert body["status"]["phase"] == "Failed"
    assert world.gateway.jobs == {}
    assert ("photo", "Warning", "PresetNotFound", f"MediaPreset {NS}/web not found") in (
        world.gateway.events
    )


@pytest.mark.parametrize(
    ("preset_spec", "says"),
    [
        (AVIF | {"operation": "VideoConvert"}, "imageConvert is only allowed"),
        (
            {"operation": "ImageResize", "imageResize": {"width": 10}},
            "is for operation ImageResize",
        ),
    ],
)
def test_an_invalid_or_unfitting_preset_fails_the_mediajob(preset_spec: dict, says: str) -> None:
    world = PresetWorld()
    world.gateway.put_preset("MediaPreset", "web", preset_spec, namespace=NS)
    key = world.reconcile_new("photo", named())
    accepted = condition(world.mj(key), "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "PresetInvalid")
    assert says in accepted["message"]
    assert world.gateway.jobs == {}
    assert any(e[2] == "PresetInvalid" for e in world.gateway.events)


def test_an_edited_preset_changes_no_accepted_mediajob_and_is_read_once() -> None:
    world = PresetWorld()
    world.gateway.put_preset("MediaPreset", "web", WEBP, namespace=NS)
    key = world.reconcile_new("photo", named())
    before = world.mj(key)["status"]["resolved"]
    world.gateway.put_preset("MediaPreset", "web", AVIF, namespace=NS)
    for _ in range(3):
        world.reconcile(key)
    assert world.mj(key)["status"]["resolved"] == before
    assert job_options(world, key)["format"] == "webp"
    assert world.gateway.requests["GET MediaPreset"] == 1


def test_a_warm_slot_and_a_job_of_its_own_after_the_warm_pod_use_the_record() -> None:
    world = WarmWorld()
    world.pool.spawn = lambda target, *args: target(*args)
    world.pool.start_grace_seconds = 0
    world.gateway.put_preset("MediaPreset", "web", WEBP, namespace=NS)
    world.gateway.objects[f"{NS}/uploads/a/input"] = b"x" * 100
    world.gateway.add_mediajob(NS, "a", named(), labels={c.LABEL_OWNER: "alice"})
    key = world.reconcile(Key(NS, "a"))
    status = world.status(key)
    job, slot = status["jobName"], status["sessionSlot"]
    item = Slot.from_json(world.gateway.objects[slot_key(NS, job, slot)]).items[0]
    assert json.loads(item.options)["format"] == "webp"
    world.gateway.put_preset("MediaPreset", "web", AVIF, namespace=NS)
    # the warm pod cannot start: the MediaJob gets a Job of its own, with the recorded options
    world.pool.pod_seen(NS, job, PodView(name="p", created="", phase="Pending",
                                         unschedulable="0/1 nodes are available"))  # fmt: skip
    world.pool.pod_seen(NS, job, PodView(name="p", created="", phase="Pending", deleted=True))
    world.reconcile(key)
    own = world.status(key)["jobName"]
    env = world.gateway.jobs[NS, own]["spec"]["template"]["spec"]["containers"][0]["env"]
    options = json.loads(next(e["value"] for e in env if e["name"] == c.ENV_OPTIONS))
    assert options["format"] == "webp"


def test_resolve_preset_refuses_too_many_outputs_for_the_inputs() -> None:
    inputs = [{"object": {"key": f"{NS}/i{n}"}} for n in range(30)]
    spec = MediaJobSpec.model_validate(
        {"operation": "ImageConvert", "inputs": inputs, "preset": {"name": "big"}}
    )
    renditions = [{"name": f"r{n}", "format": "webp", "width": 10 + n} for n in range(12)]
    body = {"metadata": {"resourceVersion": "1"},
            "spec": {"operation": "ImageConvert", "renditions": renditions}}  # fmt: skip
    with pytest.raises(PresetError) as raised:
        resolve_preset(spec, NS, body)
    assert raised.value.reason == "PresetInvalid"
    assert "at most 300" in raised.value.message


def test_a_mediajob_names_a_preset_or_gives_options_never_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        MediaJobSpec.model_validate(named(imageConvert={"format": "png"}))
    assert MediaJobSpec.model_validate(named()).options is None
