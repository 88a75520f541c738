"""API errors as people read them: the problem details' text (RFC 9457, docs/api.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mediaflow_cli.exitcodes import ExitCode, exit_code_for_http


class CliError(Exception):
    """A failure the command reports and exits with: `message` on stderr, `exit_code`."""

    def __init__(
        self, message: str, exit_code: ExitCode, problem: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.problem = dict(problem) if problem else None


def describe_problem(status: int, body: Any, reason: str = "") -> str:
    """One message for an error answer: the problem's title and detail, then each field
    error on its own line (`  field: message`) unless the detail already says it. A body
    that is not problem details (a proxy's page) gives the status and its reason."""
    if not isinstance(body, Mapping) or not (body.get("detail") or body.get("title")):
        return f"HTTP {status} {reason}".rstrip()
    title, detail = body.get("title"), body.get("detail")
    head = f"{title}: {detail}" if title and detail and title != detail else (detail or title)
    lines = [f"{head} (HTTP {status})"]
    for error in body.get("errors") or []:
        if not isinstance(error, Mapping):
            continue
        field = error.get("field")
        message = error.get("message", "")
        line = f"{field}: {message}" if field else message
        if line not in head:  # the API's detail often lists the fields already
            lines.append(f"  {line}")
    return "\n".join(lines)


def api_error(status: int, body: Any, reason: str = "") -> CliError:
    """The CliError of an error answer."""
    problem = body if isinstance(body, Mapping) else None
    return CliError(describe_problem(status, body, reason), exit_code_for_http(status), problem)
