"""Renditions through the operator (in-memory gateway): the Secret holds one PUT URL per
rendition, the scratch volume grows with them, and the status records every rendition with
its key and a fresh URL (status.renditions, items[].renditions), the first as the result."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from mediaflow_core import constants as c
from mediaflow_core.mediajob import MediaJobSpec
from mediaflow_core.session import Slot, slot_key
from mediaflow_operator.builders import WORK_DIR_SLACK, build_job, work_dir_bytes
from mediaflow_operator.observed import Key
from mediaflow_worker.report import success_message
from tests.unit.operator.test_reconciler import NS, T0, World, running, terminated
from tests.unit.operator.test_warm import WarmWorld

pytestmark = pytest.mark.unit

RENDITIONS = [
    {"name": "w320-webp", "format": "webp", "width": 320},
    {"name": "w320-avif", "format": "avif", "width": 320},
]


def renditions_spec(**extra: Any) -> dict[str, Any]:
    return {
        "operation": "ImageConvert",
        "input": {"object": {"key": f"{NS}/uploads/a/input"}},
        "renditions": RENDITIONS,
        **extra,
    }


def reported(*names_types: tuple[str, str]) -> dict[str, Any]:
    """A worker's result with renditions, as its termination message or outcome line."""
    renditions = [
        {
            "name": n,
            "size": 100 + i,
            "contentType": t,
            "format": t.split("/")[1],
            "width": 320,
            "height": 240,
        }
        for i, (n, t) in enumerate(names_types)
    ]
    first = renditions[0]
    return {**{k: v for k, v in first.items() if k != "name"}, "duration": None,
            "renditions": renditions}  # fmt: skip


RESULT = reported(("w320-webp", "image/webp"), ("w320-avif", "image/avif"))


def test_the_secret_holds_a_put_url_per_rendition_and_no_output_url() -> None:
    world = World()
    key = world.create("set", renditions_spec())
    world.reconcile(key)
    ((_, secret),) = world.gateway.secrets.items()
    uid = world.mj(key)["metadata"]["uid"]
    assert secret["stringData"] == {
        c.INPUT_URL_FILE: secret["stringData"][c.INPUT_URL_FILE],
        "output-url-w320-webp": f"http://minio.test/media/{NS}/results/{uid}/renditions/w320-webp?put",
        "output-url-w320-avif": f"http://minio.test/media/{NS}/results/{uid}/renditions/w320-avif?put",
    }
    env = {
        e["name"]: e["value"]
        for e in world.job_body(key)["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert json.loads(env[c.ENV_OPTIONS])["renditions"][1]["name"] == "w320-avif"


def test_the_scratch_volume_has_room_for_each_rendition() -> None:
    world = World()
    spec = MediaJobSpec.model_validate(renditions_spec())
    plain = work_dir_bytes(10**6, world.settings)
    assert work_dir_bytes(10**6, world.settings, 2) > plain + 2 * 4 * 10**6
    from mediaflow_core.naming import MediaJobRef

    job = build_job(MediaJobRef("set", NS, "uid-set"), spec, world.settings, input_size=10**6)
    limits = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert int(limits["ephemeral-storage"]) == work_dir_bytes(10**6, world.settings, 2)
    assert int(limits["ephemeral-storage"]) > WORK_DIR_SLACK


def test_every_rendition_is_recorded_with_its_key_and_url_and_the_first_is_the_result() -> None:
    world = World()
    key = world.create("set", renditions_spec())
    world.reconcile(key)
    world.pod(key, **running())
    world.reconcile(key)
    world.now = T0 + timedelta(seconds=4)
    world.pod(key, **terminated(0, success_message(dict(RESULT))))
    world.reconcile(key)
    status = world.mj(key)["status"]
    uid = world.mj(key)["metadata"]["uid"]
    assert status["phase"] == "Succeeded"
    renditions = status["renditions"]
    assert [(r["name"], r["key"], r["contentType"], r["size"]) for r in renditions] == [
        ("w320-webp", f"{NS}/results/{uid}/renditions/w320-webp", "image/webp", 100),
        ("w320-avif", f"{NS}/results/{uid}/renditions/w320-avif", "image/avif", 101),
    ]
    assert renditions[1]["url"].endswith("renditions/w320-avif?name=set-w320-avif.avif")
    assert renditions[0]["urlExpiresAt"] == "2026-12-03T00:00:00Z"
    assert status["result"] == {k: v for k, v in renditions[0].items() if k != "name"}


def test_a_small_input_with_renditions_goes_warm_and_its_slot_has_the_urls() -> None:
    world = WarmWorld()
    key = world.create("set", body_spec=renditions_spec())
    status = world.status(key)
    job, uid = status["jobName"], world.uid(key)
    assert job in world.warm_jobs()
    slot = Slot.from_json(world.gateway.objects[slot_key(NS, job, 0)])
    (slot_item,) = slot.items
    assert slot_item.output_url == ""
    assert slot_item.output_urls == {
        "w320-webp": f"http://minio.test/media/{NS}/results/{uid}/renditions/w320-webp?put",
        "w320-avif": f"http://minio.test/media/{NS}/results/{uid}/renditions/w320-avif?put",
    }
    world.log(job, {"event": "item", "item": uid, "result": RESULT})
    world.reconcile(key)
    status = world.status(key)
    assert status["phase"] == "Succeeded"
    assert [r["name"] for r in status["renditions"]] == ["w320-webp", "w320-avif"]
    assert status["result"]["key"] == f"{NS}/results/{uid}/renditions/w320-webp"


def test_renditions_of_a_large_input_get_a_pod_of_their_own() -> None:
    world = WarmWorld(max_input_bytes=10 * 1024**2)
    world.gateway.objects[f"{NS}/in/big"] = b"x" * (9 * 1024**2)
    world.gateway.add_mediajob(
        NS,
        "big",
        renditions_spec(
            input={"object": {"key": f"{NS}/in/big"}},
            renditions=[{"name": f"r{i}", "format": "webp"} for i in range(12)],
        ),
        labels={c.LABEL_OWNER: "alice"},
    )
    key = world.reconcile(Key(NS, "big"))
    assert world.warm_jobs() == []
    assert world.status(key)["phase"] == "Pending"


def test_each_input_records_its_renditions() -> None:
    world = WarmWorld()
    world.gateway.objects[f"{NS}/in/b"] = b"y" * 10
    body = {
        "operation": "ImageConvert",
        "inputs": [{"object": {"key": f"{NS}/uploads/a/input"}}, {"object": {"key": f"{NS}/in/b"}}],
        "renditions": RENDITIONS,
    }
    key = world.create("many", body_spec=body)
    items = world.status(key)["items"]
    job, uid = items[0]["jobName"], world.uid(key)
    slot1 = Slot.from_json(world.gateway.objects[slot_key(NS, job, 1)])
    assert slot1.items[0].output_urls == {
        "w320-webp": f"http://minio.test/media/{NS}/results/{uid}/items/001/renditions/w320-webp?put",
        "w320-avif": f"http://minio.test/media/{NS}/results/{uid}/items/001/renditions/w320-avif?put",
    }
    world.log(
        job,
        {"event": "item", "item": f"{uid}.0", "result": RESULT},
        {"event": "item", "item": f"{uid}.1", "result": RESULT},
    )
    world.reconcile(key)
    status = world.status(key)
    assert status["phase"] == "Succeeded"
    second = status["items"][1]
    assert [r["key"] for r in second["renditions"]] == [
        f"{NS}/results/{uid}/items/001/renditions/w320-webp",
        f"{NS}/results/{uid}/items/001/renditions/w320-avif",
    ]
    assert second["renditions"][1]["url"].endswith("?name=many-1-w320-avif.avif")
    assert second["result"]["key"] == second["renditions"][0]["key"]
    assert "renditions" not in status  # per item only
