"""What a worker pod tells the operator: its exit code and its termination message.

The worker writes one `WorkerResult` (success) or `WorkerFailure` (failure) as JSON to its
termination-message path (`/dev/termination-log`); the kubelet puts it in the pod's
`containerStatuses[].state.terminated.message`, where the operator reads it back with
`read_termination`. Kubernetes keeps at most 4096 bytes of it.

The exit codes are in `constants` (EXIT_*), free of pydantic: the worker needs them from its
first millisecond, this module only once it has a message to write.
"""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from mediaflow_core import constants as c

TERMINATION_LIMIT = 4096  # Kubernetes truncates the termination message here
MESSAGE_LIMIT = 1000  # room for a failure's message, well under TERMINATION_LIMIT


class FailureReason(StrEnum):
    """Why a worker failed, as its termination message says."""

    INVALID_INPUT = c.REASON_INVALID_INPUT
    INPUT_NOT_FOUND = c.REASON_INPUT_NOT_FOUND
    TRANSIENT_ERROR = c.REASON_TRANSIENT_ERROR


class _Message(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, extra="ignore")

    def to_json(self) -> str:
        """The message as the worker writes it (camelCase keys, compact)."""
        return self.model_dump_json(by_alias=True)


class WorkerCost(_Message):
    """What one conversion cost (issue 13): the CPU time and peak memory of the tool processes
    the worker ran for it (each one's rusage, so items of a warm pod running side by side are
    told apart) and the bytes it downloaded and uploaded."""

    cpu_seconds: float = Field(ge=0, description="User + system CPU seconds of its tools.")
    peak_memory_bytes: int = Field(ge=0, description="Largest peak RSS of one of its tools.")
    input_bytes: int = Field(ge=0, description="Bytes of input downloaded.")
    output_bytes: int = Field(ge=0, description="Bytes of output uploaded.")


class WorkerResult(_Message):
    """A successful worker's termination message: the file it uploaded."""

    size: int = Field(ge=0, description="Size of the uploaded result in bytes.")
    content_type: str = Field(description="MIME type of the result.")
    format: str = Field(description="Short name of the output format: webp, mp4, ...")
    width: int | None = Field(default=None, description="Width in pixels; None if unknown.")
    height: int | None = Field(default=None, description="Height in pixels; None if unknown.")
    duration: float | None = Field(default=None, description="Seconds (videos); None for images.")
    # With renditions, the fields above are the first rendition's; each is here, by name. At
    # most 12 of ~120 bytes each: the message stays well under TERMINATION_LIMIT.
    renditions: list[RenditionOutput] | None = Field(
        default=None, description="Every rendition uploaded, in the order of the options."
    )
    cost: WorkerCost | None = Field(default=None, description="What the conversion cost.")

    def to_json(self) -> str:
        """As _Message.to_json; `renditions` and `cost` only when there are some (a plain
        result's message is what it was before they existed)."""
        exclude = {k for k in ("renditions", "cost") if getattr(self, k) is None} or None
        return self.model_dump_json(by_alias=True, exclude=exclude)


class RenditionOutput(_Message):
    """One rendition a worker uploaded (spec.renditions): its name and file, never a URL."""

    name: str = Field(description="The rendition's name.")
    size: int = Field(ge=0, description="Size of the uploaded rendition in bytes.")
    content_type: str = Field(description="MIME type of the rendition.")
    format: str = Field(description="Short name of its format: webp, avif, png or jpeg.")
    width: int | None = Field(default=None, description="Width in pixels.")
    height: int | None = Field(default=None, description="Height in pixels.")


class WorkerFailure(_Message):
    """A failed worker's termination message."""

    reason: FailureReason
    message: str = Field(max_length=MESSAGE_LIMIT)
    # What the tools cost before the failure (a tool that refused the input ran too).
    cost: WorkerCost | None = Field(default=None, description="What the attempt cost.")

    @classmethod
    def of(
        cls, reason: FailureReason | str, message: str, cost: WorkerCost | None = None
    ) -> WorkerFailure:
        """A failure whose message is made to fit: whitespace folded, cut to MESSAGE_LIMIT."""
        message = " ".join(message.split())
        if len(message) > MESSAGE_LIMIT:
            message = message[: MESSAGE_LIMIT - 1] + "…"
        return cls(reason=FailureReason(reason), message=message, cost=cost)

    def to_json(self) -> str:
        """As _Message.to_json; `cost` only when known."""
        exclude = {"cost"} if self.cost is None else None
        return self.model_dump_json(by_alias=True, exclude=exclude)


def read_termination(text: str | None) -> WorkerResult | WorkerFailure | None:
    """The worker's termination message, or None when there is none or it is not one of ours
    (the container died before writing it, or something else wrote the file)."""
    try:
        data = json.loads(text or "null")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    model = WorkerFailure if "reason" in data else WorkerResult
    try:
        return model.model_validate(data)
    except ValidationError:
        return None
