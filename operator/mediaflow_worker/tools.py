"""Running ffmpeg, ffprobe, cwebp and avifenc: argument lists, a clean environment, no shell."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInput, TransientError

STDERR_TAIL = 300


@dataclass(frozen=True)
class ToolResult:
    """Exit status and output of one tool run."""

    returncode: int
    stdout: str
    stderr_tail: str


def tool_env(work_dir: Path) -> dict[str, str]:
    """The tools see no MEDIAFLOW_* variable (URLs carry signatures) and write only to work_dir."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "TMPDIR": str(work_dir),
        "HOME": str(work_dir),
        "LC_ALL": "C.UTF-8",
        "SVT_LOG": "1",  # SVT-AV1 prints its banner to stderr unless told errors only
    }


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - STDERR_TAIL))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def run_tool(
    args: list[str],
    work_dir: Path,
    *,
    timeout: float | None = None,
    on_line: Callable[[str], None] | None = None,
) -> ToolResult:
    """Run a tool; stdout is streamed to `on_line` (if given) or collected; stderr to a file."""
    err_path = work_dir / f".{Path(args[0]).name}.stderr"
    with err_path.open("wb") as err:
        proc = subprocess.Popen(  # noqa: S603 - argument list built by plans.py, never a shell
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env=tool_env(work_dir),
            cwd=work_dir,
            start_new_session=True,
            text=True,
        )
        try:
            if on_line is not None:
                assert proc.stdout is not None  # noqa: S101
                for line in proc.stdout:
                    on_line(line)
                stdout = ""
                proc.wait(timeout=timeout)
            else:
                stdout, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise InvalidInput(
                f"{Path(args[0]).name} ran longer than {timeout:.0f} s on this input"
            ) from None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    result = ToolResult(proc.returncode, stdout, _tail(err_path))
    err_path.unlink(missing_ok=True)
    if proc.returncode < 0:
        # Killed by a signal: the OOM killer or a stop request; worth a retry.
        raise TransientError(f"{Path(args[0]).name} was killed by signal {-proc.returncode}")
    return result
