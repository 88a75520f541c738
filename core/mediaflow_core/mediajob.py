"""The MediaJob resource: spec and status models, the single source of the CRD schema.

Validation lives in two places that must agree: pydantic validators (used by the API and the
operator) and CEL rules (`x-kubernetes-validations`, enforced by the API server at admission
for `kubectl apply`). Both are declared here, next to each other.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from mediaflow_core import constants as c
from mediaflow_core.options import (
    DUPLICATE_RENDITIONS,
    MAX_RENDITIONS,
    OPTIONS_MODELS,
    ImageConvertOptions,
    ImageRenditionsOptions,
    ImageResizeOptions,
    Operation,
    VideoConvertOptions,
    VideoResizeOptions,
    VideoRotateOptions,
    VideoThumbnailOptions,
    VideoTrimOptions,
    duplicate_rendition_names,
)
from mediaflow_core.options import Rendition as Rendition


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One CEL validation rule with the message a person sees when it fails."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: dict[str, str]) -> ConfigDict:
    """Model config carrying CEL rules into the generated schema."""
    config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    if rules:
        config["json_schema_extra"] = {"x-kubernetes-validations": list(rules)}
    return config


# CEL rules on the whole object (the root of a CRD schema may read metadata.name).
NAME_MESSAGE = (
    f"metadata.name must be at most {c.MAX_NAME_LENGTH} characters: it is the value of the "
    f"label {c.LABEL_MEDIAJOB} on the MediaJob's Job and pods"
)
OBJECT_CEL = [cel(f"self.metadata.name.size() <= {c.MAX_NAME_LENGTH}", NAME_MESSAGE)]


# CEL rules for the option blocks, mirroring the pydantic validators in options.py.
OPTIONS_CEL: dict[type[BaseModel], list[dict[str, str]]] = {
    ImageConvertOptions: [
        cel(
            "!has(self.lossless) || !self.lossless || self.format == 'webp'",
            "lossless is only supported for format webp",
        )
    ],
    ImageResizeOptions: [
        cel("has(self.width) || has(self.height)", "at least one of width and height is required"),
        cel(
            "!has(self.fit) || self.fit == 'inside' || (has(self.width) && has(self.height))",
            "fit cover, contain and fill need both width and height",
        ),
    ],
    VideoConvertOptions: [
        cel(
            "!has(self.codec) || self.container == 'mkv'"
            " || (self.container == 'mp4' && self.codec in ['h264', 'h265', 'av1'])"
            " || (self.container == 'webm' && self.codec in ['vp9', 'av1'])",
            "codec does not fit the container: mp4 takes h264, h265 or av1; webm takes vp9 or "
            "av1; mkv takes any",
        ),
        cel(
            "!has(self.crf) || self.crf <= 51"
            " || (has(self.codec) ? self.codec in ['vp9', 'av1'] : self.container == 'webm')",
            "crf for h264 and h265 must be between 0 and 51",
        ),
    ],
    VideoResizeOptions: [
        cel("has(self.width) || has(self.height)", "at least one of width and height is required"),
    ],
    VideoTrimOptions: [
        # Timestamps are zero-padded HH:MM:SS[.mmm]: padded to the same length they compare
        # as strings in time order.
        cel(
            "(size(self.end) == 8 ? self.end + '.000' : self.end)"
            " > (size(self.start) == 8 ? self.start + '.000' : self.start)",
            "end must be after start",
        ),
    ],
}

# Options block field of the spec for each operation, e.g. ImageConvert -> imageConvert.
OPTIONS_FIELD: dict[Operation, str] = {op: op.value[0].lower() + op.value[1:] for op in Operation}

OBJECT_KEY_PATTERN = r"^[^\x00-\x1f\x7f\\]+$"
BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi)?$"
# Most inputs of one MediaJob (spec.inputs): converted in one pod, their outcomes in status.
MAX_ITEMS = 100
# The longest `ttlSecondsAfterFinished` (30 days); the API's job retention is bounded by it.
MAX_TTL_SECONDS_AFTER_FINISHED = 30 * 24 * 3600
# Most outputs of one MediaJob (inputs x renditions): the status lists each with its URL
# (~700 bytes), and is written whole as items settle; 300 keep it near 200 KB.
MAX_OUTPUTS = 300
TOO_MANY_OUTPUTS = (
    f"inputs times renditions must be at most {MAX_OUTPUTS}: the status lists every output "
    "with its URL"
)


class ObjectInput(BaseModel):
    """An object already in object storage."""

    model_config = validations(
        cel("!self.key.startsWith('/')", "key must not start with '/'"),
        cel("!self.key.contains('..')", "key must not contain '..'"),
    )

    key: str = Field(
        min_length=1,
        max_length=1024,
        pattern=OBJECT_KEY_PATTERN,
        description="Object key. A MediaJob may read only keys under '<its namespace>/'.",
    )
    bucket: str | None = Field(
        default=None,
        pattern=BUCKET_PATTERN,
        max_length=63,
        description="Bucket. Default: the bucket the operator is configured with.",
    )


class MediaInput(BaseModel):
    """Where the input media comes from: exactly one of object and url."""

    model_config = validations(
        cel("has(self.object) != has(self.url)", "set exactly one of input.object and input.url")
    )

    object: ObjectInput | None = Field(
        default=None, description="Read the input from object storage."
    )
    url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://[^\s/?#@]+(/[^\s]*)?$",
        description=(
            "Download the input from this http or https URL; only hosts on public addresses, "
            "unless the operator allows private ones."
        ),
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.object is None) == (self.url is None):
            raise ValueError("set exactly one of input.object and input.url")
        return self


class ResourceOverrides(BaseModel):
    """CPU and memory for the conversion pod, within the operator's limits."""

    model_config = validations()

    cpu: str | None = Field(
        default=None,
        pattern=QUANTITY_PATTERN,
        max_length=16,
        description="CPU request and limit, e.g. '500m' or '2'. Default: the operator's value "
        "for the operation's class (image or video).",
    )
    memory: str | None = Field(
        default=None,
        pattern=QUANTITY_PATTERN,
        max_length=16,
        description="Memory request and limit, e.g. '512Mi'. Default: the operator's value for "
        "the operation's class.",
    )


RENDITIONS_ONLY_CONVERT = "renditions is only allowed with operation ImageConvert"
RENDITIONS_OR_OPTIONS = "set at most one of imageConvert and renditions"


def _needs(op: Operation, field: str) -> str:
    if op is Operation.IMAGE_CONVERT:
        return f"operation {op.value} needs spec.{field} or spec.renditions"
    return f"operation {op.value} needs spec.{field}"


PRESET_OR_OPTIONS = "set either spec.preset or an options block (or renditions), not both"


def _options_rules(*, preset: bool = False) -> list[dict[str, str]]:
    """CEL rules that the options block matches the operation. With `preset`, the MediaJob's:
    a named preset stands for the options block (and renditions)."""
    rules = []
    for op, field in OPTIONS_FIELD.items():
        required = any(f.is_required() for f in OPTIONS_MODELS[op].model_fields.values())
        rules.append(
            cel(
                f"!has(self.{field}) || self.operation == '{op.value}'",
                f"{field} is only allowed with operation {op.value}",
            )
        )
        if required:
            given = f"has(self.{field})"
            if op is Operation.IMAGE_CONVERT:
                given = f"({given} || has(self.renditions))"
            if preset:
                given = f"(has(self.preset) || {given})"
            rules.append(cel(f"self.operation != '{op.value}' || {given}", _needs(op, field)))
    rules += [
        cel(
            f"!has(self.renditions) || self.operation == '{Operation.IMAGE_CONVERT.value}'",
            RENDITIONS_ONLY_CONVERT,
        ),
        cel("!has(self.renditions) || !has(self.imageConvert)", RENDITIONS_OR_OPTIONS),
        cel(
            "!has(self.renditions) || "
            "self.renditions.all(r, self.renditions.exists_one(s, s.name == r.name))",
            DUPLICATE_RENDITIONS,
        ),
    ]
    if preset:
        blocks = " && ".join(f"!has(self.{f})" for f in [*OPTIONS_FIELD.values(), "renditions"])
        rules += [
            cel(f"!has(self.preset) || ({blocks})", PRESET_OR_OPTIONS),
            cel(
                "!has(self.inputs) || !has(self.renditions) || "
                f"self.inputs.size() * self.renditions.size() <= {MAX_OUTPUTS}",
                TOO_MANY_OUTPUTS,
            ),
        ]
    return rules


# Completion webhooks (issue 15): spec.notify and status.notification.
NOTIFY_URL_PATTERN = r"^https?://[^\s/?#@]+(/[^\s]*)?$"
MAX_NOTIFY_URL_LENGTH = 2048
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"  # noqa: S105 (a name)
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]{1,253}$"  # noqa: S105 (a name)


class SecretKeyRef(BaseModel):
    """A key of a Secret in the MediaJob's namespace."""

    model_config = validations()

    name: str = Field(max_length=253, pattern=SECRET_NAME_PATTERN, description="The Secret's name.")
    key: str = Field(
        max_length=253,
        pattern=SECRET_KEY_PATTERN,
        description="The key in the Secret's data that holds the signing secret.",
    )


class Notify(BaseModel):
    """Announce the MediaJob's end with a signed POST (Standard Webhooks, CloudEvents JSON)."""

    model_config = validations()

    url: str = Field(
        max_length=MAX_NOTIFY_URL_LENGTH,
        pattern=NOTIFY_URL_PATTERN,
        description="The http or https URL that receives the event once the MediaJob has "
        "Succeeded, Failed or been Cancelled. Only hosts on public addresses, unless the "
        "operator allows a network (MEDIAFLOW_WEBHOOK_ALLOWED_NETWORKS). No credentials in the "
        "URL.",
    )
    secret_ref: SecretKeyRef = Field(
        description="The Secret (in the MediaJob's namespace) and key holding the signing "
        "secret: 'whsec_<base64>' as Standard Webhooks defines it (several, separated by "
        "spaces, sign with each: a rotation's grace period)."
    )


class OperationOptions(BaseModel):
    """An operation and its options: one options block, or (ImageConvert) renditions. The one
    definition shared by MediaJobSpec, the presets' spec (preset.py) and status.resolved."""

    model_config = validations(*_options_rules())

    operation: Operation = Field(description="What to do with the input.")
    image_convert: ImageConvertOptions | None = Field(
        default=None, description="Options of ImageConvert."
    )
    renditions: list[Rendition] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_RENDITIONS,
        description=f"Instead of imageConvert (operation ImageConvert only): 1 to "
        f"{MAX_RENDITIONS} outputs of each input, decoded once and encoded once per rendition "
        "(e.g. WebP and AVIF at three widths, a responsive image set). status.renditions (or "
        "status.items[].renditions) lists their results; status.result is the first one's.",
    )
    image_resize: ImageResizeOptions | None = Field(
        default=None, description="Options of ImageResize."
    )
    video_convert: VideoConvertOptions | None = Field(
        default=None, description="Options of VideoConvert."
    )
    video_rotate: VideoRotateOptions | None = Field(
        default=None, description="Options of VideoRotate."
    )
    video_resize: VideoResizeOptions | None = Field(
        default=None, description="Options of VideoResize."
    )
    video_trim: VideoTrimOptions | None = Field(default=None, description="Options of VideoTrim.")
    video_thumbnail: VideoThumbnailOptions | None = Field(
        default=None, description="Options of VideoThumbnail."
    )

    def names_preset(self) -> bool:
        """True when a preset stands for the options (a MediaJobSpec with spec.preset)."""
        return False

    @model_validator(mode="after")
    def _options_match_operation(self) -> Self:
        if self.names_preset():
            if any(getattr(self, field_name(f)) is not None for f in OPTIONS_FIELD.values()) or (
                self.renditions is not None
            ):
                raise ValueError(PRESET_OR_OPTIONS)
            return self
        for op, field in OPTIONS_FIELD.items():
            attr = field_name(field)
            if getattr(self, attr) is not None and op is not self.operation:
                raise ValueError(f"{field} is only allowed with operation {op.value}")
        if self.renditions is not None:
            if self.operation is not Operation.IMAGE_CONVERT:
                raise ValueError(RENDITIONS_ONLY_CONVERT)
            if self.image_convert is not None:
                raise ValueError(RENDITIONS_OR_OPTIONS)
            twice = duplicate_rendition_names(self.renditions)
            if twice:
                raise ValueError(f"{DUPLICATE_RENDITIONS}; used more than once: {', '.join(twice)}")
        if self.options is None:
            raise ValueError(_needs(self.operation, OPTIONS_FIELD[self.operation]))
        return self

    @property
    def options(self) -> BaseModel | None:
        """The options of the operation, defaulted when every option has a default; for an
        ImageConvert with renditions, ImageRenditionsOptions (what its worker gets). None
        while a named preset is not resolved (MediaJobSpec.with_resolution)."""
        if self.names_preset():
            return None
        if self.renditions is not None:
            return ImageRenditionsOptions(renditions=self.renditions)
        given = getattr(self, field_name(OPTIONS_FIELD[self.operation]))
        if given is not None:
            return given
        model = OPTIONS_MODELS[self.operation]
        if any(f.is_required() for f in model.model_fields.values()):
            return None
        return model()

    def options_block(self) -> dict[str, Any]:
        """The options as they are written: {operation, <options field> or renditions}."""
        fields = set(OperationOptions.model_fields)
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, include=fields)


# The kinds of preset a MediaJob may name (preset.py has their resources).
class PresetKind(StrEnum):
    MEDIA_PRESET = "MediaPreset"
    CLUSTER_MEDIA_PRESET = "ClusterMediaPreset"


PRESET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class PresetRef(BaseModel):
    """A preset named by a MediaJob instead of its options."""

    model_config = validations()

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=PRESET_NAME_PATTERN,
        description="Name of the MediaPreset (in the MediaJob's own namespace) or of the "
        "ClusterMediaPreset.",
    )
    kind: PresetKind = Field(
        default=PresetKind.MEDIA_PRESET,
        description="MediaPreset (default: in the MediaJob's namespace) or ClusterMediaPreset.",
    )


class MediaJobSpec(OperationOptions):
    """What to convert and how. Immutable once created."""

    model_config = validations(
        cel("self == oldSelf", "spec is immutable; delete the MediaJob and create a new one"),
        cel("has(self.input) != has(self.inputs)", "set exactly one of input and inputs"),
        cel(
            "!has(self.inputs) || self.operation.startsWith('Image')",
            "inputs is for image operations; a video MediaJob has one input",
        ),
        *_options_rules(preset=True),
    )

    input: MediaInput | None = Field(default=None, description="The media to convert.")
    inputs: list[MediaInput] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ITEMS,
        description=f"Instead of input: up to {MAX_ITEMS} images converted with the same "
        "operation and options in one pod; status.items says how each ended.",
    )
    resources: ResourceOverrides | None = Field(
        default=None, description="CPU and memory for the conversion pod."
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        le=MAX_TTL_SECONDS_AFTER_FINISHED,
        description="Delete the MediaJob and its result this many seconds after it finished "
        "(at most 30 days). Default: keep it until deleted.",
    )
    # Presets (issue 15).
    preset: PresetRef | None = Field(
        default=None,
        description="Instead of an options block (and renditions): the preset whose options "
        "this MediaJob uses. operation is still required and must be the preset's. The "
        "operator reads the preset once, when it accepts the MediaJob, and records what it "
        "resolved in status.preset and status.resolved: later edits of the preset change no "
        "accepted MediaJob.",
    )
    # Completion webhooks (issue 15).
    notify: Notify | None = Field(
        default=None,
        description="Announce the end (Succeeded, Failed, Cancelled) with a signed webhook.",
    )

    def names_preset(self) -> bool:
        return self.preset is not None

    @model_validator(mode="after")
    def _one_input_or_many(self) -> Self:
        if (self.input is None) == (self.inputs is None):
            raise ValueError("set exactly one of input and inputs")
        if self.inputs is not None and self.operation.is_video:
            raise ValueError("inputs is for image operations; a video MediaJob has one input")
        if self.renditions is not None and len(self.items) * len(self.renditions) > MAX_OUTPUTS:
            raise ValueError(TOO_MANY_OUTPUTS)
        return self

    @property
    def items(self) -> list[MediaInput]:
        """Every input: the one of `input`, or those of `inputs`."""
        return [self.input] if self.input is not None else list(self.inputs or [])

    def with_resolution(self, resolved: OperationOptions | None) -> MediaJobSpec:
        """The spec as it runs: a named preset replaced by the options the operator resolved
        when it accepted the MediaJob (status.resolved). Unchanged without a preset."""
        if self.preset is None or resolved is None:
            return self
        update = {name: getattr(resolved, name) for name in OperationOptions.model_fields}
        return self.model_copy(update={**update, "preset": None})


def field_name(alias: str) -> str:
    """The python attribute for a camelCase field alias."""
    return "".join("_" + c.lower() if c.isupper() else c for c in alias)


class Phase(StrEnum):
    """Where a MediaJob is in its life, derived from its conditions for display."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class Condition(BaseModel):
    """A metav1.Condition."""

    model_config = validations()

    type: str = Field(
        max_length=316, description="Type of condition: Accepted, Succeeded or Notified."
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation the condition was set for."
    )
    last_transition_time: datetime = Field(description="When the condition last changed status.")
    reason: str = Field(
        max_length=1024, description="CamelCase reason for the condition's last transition."
    )
    message: str = Field(
        default="", max_length=32768, description="Human-readable details of the transition."
    )


class MediaJobResult(BaseModel):
    """The converted file."""

    model_config = validations()

    bucket: str = Field(description="Bucket holding the result.")
    key: str = Field(description="Object key of the result.")
    size: int = Field(ge=0, description="Size in bytes.")
    content_type: str = Field(description="MIME type of the result.")
    width: int | None = Field(default=None, description="Width in pixels.")
    height: int | None = Field(default=None, description="Height in pixels.")
    duration: float | None = Field(default=None, description="Duration in seconds (video).")
    url: str | None = Field(
        default=None, description="Presigned download URL (signed for the public endpoint)."
    )
    url_expires_at: datetime | None = Field(default=None, description="When url stops working.")


class RenditionResult(MediaJobResult):
    """One rendition's file (spec.renditions): a result, and the rendition's name."""

    name: str = Field(description="The rendition's name in spec.renditions.")


class MediaJobCost(BaseModel):
    """What a MediaJob's conversion cost, as its worker measured it (for charge-back)."""

    model_config = validations()

    cpu_seconds: float = Field(
        ge=0,
        description="CPU seconds (user + system) of the conversion tools (ffmpeg, cwebp, "
        "avifenc, the decoders that verify the output).",
    )
    peak_memory_bytes: int = Field(
        ge=0, description="Peak resident memory of the largest of those tool processes, bytes."
    )
    input_bytes: int = Field(ge=0, description="Bytes of input downloaded.")
    output_bytes: int = Field(ge=0, description="Bytes of output uploaded.")


def total_cost(costs: list[MediaJobCost | None]) -> MediaJobCost | None:
    """The sum of the items' costs (the peak memory: the largest), None when none is known."""
    known = [cost for cost in costs if cost is not None]
    if not known:
        return None
    return MediaJobCost(
        cpu_seconds=round(sum(k.cpu_seconds for k in known), 3),
        peak_memory_bytes=max(k.peak_memory_bytes for k in known),
        input_bytes=sum(k.input_bytes for k in known),
        output_bytes=sum(k.output_bytes for k in known),
    )


class ItemStatus(BaseModel):
    """How one input of a MediaJob with spec.inputs is doing."""

    model_config = validations()

    index: int = Field(ge=0, lt=MAX_ITEMS, description="Its place in spec.inputs.")
    phase: Phase = Field(
        description="Pending, Running, Succeeded, Failed or Cancelled (by "
        "mediaflow.io/cancel-item-<index>, or with the whole MediaJob)."
    )
    reason: str | None = Field(
        default=None, max_length=64, description="Why it failed (InvalidInput, ...)."
    )
    message: str | None = Field(default=None, max_length=1024, description="For people.")
    job_name: str | None = Field(default=None, description="The Job of the pod converting it.")
    session_slot: int | None = Field(
        default=None, ge=0, description="Its slot in that pod's mailbox."
    )
    attempts: int = Field(default=1, ge=1, description="Pods it was given to.")
    result: MediaJobResult | None = Field(
        default=None,
        description="The result, once done (with spec.renditions: the first rendition's).",
    )
    renditions: list[RenditionResult] | None = Field(
        default=None,
        max_length=MAX_RENDITIONS,
        description="With spec.renditions: every rendition's result, in the order of the list.",
    )
    cost: MediaJobCost | None = Field(
        default=None, description="What converting this input cost, once it ended."
    )


class PresetStatusRef(BaseModel):
    """The preset a MediaJob was accepted with."""

    model_config = validations()

    kind: PresetKind = Field(description="MediaPreset or ClusterMediaPreset.")
    name: str = Field(description="Its name.")
    namespace: str | None = Field(default=None, description="Its namespace (a MediaPreset).")
    resource_version: str = Field(description="Its metadata.resourceVersion when it was read.")


class NotificationStatus(BaseModel):
    """How the completion webhook (spec.notify) is doing."""

    model_config = validations()

    webhook_id: str = Field(
        max_length=128,
        description="The webhook-id (and CloudEvents id) of the event: the same on every "
        "attempt, so receivers can deduplicate.",
    )
    attempts: int = Field(default=0, ge=0, description="POSTs made so far.")
    last_response_code: int | None = Field(
        default=None, description="HTTP status of the last attempt (none: no response)."
    )
    last_attempt_time: datetime | None = Field(default=None, description="When it was made.")
    delivered_time: datetime | None = Field(
        default=None, description="When a receiver answered 2xx."
    )
    message: str | None = Field(
        default=None, max_length=1024, description="What happened last, for people."
    )


class MediaJobStatus(BaseModel):
    """Observed state, written by the operator only."""

    model_config = validations()

    phase: Phase | None = Field(
        default=None, description="Pending, Running, Succeeded, Failed or Cancelled."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Accepted and Succeeded, with observedGeneration."
    )
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation last acted on."
    )
    job_name: str | None = Field(default=None, description="Name of the Kubernetes Job.")
    session_slot: int | None = Field(
        default=None,
        ge=0,
        description="Set when a warm pod (the Job jobName, shared by its owner's MediaJobs) "
        "converts this MediaJob: the slot of its mailbox that holds it.",
    )
    start_time: datetime | None = Field(default=None, description="When the conversion started.")
    completion_time: datetime | None = Field(default=None, description="When it finished.")
    duration: str | None = Field(
        default=None, description="How long the conversion took, e.g. '12s' or '3m4s'."
    )
    progress: int | None = Field(default=None, ge=0, le=100, description="Percent done (0-100).")
    result: MediaJobResult | None = Field(
        default=None,
        description="The result, once Succeeded (with spec.renditions: the first rendition's).",
    )
    renditions: list[RenditionResult] | None = Field(
        default=None,
        max_length=MAX_RENDITIONS,
        description="With spec.renditions and input: every rendition's result once "
        "Succeeded, in the order of the list.",
    )
    items: list[ItemStatus] | None = Field(
        default=None,
        max_length=MAX_ITEMS,
        description="With spec.inputs: each input's outcome, in the order of spec.inputs.",
    )
    items_done: str | None = Field(
        default=None, description="With spec.inputs: items finished of all, e.g. '37/100'."
    )
    message: str | None = Field(default=None, description="What happened last, for people.")
    cost: MediaJobCost | None = Field(
        default=None,
        description="What the conversion cost, once it ended (with spec.inputs: the sum of "
        "the items').",
    )
    # Presets (issue 15): what the operator resolved when it accepted the MediaJob.
    preset: PresetStatusRef | None = Field(
        default=None,
        description="With spec.preset: the preset the operator read when it accepted the "
        "MediaJob, with its resourceVersion then.",
    )
    resolved: OperationOptions | None = Field(
        default=None,
        description="With spec.preset: the operation and options (or renditions) the preset "
        "had when the MediaJob was accepted; the MediaJob runs with these, whatever the preset "
        "says later.",
    )
    # Completion webhooks (issue 15).
    notification: NotificationStatus | None = Field(
        default=None, description="With spec.notify: the completion webhook's delivery."
    )


def spec_from_object(body: dict[str, Any]) -> MediaJobSpec:
    """Parse a MediaJob object's spec (raises pydantic.ValidationError)."""
    return MediaJobSpec.model_validate(body.get("spec") or {})
