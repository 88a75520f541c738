"""Running ffmpeg, ffprobe, cwebp and avifenc: argument lists, a clean environment, no shell."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .cost import MeteredPopen
from .errors import ToolHung, TransientError

STDERR_TAIL = 300


class ToolResult(NamedTuple):
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


class RunningTool:
    """A tool started with `start_tool`: `finish` waits for it, `kill` stops it early."""

    def __init__(self, args: list[str], work_dir: Path) -> None:
        self.args = list(args)
        self.name = Path(args[0]).name
        self.err_path = work_dir / f".{self.name}.{id(self):x}.stderr"
        with self.err_path.open("wb") as err:
            # Metered: its rusage is charged to the conversion that runs it (cost.py).
            self.proc = MeteredPopen(  # argument list from plans, never a shell
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                env=tool_env(work_dir),
                cwd=work_dir,
                start_new_session=True,
                text=True,
            )

    def kill(self) -> None:
        """Kill the tool's whole process group (if it still runs) and reap it."""
        if self.proc.poll() is None:  # not reaped yet, so its process group still exists
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.err_path.unlink(missing_ok=True)

    def finish(
        self, timeout: float | None = None, on_line: Callable[[str], None] | None = None
    ) -> ToolResult:
        """Wait for the tool; stdout is streamed to `on_line` (if given) or collected."""
        proc = self.proc
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
            raise ToolHung(f"{self.name} ran longer than {timeout:.0f} s on this input") from None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        result = ToolResult(proc.returncode, stdout or "", _tail(self.err_path))
        self.err_path.unlink(missing_ok=True)
        if proc.returncode < 0:
            # Killed by a signal: the OOM killer or a stop request; worth a retry.
            raise TransientError(f"{self.name} was killed by signal {-proc.returncode}")
        return result


def start_tool(args: list[str], work_dir: Path) -> RunningTool:
    """Start a tool without waiting for it (its stderr goes to a file in `work_dir`)."""
    return RunningTool(args, work_dir)


def run_tool(
    args: list[str],
    work_dir: Path,
    *,
    timeout: float | None = None,
    on_line: Callable[[str], None] | None = None,
) -> ToolResult:
    """Run a tool; stdout is streamed to `on_line` (if given) or collected; stderr to a file."""
    tool = RunningTool(args, work_dir)
    try:
        return tool.finish(timeout, on_line)
    finally:
        tool.kill()  # no-op after a normal finish; on an exception, the group dies
