"""A warm pod: one owner's image conversions, one after another, in one sandboxed pod.

The pod reads its mailbox (mediaflow_core.session): slot 0's presigned GET URL is a file of
its Secret, and every slot names the next. It polls the next slot while fewer than
`concurrency` items wait (read ahead) beside the `concurrency` it runs, converts each item
with the one-shot pipeline (every check of a one-shot pod, each item in a fresh scratch
directory removed when it is done), and reports each outcome as a JSON line on stdout,
which the operator follows.

The warm life ends, and the process exits 0, when nothing arrived for `idle` seconds, when
the lifetime is over, or when an item failed in a way that says the pod may no longer be
sound (a tool killed by a signal or past its time limit, a storage failure, a bug): it takes
no further slot, lets the running items finish, and exits; the operator gives the items it
never started to fresh pods.
"""

from __future__ import annotations

import http.client
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import NamedTuple
from urllib.parse import urlsplit

from mediaflow_core import constants as c
from mediaflow_core.session import EVENT_ITEM, EVENT_ITEM_START, EVENT_SESSION_END, Slot, SlotItem

from .cost import metering
from .errors import InputNotFound, InvalidInput, ToolHung, TransientError, WorkerError
from .report import log, redact, request_id
from .settings import Settings, _int, _url, settings_from_env


class SessionSettings(NamedTuple):
    first_slot_url: str
    idle_seconds: float = 60.0
    lifetime_seconds: float = 600.0
    concurrency: int = 2
    poll_seconds: float = 0.05


def session_settings_from_env(env: Mapping[str, str]) -> tuple[Settings, SessionSettings]:
    """The per-item defaults (limits, threads, work dir) and the session's own settings."""
    url_dir = env.get(c.ENV_URL_DIR) or c.URL_DIR
    base = settings_from_env({**env, c.ENV_OPERATION: "ImageConvert"}, urls=False)
    session = SessionSettings(
        first_slot_url=_url(url_dir, c.MAILBOX_URL_FILE),
        idle_seconds=_int(env, c.ENV_SESSION_IDLE_SECONDS, 60),
        lifetime_seconds=_int(env, c.ENV_SESSION_LIFETIME_SECONDS, 600),
        concurrency=_int(env, c.ENV_SESSION_CONCURRENCY, 2),
        poll_seconds=_int(env, c.ENV_SESSION_POLL_MS, 50, low=10) / 1000,
    )
    return base, session


class Mailbox:
    """GETs of presigned slot URLs over one kept-alive connection (the slots are all on the
    operator's storage endpoint): a poll is one small request, ~1 ms on a warm connection."""

    def __init__(self) -> None:
        self.conn: http.client.HTTPConnection | None = None
        self.host: tuple[str, str, int | None] | None = None

    def get(self, url: str) -> bytes | None:
        """The slot's content, or None while it does not exist (404, or 403 from stores that
        hide absence). TransientError when the storage cannot be reached."""
        parts = urlsplit(url)
        host = (parts.scheme, parts.hostname or "", parts.port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more
            if self.conn is None or self.host != host:
                self.close()
                cls = (
                    http.client.HTTPSConnection
                    if parts.scheme == "https"
                    else http.client.HTTPConnection
                )
                self.conn, self.host = cls(host[1], host[2], timeout=10), host
            try:
                self.conn.request("GET", target)
                response = self.conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 2:
                    raise TransientError(
                        f"the mailbox cannot be read: {type(exc).__name__}"
                    ) from None
                continue
            if response.status == 200:
                return body
            if response.status in (403, 404):
                return None
            raise TransientError(f"the mailbox answered HTTP {response.status}")
        return None  # pragma: no cover

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None


def keeps_warm(error: WorkerError) -> bool:
    """May the pod take more items after this failure? Only after the input's own fault,
    found by the checks (not a tool that hung)."""
    return isinstance(error, InvalidInput | InputNotFound) and not isinstance(error, ToolHung)


def convert_item(base: Settings, item: SlotItem) -> bool:
    """Convert one item and report its outcome line; True when the pod stays warm."""
    # The API request that made the item's MediaJob, when the slot says it: on every line
    # of the item (reset after it: the pool's threads serve many items).
    token = request_id.set(item.request_id or None)
    try:
        return _convert(base, item)
    finally:
        request_id.reset(token)


def _convert(base: Settings, item: SlotItem) -> bool:
    from .pipeline import run

    started = time.monotonic()
    log(EVENT_ITEM_START, item=item.id, operation=item.operation)
    settings = base._replace(
        operation=item.operation,
        options=item.options or "{}",
        input_url=item.input_url,
        output_url=item.output_url,
        output_urls=tuple((item.output_urls or {}).items()),
        input_public_only=item.input_public_only,
    )
    # Each item runs in a thread of its own: its meter sees only its own tools (cost.py).
    with metering() as meter:
        try:
            if not item.operation.startswith("Image"):
                raise InvalidInput(f"a warm pod converts images only, not {item.operation}")  # noqa: TRY301
            result = {**run(settings), "cost": meter.report()}
        except WorkerError as exc:
            failure = {
                "reason": exc.reason,
                "message": redact(str(exc))[:2000],
                "cost": meter.report(),
            }
            log(EVENT_ITEM, item=item.id, failure=failure)
            return keeps_warm(exc)
        except Exception as exc:  # a bug: this item fails, and the pod ends its warm life
            message = f"internal error in the worker ({type(exc).__name__}); retrying may help"
            log(
                EVENT_ITEM,
                item=item.id,
                failure={"reason": c.REASON_TRANSIENT_ERROR, "message": message},
            )
            return False
    seconds = round(time.monotonic() - started, 3)
    log(EVENT_ITEM, item=item.id, result=result, seconds=seconds)
    return True


def serve(base: Settings, session: SessionSettings, clock=time.monotonic, sleep=time.sleep) -> str:
    """Take items from the mailbox until the warm life ends; returns why it ended.

    The mailbox is read ahead: while `concurrency` items run, up to `concurrency` more wait
    here, read and not started, so an item that ends is followed at once by the next one
    instead of by a read of the mailbox (a few ms on storage that also serves the items'
    files). An item read ahead is not started when the pod's warm life ends first (its
    MediaJob gets a fresh pod, as for a slot never read); one whose slot the operator
    revokes after it was read still runs, and its result is deleted when it is reported,
    as for a slot read just before the revocation."""
    mailbox = Mailbox()
    url: str | None = session.first_slot_url  # None once the operator closed the mailbox
    started = last_busy = clock()
    running: set[Future[bool]] = set()
    ready: deque[SlotItem] = deque()  # read from the mailbox, not started
    items = 0
    reason = "idle"
    with ThreadPoolExecutor(max_workers=session.concurrency, thread_name_prefix="item") as pool:
        while True:
            finished = {f for f in running if f.done()}
            running -= finished
            if any(not f.result() for f in finished):
                reason = "unsound"
                break
            now = clock()
            if running or finished or ready:
                last_busy = now
            if now - started > session.lifetime_seconds:
                reason = "lifetime"
                break
            while ready and len(running) < session.concurrency:
                running.add(pool.submit(convert_item, base, ready.popleft()))
                items += 1
            if url is None or len(ready) >= session.concurrency:
                if url is None and not running and not ready:
                    reason = "closed"
                    break
                wait(running, timeout=session.poll_seconds, return_when=FIRST_COMPLETED)
                continue
            try:
                data = mailbox.get(url)
            except TransientError as exc:
                log("mailbox-unreachable", error=str(exc))
                reason = "mailbox-unreachable"
                break
            if data is None:
                if not running and not ready and now - last_busy > session.idle_seconds:
                    break
                if running:
                    wait(running, timeout=session.poll_seconds, return_when=FIRST_COMPLETED)
                else:
                    sleep(session.poll_seconds)
                continue
            try:
                slot = Slot.from_json(data)
            except ValueError as exc:  # only the operator writes slots: an operator bug
                log("mailbox-broken", error=str(exc))
                reason = "mailbox-broken"
                break
            ready.extend(slot.items)
            # No next URL: the operator closed the mailbox (it is shutting down); what it
            # holds is converted, then the pod ends.
            url = slot.next_url or None
        wait(running)
    mailbox.close()
    log(EVENT_SESSION_END, reason=reason, items=items, seconds=round(clock() - started, 3))
    return reason
