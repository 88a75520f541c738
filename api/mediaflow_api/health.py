"""Health of the parts the API depends on: the Kubernetes API, the MediaJob resource (the
queue), MinIO, and the tools of the image (ffmpeg, cwebp)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from mediaflow_api.clients import Clients
from mediaflow_api.metrics import storage_checked


class State(StrEnum):
    UP = "up"
    DOWN = "down"


logger = logging.getLogger(__name__)

# The flat keys the previous service's monitors read, and the component each stands for
# here: the system of record (it was PostgreSQL), the queue (it was Redis/Celery: here the
# MediaJob resource the operator works from), storage, and the tools of the image.
LEGACY_KEYS = {
    "database": "kubernetes",
    "redis": "mediajobs",
    "minio": "minio",
    "ffmpeg": "ffmpeg",
    "cwebp": "cwebp",
}


class ComponentHealth(BaseModel):
    """The state of one component, with what was seen."""

    status: State
    detail: str | None = Field(
        default=None,
        description="What the check saw, e.g. the server version or the error; only for "
        "callers sending a valid access token.",
    )


class HealthReport(BaseModel):
    """The state of every component; `healthy` when all are up."""

    status: str = Field(description="`healthy` or `unhealthy`.")
    components: dict[str, ComponentHealth]
    database: str = Field(description="`ok` when the Kubernetes API (the system of record) is up.")
    redis: str = Field(description="`ok` when the MediaJob resource (the queue) is served.")
    minio: str = Field(description="`ok` when object storage is up and the bucket exists.")
    ffmpeg: str = Field(description="`ok` when ffmpeg runs in this image.")
    cwebp: str = Field(description="`ok` when cwebp runs in this image.")

    @property
    def down(self) -> list[str]:
        return [name for name, c in self.components.items() if c.status is State.DOWN]

    def without_detail(self) -> HealthReport:
        """The report for anonymous callers: states only, no versions or errors."""
        return self.model_copy(
            update={
                "components": {
                    name: ComponentHealth(status=c.status) for name, c in self.components.items()
                }
            }
        )


class Probe:
    """A blocking check run in a daemon thread, with a deadline.

    The MinIO client has no per-call timeout, so a hung check cannot be interrupted. Instead
    a later request waits on the check still in flight rather than starting another (at most
    one thread per component), and the thread is a daemon so it never delays shutdown.
    """

    def __init__(self, name: str, check: Callable[[], str], timeout: float) -> None:
        self.name = name
        self.check = check
        self.timeout = timeout
        self._inflight: asyncio.Future[str] | None = None
        self._last = State.UP

    def _start(self) -> asyncio.Future[str]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()

        def settle(result: str | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result or "")

        def target() -> None:
            try:
                outcome: tuple[str | None, BaseException | None] = (self.check(), None)
            except Exception as error:  # handed to the awaiting request
                outcome = (None, error)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle, *outcome)

        threading.Thread(target=target, name=f"health-{self.name}", daemon=True).start()
        # Retrieve the outcome even if nobody awaits it any more (no "never retrieved").
        future.add_done_callback(_consume)
        return future

    async def run(self) -> ComponentHealth:
        if self._inflight is None or self._inflight.done():
            self._inflight = self._start()
        try:
            detail = await asyncio.wait_for(asyncio.shield(self._inflight), self.timeout)
        except TimeoutError:
            health = ComponentHealth(status=State.DOWN, detail=f"no answer within {self.timeout}s")
        except Exception as error:  # any failure means the component is down
            health = ComponentHealth(status=State.DOWN, detail=_describe(error))
        else:
            health = ComponentHealth(status=State.UP, detail=detail)
        if health.status is not self._last:
            # In the log for operators: anonymous callers no longer see the detail.
            level = logging.WARNING if health.status is State.DOWN else logging.INFO
            logger.log(level, "health: %s is %s: %s", self.name, health.status, health.detail)
            self._last = health.status
        return health


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _describe(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def tool_version(name: str, timeout: float) -> str:
    """The first line of `name -version` (ffmpeg and cwebp both take it); raises if the tool
    is missing or fails."""
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not on PATH")
    done = subprocess.run(  # noqa: S603 - a fixed tool found on PATH, no user input
        [path, "-version"], capture_output=True, text=True, timeout=timeout, check=True
    )
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else f"{name} runs"


class HealthChecks:
    """One probe per component, shared by all requests of the process."""

    def __init__(self, clients: Clients, bucket: str, namespace: str, timeout: float) -> None:
        def kubernetes() -> str:
            return f"API server {clients.kubernetes_version(timeout)}"

        def mediajobs() -> str:
            clients.list_mediajobs(namespace, timeout)
            return f"MediaJobs served in namespace {namespace!r}"

        def minio() -> str:
            if not clients.bucket_exists(bucket):
                raise LookupError(f"bucket {bucket!r} does not exist")
            return f"bucket {bucket!r} exists"

        versions: dict[str, str] = {}  # the image's tools do not change while it runs

        def tool(name: str) -> Callable[[], str]:
            def check() -> str:
                if name not in versions:
                    versions[name] = tool_version(name, timeout)
                return versions[name]

            return check

        checks = {
            "kubernetes": kubernetes,
            "mediajobs": mediajobs,
            "minio": minio,
            "ffmpeg": tool("ffmpeg"),
            "cwebp": tool("cwebp"),
        }
        self.probes = {name: Probe(name, check, timeout) for name, check in checks.items()}

    async def report(self) -> HealthReport:
        """Run every probe concurrently."""
        names = list(self.probes)
        states = await asyncio.gather(*(self.probes[name].run() for name in names))
        components = dict(zip(names, states, strict=True))
        storage_checked(components["minio"].status is State.UP)
        healthy = all(c.status is State.UP for c in states)
        flat = {
            key: "ok" if components[name].status is State.UP else "error"
            for key, name in LEGACY_KEYS.items()
        }
        return HealthReport(
            status="healthy" if healthy else "unhealthy", components=components, **flat
        )
