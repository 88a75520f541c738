"""Failures the worker reports, each with its exit code and termination reason."""

EXIT_OK = 0
EXIT_INVALID_INPUT = 65  # sysexits EX_DATAERR: the podFailurePolicy fails the Job at once
EXIT_INPUT_NOT_FOUND = 66  # sysexits EX_NOINPUT
EXIT_TRANSIENT = 75  # sysexits EX_TEMPFAIL: retried by the Job's backoffLimit
EXIT_INTERNAL = 70  # sysexits EX_SOFTWARE: a bug; also retried


class WorkerError(Exception):
    """A failure with a message a person can act on."""

    exit_code = EXIT_TRANSIENT
    reason = "TransientError"


class InvalidInput(WorkerError):  # noqa: N818 - named after its termination reason
    """Bad, unsupported or hostile media, limits exceeded, or bad options: never retried."""

    exit_code = EXIT_INVALID_INPUT
    reason = "InvalidInput"


class InputNotFound(WorkerError):  # noqa: N818 - named after its termination reason
    """The input URL answered 4xx."""

    exit_code = EXIT_INPUT_NOT_FOUND
    reason = "InputNotFound"


class TransientError(WorkerError):
    """Network, storage or resource trouble that a retry may cure."""


class InternalError(WorkerError):
    """A bug in the worker: the output does not match what was planned. Retried."""

    exit_code = EXIT_INTERNAL
