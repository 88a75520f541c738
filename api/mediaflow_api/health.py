"""Health of the parts the API depends on: the Kubernetes API and MinIO."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from mediaflow_api.clients import Clients


class State(StrEnum):
    UP = "up"
    DOWN = "down"


class ComponentHealth(BaseModel):
    """The state of one component, with what was seen."""

    status: State
    detail: str = Field(description="What the check saw, e.g. the server version or the error.")


class HealthReport(BaseModel):
    """The state of every component; `healthy` when all are up."""

    status: str = Field(description="`healthy` or `unhealthy`.")
    components: dict[str, ComponentHealth]

    @property
    def down(self) -> list[str]:
        return [name for name, c in self.components.items() if c.status is State.DOWN]


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
            return ComponentHealth(status=State.DOWN, detail=f"no answer within {self.timeout}s")
        except Exception as error:  # any failure means the component is down
            return ComponentHealth(status=State.DOWN, detail=_describe(error))
        return ComponentHealth(status=State.UP, detail=detail)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _describe(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class HealthChecks:
    """One probe per component, shared by all requests of the process."""

    def __init__(self, clients: Clients, bucket: str, timeout: float) -> None:
        def kubernetes() -> str:
            return f"API server {clients.kubernetes_version(timeout)}"

        def minio() -> str:
            if not clients.bucket_exists(bucket):
                raise LookupError(f"bucket {bucket!r} does not exist")
            return f"bucket {bucket!r} exists"

        self.probes = {
            "kubernetes": Probe("kubernetes", kubernetes, timeout),
            "minio": Probe("minio", minio, timeout),
        }

    async def report(self) -> HealthReport:
        """Run every probe concurrently."""
        names = list(self.probes)
        states = await asyncio.gather(*(self.probes[name].run() for name in names))
        components = dict(zip(names, states, strict=True))
        healthy = all(c.status is State.UP for c in states)
        return HealthReport(status="healthy" if healthy else "unhealthy", components=components)
