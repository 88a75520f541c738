"""The warm path's contract between the operator and a warm worker pod.

Work reaches a warm pod through object storage, with no credential in the pod: its mailbox
is a chain of slot objects under `_sessions/<namespace>/<job>/`. The pod holds the presigned
GET URL of slot 0 (a file of its Secret) and polls it until the object exists; every slot
holds one item and the presigned GET URL of the next slot. Only the operator writes slots.

Outcomes come back on the pod's stdout, one JSON line per item, which the operator follows
(the pod log stream): `{"event": "item-start", "item": ID}`, then
`{"event": "item", "item": ID, "result": {...}}` (a termination.WorkerResult, with its
`renditions` for an item with renditions) or
`{"event": "item", "item": ID, "failure": {"reason": ..., "message": ...}}`.
A slot whose next URL is empty closes the mailbox: the pod finishes what it has and ends (an
operator that shuts down closes its warm pods; the next one makes its own).
ID is the MediaJob's uid. A failure whose reason is not final (TransientError) ends the
pod's warm life: it takes no further slot, and the operator gives the items it did not
finish to fresh pods.

Plain JSON and dataclasses, no pydantic: the worker reads slots from its first millisecond.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

# Not a namespace (namespaces are DNS labels, no `_`): no MediaJob's input can name it.
SESSIONS_PREFIX = "_sessions"
EVENT_ITEM_START = "item-start"
EVENT_ITEM = "item"
EVENT_SESSION_END = "session-end"


def session_prefix(namespace: str, job: str) -> str:
    return f"{SESSIONS_PREFIX}/{namespace}/{job}/"


def slot_key(namespace: str, job: str, slot: int) -> str:
    return f"{session_prefix(namespace, job)}{slot:06d}.json"


def slot_number(key: str, prefix: str) -> int | None:
    """The slot a key under a mailbox's `prefix` holds (slot_key's inverse); None for any
    other key."""
    name = key.removeprefix(prefix)
    if name == key or not name.endswith(".json"):
        return None
    digits = name.removesuffix(".json")
    return int(digits) if digits.isdigit() and len(digits) == 6 else None


@dataclass(frozen=True)
class SlotItem:
    """One conversion for a warm pod: what the one-shot worker reads from its environment
    and Secret, per item."""

    id: str
    operation: str
    options: str
    input_url: str
    output_url: str
    input_public_only: bool = False
    # An ImageConvert with renditions: rendition name -> presigned PUT URL (output_url is "").
    output_urls: dict[str, str] | None = None
    # The API request that made the MediaJob (ANNOTATION_REQUEST_ID), for the pod's log lines.
    request_id: str | None = None


def _item_json(item: SlotItem) -> dict[str, Any]:
    # Without a request id the slot is what it was before the field existed.
    doc = asdict(item)
    if doc["request_id"] is None:
        del doc["request_id"]
    return doc


@dataclass(frozen=True)
class Slot:
    items: tuple[SlotItem, ...]
    next_url: str

    def to_json(self) -> bytes:
        return json.dumps(
            {"items": [_item_json(i) for i in self.items], "next": self.next_url},
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Slot:
        """A slot as the operator wrote it; ValueError on anything else."""
        doc = json.loads(data)
        if not isinstance(doc, dict) or not isinstance(doc.get("next"), str):
            raise ValueError("a slot is an object with a string `next`")  # noqa: TRY004
        items = doc.get("items")
        if not isinstance(items, list):
            raise ValueError("a slot's `items` is a list")  # noqa: TRY004
        fields = set(SlotItem.__dataclass_fields__)
        parsed = []
        for item in items:
            if not isinstance(item, dict) or not set(item) <= fields:
                raise ValueError("a slot item has only the fields of SlotItem")
            parsed.append(SlotItem(**item))
        return cls(tuple(parsed), doc["next"])


@dataclass(frozen=True)
class ItemOutcome:
    """One outcome line of a warm pod: `result` (WorkerResult fields) or `failure`."""

    item: str
    result: dict[str, Any] | None = None
    failure: dict[str, Any] | None = None


def parse_line(line: str) -> tuple[str, str] | ItemOutcome | None:
    """A warm pod's log line: ("item-start", id), ("session-end", ""), an ItemOutcome, or
    None for every other line (the pod's own log, or anything a broken tool printed)."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    event, item = doc.get("event"), doc.get("item")
    if event == EVENT_SESSION_END:
        return (EVENT_SESSION_END, "")
    if not isinstance(item, str):
        return None
    if event == EVENT_ITEM_START:
        return (EVENT_ITEM_START, item)
    if event != EVENT_ITEM:
        return None
    result, failure = doc.get("result"), doc.get("failure")
    if isinstance(result, dict) and failure is None:
        return ItemOutcome(item, result=result)
    if isinstance(failure, dict) and result is None:
        return ItemOutcome(item, failure=failure)
    return None
