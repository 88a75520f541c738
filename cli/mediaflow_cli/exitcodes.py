"""What the process's exit status says (docs/cli.md, Exit codes), decided from outcomes."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    JOB_FAILED = 1  # a job failed or was cancelled
    USAGE = 2  # bad command line (click's own code for usage errors)
    AUTH = 3  # not logged in, wrong credentials, session ended
    API = 4  # the API refused the request (problem details: 404, 409, 413, 415, 422, 429...)
    UNAVAILABLE = 5  # network error, timeout, or the API answered 5xx
    NOT_FINISHED = 6  # --timeout passed, or `get --no-wait` of a job still running
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


def exit_code_for_status(status: str) -> ExitCode:
    """The exit code of one job's last known status."""
    if status == "completed":
        return ExitCode.OK
    if status in {"failed", "cancelled"}:
        return ExitCode.JOB_FAILED
    return ExitCode.NOT_FINISHED


def exit_code_for_jobs(statuses: Iterable[str], *, waited: bool) -> ExitCode:
    """The exit code of a command that made or watched jobs.

    Without waiting, queued jobs are success. With waiting, any failed or cancelled job makes
    the command fail (1), else any job still unfinished (the timeout) gives 6.
    """
    if not waited:
        return ExitCode.OK
    codes = {exit_code_for_status(s) for s in statuses}
    for code in (ExitCode.JOB_FAILED, ExitCode.NOT_FINISHED):
        if code in codes:
            return code
    return ExitCode.OK


def exit_code_for_http(status: int) -> ExitCode:
    """The exit code of an error answer of the API."""
    if status == 401:
        return ExitCode.AUTH
    if status >= 500:
        return ExitCode.UNAVAILABLE
    return ExitCode.API
