"""Failures the worker reports, each with its exit code and termination reason (the contract
in mediaflow_core.constants)."""

from mediaflow_core.constants import (
    EXIT_INPUT_NOT_FOUND,
    EXIT_INTERNAL,
    EXIT_INVALID_INPUT,
    EXIT_TRANSIENT,
    REASON_INPUT_NOT_FOUND,
    REASON_INVALID_INPUT,
    REASON_TRANSIENT_ERROR,
)


class WorkerError(Exception):
    """A failure with a message a person can act on."""

    exit_code = EXIT_TRANSIENT
    reason = REASON_TRANSIENT_ERROR


class InvalidInput(WorkerError):  # noqa: N818 - named after its termination reason
    """Bad, unsupported or hostile media, limits exceeded, or bad options: never retried."""

    exit_code = EXIT_INVALID_INPUT
    reason = REASON_INVALID_INPUT


class InputNotFound(WorkerError):  # noqa: N818 - named after its termination reason
    """The input URL answered 4xx."""

    exit_code = EXIT_INPUT_NOT_FOUND
    reason = REASON_INPUT_NOT_FOUND


class ToolHung(InvalidInput):
    """A tool ran past its time limit on this input: final for the input, and the end of a
    warm pod's life (the next item gets a fresh pod)."""


class TransientError(WorkerError):
    """Network, storage or resource trouble that a retry may cure."""


class InternalError(WorkerError):
    """A bug in the worker: the output does not match what was planned. Retried."""

    exit_code = EXIT_INTERNAL
