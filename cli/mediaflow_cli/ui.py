"""What the commands show: progress bars and messages on stderr, results on stdout (a
table or lines; one JSON document with `--json`)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

PIPE_WIDTH = 160
STATUS_STYLES = {
    "pending": "yellow",
    "processing": "cyan",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
}


class Ui:
    def __init__(self, *, json_output: bool = False) -> None:
        self.json_output = json_output
        self.err = Console(stderr=True)
        self.out = Console()
        if not self.out.is_terminal and "COLUMNS" not in os.environ:
            # A pipe or a file has no width: Rich's 80 columns would squash the jobs table.
            self.out = Console(width=PIPE_WIDTH)
        # Bars only where someone watches them; logs and scripts get plain lines.
        self.live = self.err.is_terminal and not json_output

    def info(self, message: str) -> None:
        if not self.json_output:
            self.err.print(message, highlight=False, markup=False, soft_wrap=True)

    def error(self, message: str) -> None:
        self.err.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)

    def result(self, text: str) -> None:
        """A line of the command's result (stdout), unless --json."""
        if not self.json_output:
            self.out.print(text, highlight=False, markup=False, soft_wrap=True)

    def emit_json(self, document: Any) -> None:
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        sys.stdout.flush()

    @contextmanager
    def transfer_bars(self) -> Iterator[Progress]:
        """Bars with bytes, rate and time left (uploads and downloads)."""
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.err,
            disable=not self.live,
            transient=False,
        )
        with progress:
            yield progress

    @contextmanager
    def job_bars(self) -> Iterator[Progress]:
        """Bars with each job's status and percent."""
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.err,
            disable=not self.live,
        )
        with progress:
            yield progress


def status_text(status: str) -> str:
    style = STATUS_STYLES.get(status, "white")
    return f"[{style}]{status}[/]"


def jobs_table(page: Mapping[str, Any]) -> Table:
    """The `mediaflow jobs` table of one page of `GET /jobs`."""
    total, size, number = page["total"], page["page_size"], page["page"]
    pages = max(1, -(-total // size)) if size else 1
    table = Table(
        title=None,
        caption=f"page {number} of {pages}, {total} job{'s' if total != 1 else ''}",
        expand=False,
    )
    table.add_column("ID", no_wrap=True, overflow="fold")
    table.add_column("Type")
    table.add_column("Status")
    table.add_column("Progress", justify="right")
    table.add_column("Created")
    table.add_column("Error", overflow="fold", max_width=60)
    for job in page["items"]:
        table.add_row(
            job["id"],
            job["job_type"],
            status_text(job["status"]),
            f"{job.get('progress', 0)}%",
            str(job.get("created_at", ""))[:19].replace("T", " "),
            escape(job.get("error") or ""),
        )
    return table


def summary_lines(outcomes: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per job of an upload command: `file -> saved (status)` or its error."""
    lines = []
    for o in outcomes:
        head = f"{o['file']}: job {o['job_id']} {o['status']}"
        if o.get("saved"):
            head += f" -> {', '.join(o['saved'])}"
        if o.get("error"):
            head += f": {o['error']}"
        lines.append(head)
    return lines
