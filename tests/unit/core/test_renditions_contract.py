"""Renditions (issue 12, item 3) in the contract: the spec's list, the worker's options, the
object keys, the termination message's bound."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mediaflow_core.mediajob import MediaJobSpec
from mediaflow_core.naming import (
    MediaJobRef,
    download_filename,
    item_result_prefix,
    rendition_key,
    result_prefix,
)
from mediaflow_core.options import ImageRenditionsOptions, OptionsError, parse_options
from mediaflow_core.session import Slot, SlotItem
from mediaflow_core.termination import (
    TERMINATION_LIMIT,
    RenditionOutput,
    WorkerResult,
    read_termination,
)

pytestmark = pytest.mark.unit

INPUT = {"object": {"key": "ns/in.jpg"}}
REF = MediaJobRef(name="photo", namespace="ns", uid="0f1e2d3c-aaaa-bbbb-cccc-0123456789ab")


def spec(**fields):
    return MediaJobSpec.model_validate({"input": INPUT, "operation": "ImageConvert", **fields})


def test_renditions_instead_of_image_convert_options() -> None:
    parsed = spec(
        renditions=[
            {"name": "w320-webp", "format": "webp", "width": 320},
            {"name": "w320-avif", "format": "avif", "width": 320, "quality": 50},
        ]
    )
    options = parsed.options
    assert isinstance(options, ImageRenditionsOptions)
    # What the operator gives the worker is parsed back to the same options.
    text = options.model_dump_json(by_alias=True, exclude_none=True)
    assert parse_options("ImageConvert", text) == options
    assert [r.quality for r in options.renditions] == [85, 50]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "operation ImageConvert needs spec.imageConvert or spec.renditions"),
        (
            {"renditions": [{"name": "a", "format": "webp"}], "imageConvert": {"format": "png"}},
            "set at most one of imageConvert and renditions",
        ),
        (
            {"renditions": [{"name": "a", "format": "webp"}, {"name": "a", "format": "avif"}]},
            "rendition names must be unique",
        ),
        ({"renditions": []}, "at least 1 item"),
        ({"renditions": [{"name": f"r{i}", "format": "png"} for i in range(13)]}, "at most 12"),
        ({"renditions": [{"name": "W320", "format": "webp"}]}, "pattern"),
        ({"renditions": [{"name": "-a", "format": "webp"}]}, "pattern"),
        ({"renditions": [{"name": "a" * 33, "format": "webp"}]}, "at most 32"),
        ({"renditions": [{"name": "a", "format": "gif"}]}, "'webp', 'avif', 'png' or 'jpeg'"),
        ({"renditions": [{"name": "a", "format": "webp", "quality": 0}]}, "greater than or"),
        ({"renditions": [{"name": "a", "format": "webp", "width": 0}]}, "greater than or"),
        ({"renditions": [{"name": "a", "format": "webp", "height": 16385}]}, "less than or"),
        ({"renditions": [{"name": "a", "format": "webp", "fit": "cover"}]}, "Extra inputs"),
    ],
)
def test_invalid_renditions_are_refused_with_the_cel_words(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        spec(**fields)
    assert message in str(error.value)


def test_renditions_only_with_image_convert() -> None:
    with pytest.raises(ValidationError, match="renditions is only allowed with operation"):
        MediaJobSpec.model_validate(
            {
                "input": INPUT,
                "operation": "ImageResize",
                "imageResize": {"width": 10},
                "renditions": [{"name": "a", "format": "webp"}],
            }
        )


def test_renditions_work_with_inputs() -> None:
    parsed = MediaJobSpec.model_validate(
        {
            "inputs": [INPUT, INPUT],
            "operation": "ImageConvert",
            "renditions": [{"name": "a", "format": "webp"}],
        }
    )
    assert len(parsed.items) == 2


def test_inputs_times_renditions_are_bounded() -> None:
    def with_renditions(count: int) -> dict:
        renditions = [{"name": f"r{i}", "format": "webp"} for i in range(count)]
        return {"operation": "ImageConvert", "inputs": [INPUT] * 100, "renditions": renditions}

    assert MediaJobSpec.model_validate(with_renditions(3))
    with pytest.raises(ValidationError, match="inputs times renditions must be at most 300"):
        MediaJobSpec.model_validate(with_renditions(4))


def test_worker_options_refuse_duplicates_too() -> None:
    with pytest.raises(OptionsError, match="rendition names must be unique"):
        parse_options(
            "ImageConvert",
            '{"renditions":[{"name":"a","format":"webp"},{"name":"a","format":"png"}]}',
        )


def test_rendition_keys_are_under_the_result_prefix() -> None:
    assert rendition_key(REF, "w320-webp") == f"{result_prefix(REF)}renditions/w320-webp"
    item = rendition_key(REF, "w320-webp", 7)
    assert item == f"{result_prefix(REF)}items/007/renditions/w320-webp"
    # A cancelled input's prefix (what the operator deletes) holds its renditions.
    assert item.startswith(item_result_prefix("ns", f"{REF.uid}.7"))


def test_rendition_download_names() -> None:
    assert download_filename("photo", "image/avif", "w320-avif") == "photo-w320-avif.avif"
    assert download_filename("photo", "image/jpeg") == "photo.jpg"


def test_twelve_renditions_fit_the_termination_message() -> None:
    outputs = [
        RenditionOutput(
            name=f"r{i:02d}-" + "x" * 28,
            size=2**40,
            content_type="image/avif",
            format="avif",
            width=16384,
            height=16384,
        )
        for i in range(12)
    ]
    first = outputs[0]
    message = WorkerResult(
        size=first.size,
        content_type=first.content_type,
        format=first.format,
        width=first.width,
        height=first.height,
        renditions=outputs,
    ).to_json()
    assert len(message.encode()) < TERMINATION_LIMIT
    read = read_termination(message)
    assert isinstance(read, WorkerResult)
    assert read.renditions is not None
    assert [r.name for r in read.renditions] == [o.name for o in outputs]


def test_a_slot_item_carries_a_url_per_rendition() -> None:
    item = SlotItem("uid", "ImageConvert", "{}", "http://in", "", False, {"a": "http://a"})
    assert Slot.from_json(Slot((item,), "").to_json()).items == (item,)
