"""The API's request id on a MediaJob (mediaflow.io/request-id) goes to the worker's
environment and the slot of a warm pod, and into the operator's log lines about it."""

from __future__ import annotations

import json
import logging

import pytest

from mediaflow_core import constants as c
from mediaflow_core.mediajob import MediaJobSpec
from mediaflow_core.naming import MediaJobRef
from mediaflow_core.session import Slot, SlotItem
from mediaflow_operator import logcontext
from mediaflow_operator.builders import build_job, request_id_of
from tests.unit.operator.test_reconciler import World, spec

pytestmark = pytest.mark.unit


def annotated(value: str | None) -> dict:
    annotations = {} if value is None else {c.ANNOTATION_REQUEST_ID: value}
    return {"metadata": {"name": "a", "namespace": "team", "uid": "u",
                         "annotations": annotations}}  # fmt: skip


def test_a_plausible_request_id_is_taken_and_anything_else_ignored() -> None:
    assert request_id_of(annotated("0f3c-41a2_b.9:x")) == "0f3c-41a2_b.9:x"
    assert request_id_of(annotated(None)) is None
    assert request_id_of(annotated("x" * 129)) is None
    assert request_id_of(annotated("a b\n")) is None


def test_the_worker_gets_it_in_its_environment() -> None:
    world = World()
    ref = MediaJobRef("a", "team", "u")
    parsed = MediaJobSpec.model_validate(spec())
    job = build_job(ref, parsed, world.settings, input_size=10, request_id="req-1")
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[c.ENV_REQUEST_ID] == "req-1"
    job = build_job(ref, parsed, world.settings, input_size=10)
    env = {e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert c.ENV_REQUEST_ID not in env


def test_a_warm_slot_carries_it_and_one_without_is_unchanged() -> None:
    item = SlotItem("id", "ImageConvert", "{}", "http://in", "http://out", request_id="req-2")
    assert Slot.from_json(Slot((item,), "").to_json()).items[0].request_id == "req-2"
    plain = SlotItem("id", "ImageConvert", "{}", "http://in", "http://out")
    assert "request_id" not in json.loads(Slot((plain,), "").to_json())["items"][0]


def test_the_operator_s_lines_about_a_mediajob_carry_it_and_the_object() -> None:
    logcontext.install()
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("mediaflow_operator.reconciler")
    handler = Keep()
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with logcontext.about(annotated("req-3")):
            logger.info("about it")
        logger.info("about nothing")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    about, other = records
    assert about.requestId == "req-3"  # type: ignore[attr-defined]
    assert about.k8s_ref["name"] == "a"  # type: ignore[attr-defined]
    assert not hasattr(other, "requestId")
