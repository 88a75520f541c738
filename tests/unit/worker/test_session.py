"""The warm worker (mediaflow_worker.session) as a process, with real cwebp/ffmpeg, against a
loopback server that plays object storage: slots appear as the test writes them, outputs
are PUT to it. The operator's side is tested in tests/integration/test_warm_pods.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mediaflow_core.session import Slot, SlotItem, parse_line

from .conftest import SIGNATURE, FileServer, have

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(not have("cwebp"), reason="cwebp is not installed"),
]


class Mailbox:
    """Slots of one warm pod on the loopback server: slot N is /in/<tag>-slot-N."""

    def __init__(self, server: FileServer, root: Path, tag: str) -> None:
        self.server, self.root, self.tag = server, root, tag

    def url(self, n: int) -> str:
        return f"{self.server.base}/in/{self.tag}-slot-{n}?{SIGNATURE}"

    def write(self, n: int, *items: SlotItem) -> None:
        path = self.root / f"{self.tag}-slot-{n}"
        path.write_bytes(Slot(items, self.url(n + 1)).to_json())
        self.server.files[path.name] = path


def item(server: FileServer, n: int, source: Path, tag: str, **options: object) -> SlotItem:
    return SlotItem(
        id=f"uid-{tag}-{n}",
        operation="ImageConvert",
        options=json.dumps({"format": "webp", **options}),
        input_url=server.serve(source, f"{tag}-in-{n}-{source.name}"),
        output_url=f"{server.base}/out/{tag}-out-{n}?{SIGNATURE}",
    )


def start(tmp_path: Path, mailbox: Mailbox, **env: str) -> tuple[subprocess.Popen[str], Path]:
    urls, work = tmp_path / "urls", tmp_path / "work"
    urls.mkdir()
    work.mkdir()
    (urls / "mailbox-url").write_text(mailbox.url(0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mediaflow_worker"],
        env={
            "PATH": os.environ["PATH"],
            "MEDIAFLOW_SESSION": "1",
            "MEDIAFLOW_URL_DIR": str(urls),
            "MEDIAFLOW_WORK_DIR": str(work),
            "MEDIAFLOW_SESSION_IDLE_SECONDS": "2",
            "MEDIAFLOW_SESSION_POLL_MS": "20",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, work


def finish(proc: subprocess.Popen[str]) -> list[dict]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert SIGNATURE.split("=")[1] not in out + err  # no presigned signature in its log
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_a_warm_pod_converts_items_as_they_arrive_then_ends_when_idle(
    http_server: FileServer, media, tmp_path: Path
) -> None:
    box = Mailbox(http_server, tmp_path, "idle")
    photo, broken = media.png("640x480", "warm.png"), tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    box.write(0, item(http_server, 0, photo, "idle"))
    proc, work = start(tmp_path, box)
    time.sleep(0.8)  # the pod has polled an absent slot 1 a few times: it waits for it
    box.write(1, item(http_server, 1, broken, "idle"))
    box.write(2, item(http_server, 2, photo, "idle", quality=50))
    events = finish(proc)

    outcomes = [parse_line(json.dumps(e)) for e in events if e["event"] == "item"]
    by_id = {o.item: o for o in outcomes}
    assert set(by_id) == {"uid-idle-0", "uid-idle-1", "uid-idle-2"}
    assert by_id["uid-idle-0"].result["width"] == 640
    assert by_id["uid-idle-0"].result["contentType"] == "image/webp"
    # The broken file fails alone, with the one-shot worker's reason; the pod stays warm.
    assert by_id["uid-idle-1"].failure["reason"] == "InvalidInput"
    assert by_id["uid-idle-2"].result is not None
    for n in (0, 2):
        body = http_server.uploads[f"idle-out-{n}"].body
        assert body[:4] == b"RIFF"
        assert body[8:12] == b"WEBP"
    end = [e for e in events if e["event"] == "session-end"]
    assert len(end) == 1
    assert (end[0]["reason"], end[0]["items"]) == ("idle", 3)
    # Every item's scratch directory is gone once it is done.
    assert list(work.iterdir()) == []


def test_an_item_that_leaves_the_pod_unsound_ends_its_warm_life(
    http_server: FileServer, media, tmp_path: Path
) -> None:
    """A storage failure (the output PUT cannot connect) is not the input's fault: the pod takes
    no further slot; the operator gives the rest to fresh pods."""
    box = Mailbox(http_server, tmp_path, "unsound")
    photo = media.png("64x48", "unsound.png")
    bad = item(http_server, 0, photo, "unsound")
    # Nothing listens on the discard port of loopback: the output PUT cannot connect.
    bad = SlotItem(**{**bad.__dict__, "output_url": "http://127.0.0.1:9/out?" + SIGNATURE})
    box.write(0, bad)
    box.write(1, item(http_server, 1, photo, "unsound"))
    proc, _ = start(tmp_path, box, MEDIAFLOW_SESSION_CONCURRENCY="1")
    events = finish(proc)
    outcomes = [e for e in events if e["event"] == "item"]
    assert [o["item"] for o in outcomes] == ["uid-unsound-0"]
    assert outcomes[0]["failure"]["reason"] == "TransientError"
    end = [e for e in events if e["event"] == "session-end"]
    assert end[0]["reason"] == "unsound"
    assert "unsound-out-1" not in http_server.uploads


def test_the_next_slot_is_read_while_an_item_runs(
    http_server: FileServer, media, tmp_path: Path
) -> None:
    """Read ahead: with one item at a time, slot 1 is read while item 0 converts (not after
    its upload), so item 1 starts as soon as item 0 ends; both convert, in order."""
    box = Mailbox(http_server, tmp_path, "ahead")
    photo = media.png("640x480", "ahead.png")
    box.write(0, item(http_server, 0, photo, "ahead"))
    box.write(1, item(http_server, 1, photo, "ahead"))
    proc, _ = start(tmp_path, box, MEDIAFLOW_SESSION_CONCURRENCY="1")
    events = finish(proc)
    assert [e["item"] for e in events if e["event"] == "item"] == ["uid-ahead-0", "uid-ahead-1"]
    order = http_server.requests
    assert order.index("GET ahead-slot-1") < order.index("PUT ahead-out-0"), order
    starts = [e["item"] for e in events if e["event"] == "item-start"]
    assert starts == ["uid-ahead-0", "uid-ahead-1"]  # one at a time: 1 after 0's outcome


def test_a_revoked_slot_is_skipped(http_server: FileServer, media, tmp_path: Path) -> None:
    """A slot the operator rewrote empty (its MediaJob was cancelled) converts nothing, and
    the chain goes on."""
    box = Mailbox(http_server, tmp_path, "revoked")
    photo = media.png("64x48", "revoked.png")
    box.write(0)
    box.write(1, item(http_server, 1, photo, "revoked"))
    proc, _ = start(tmp_path, box)
    events = finish(proc)
    assert [e["item"] for e in events if e["event"] == "item"] == ["uid-revoked-1"]


def test_a_closed_mailbox_ends_the_pod_after_what_it_holds(
    http_server: FileServer, media, tmp_path: Path
) -> None:
    """An operator shutting down writes a slot with no next URL: the pod converts what came
    before it and ends at once, without waiting out its idle time."""
    box = Mailbox(http_server, tmp_path, "closed")
    photo = media.png("64x48", "closed.png")
    box.write(0, item(http_server, 0, photo, "closed"))
    path = tmp_path / "closed-slot-1"
    path.write_bytes(Slot((), "").to_json())
    http_server.files[path.name] = path
    proc, _ = start(tmp_path, box, MEDIAFLOW_SESSION_IDLE_SECONDS="600")
    started = time.monotonic()
    events = finish(proc)
    assert time.monotonic() - started < 60
    assert [e["item"] for e in events if e["event"] == "item"] == ["uid-closed-0"]
    assert [e["reason"] for e in events if e["event"] == "session-end"] == ["closed"]
