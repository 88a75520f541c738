"""The `mediaflow` commands (Typer): thin I/O around the pure parts (forms, naming,
exitcodes, problems) and the API client. docs/cli.md describes every command."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from mediaflow_cli.client import ApiClient
from mediaflow_cli.credentials import CredentialStore, config_dir
from mediaflow_cli.exitcodes import FINAL_STATUSES, ExitCode, exit_code_for_jobs
from mediaflow_cli.forms import Operation, form_fields, plan_uploads, queued_jobs
from mediaflow_cli.multipart import FilePart, MultipartBody
from mediaflow_cli.naming import (
    fallback_filename,
    output_path,
    safe_filename,
    url_filename,
)
from mediaflow_cli.problems import CliError
from mediaflow_cli.ui import Ui, jobs_table, status_text, summary_lines

POLL_SECONDS = 1.0

app = typer.Typer(
    name="mediaflow",
    help="Convert images and videos with MediaFlow's HTTP API: upload with progress, wait, "
    "download the result.",
    no_args_is_help=True,
    # Locals of a crash would include tokens and passwords.
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
image_app = typer.Typer(help="Image conversions (many files go through the batch endpoints).")
video_app = typer.Typer(help="Video operations (one file per command).")
app.add_typer(image_app, name="image", no_args_is_help=True)
app.add_typer(video_app, name="video", no_args_is_help=True)


def normalise_api_url(url: str) -> str:
    """The API's base address as stored and compared: no trailing slash or `/api/v1`."""
    url = url.strip().rstrip("/")
    return url.removesuffix("/api/v1").rstrip("/")


def resolve_api_url(given: str | None, current: str | None) -> str | None:
    """`--api-url` / `MEDIAFLOW_API_URL` if given, else the address of the last login."""
    if given and given.strip():
        return normalise_api_url(given)
    return current


class State:
    def __init__(self, api_url: str | None) -> None:
        self.given_url = api_url
        self.store = CredentialStore(config_dir(os.environ, Path.home()))

    def client(self, ui: Ui) -> ApiClient:
        url = resolve_api_url(self.given_url, self.store.current_url())
        if not url:
            raise CliError(
                "No API address: pass --api-url or set MEDIAFLOW_API_URL "
                "(e.g. http://127.0.0.1:8000).",
                ExitCode.USAGE,
            )
        return ApiClient(url, self.store, on_wait=ui.info)


@app.callback()
def root(
    ctx: typer.Context,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            envvar="MEDIAFLOW_API_URL",
            help="The API's address, e.g. http://127.0.0.1:8000 (default: the last login's).",
            show_envvar=True,
        ),
    ] = None,
) -> None:
    ctx.obj = State(api_url)


@contextmanager
def reporting(ui: Ui) -> Iterator[None]:
    """Turn a CliError (or Ctrl-C) into its message and exit code."""
    try:
        yield
    except CliError as error:
        ui.error(error.message)
        if ui.json_output:
            ui.emit_json(
                {
                    "error": {
                        "message": error.message,
                        "exit_code": int(error.exit_code),
                        "problem": error.problem,
                    }
                }
            )
        raise typer.Exit(int(error.exit_code)) from None
    except KeyboardInterrupt:
        ui.error("interrupted (jobs already queued keep running; see `mediaflow jobs`)")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


# --- common options -----------------------------------------------------------------

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (no progress bars).")
]
WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait/--no-wait",
        help="Wait for the jobs and download their results, or print the job ids and return.",
    ),
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Folder for the results (made if missing; default: the current folder).",
        file_okay=False,
    ),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help="Stop waiting after this many seconds (exit 6).",
        min=0,
        show_default=False,
    ),
]
Files = Annotated[
    list[Path],
    typer.Argument(
        metavar="FILE",
        help="Files to upload.",
        exists=True,
        dir_okay=False,
        readable=True,
        show_default=False,
    ),
]
OneFile = Annotated[
    Path,
    typer.Argument(
        metavar="FILE", help="The video to upload.", exists=True, dir_okay=False, readable=True
    ),
]
Quality = Annotated[
    int | None, typer.Option(help="1 (smallest) to 100 (best); the API's default if left out.")
]


# --- auth ---------------------------------------------------------------------------


@app.command()
def login(
    ctx: typer.Context,
    email: Annotated[
        str | None, typer.Option("--email", "-e", help="Your account's email.")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            help="Your password (better: let it be prompted, or use --password-stdin).",
            envvar="MEDIAFLOW_PASSWORD",
            show_envvar=True,
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Log in; the tokens are kept in your config folder (0600) and refreshed as they expire."""
    ui = Ui()
    with reporting(ui):
        if email is None:
            email = typer.prompt("Email")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        elif password is None:
            password = typer.prompt("Password", hide_input=True)
        client = ctx.obj.client(ui)
        try:
            client.login(email.strip(), password)
        finally:
            client.close()
        ui.info(f"Logged in to {client.api_url} as {email.strip()}.")
        ui.info(f"Credentials: {client.store.path}")


@app.command()
def logout(ctx: typer.Context) -> None:
    """End this login on the API and forget its tokens."""
    ui = Ui()
    with reporting(ui):
        client = ctx.obj.client(ui)
        try:
            session = client.logout()
        finally:
            client.close()
        if session is None:
            ui.info(f"Not logged in to {client.api_url}.")
        else:
            ui.info(f"Logged out {session.email} from {client.api_url}.")


# --- jobs ---------------------------------------------------------------------------


@app.command("jobs")
def list_jobs(
    ctx: typer.Context,
    page: Annotated[int, typer.Option(min=1, help="Page number.")] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=100, help="Jobs per page.")] = 20,
    status: Annotated[
        str | None,
        typer.Option(help="Only this status: pending, processing, completed, failed, cancelled."),
    ] = None,
    job_type: Annotated[
        str | None,
        typer.Option("--type", help="Only this job type, e.g. image_convert_webp, video_trim."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Your jobs, newest first (a table; --json for the API's page)."""
    ui = Ui(json_output=json_output)
    with reporting(ui), closing(ctx.obj.client(ui)) as client:
        data = client.jobs(
            {"page": page, "page_size": page_size, "status": status, "job_type": job_type}
        )
        if json_output:
            ui.emit_json(data)
        else:
            ui.out.print(jobs_table(data))


@app.command()
def watch(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="The job id.")],
    timeout: TimeoutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Follow a job until it ends; the exit code says how it ended."""
    ui = Ui(json_output=json_output)
    with reporting(ui), closing(ctx.obj.client(ui)) as client:
        jobs = wait_for_jobs(client, ui, {job_id: job_id}, timeout)
        job = jobs[job_id]
        if json_output:
            ui.emit_json(job)
        else:
            ui.result(job_line(job))
        code = exit_code_for_jobs([job["status"]], waited=True)
    raise typer.Exit(int(code))


@app.command()
def get(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="The job id.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File to write, or a folder to save it in under the API's name "
            "(default: the current folder, never overwriting).",
        ),
    ] = None,
    wait: WaitOption = True,
    timeout: TimeoutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Download a job's result (waiting for it to finish, unless --no-wait)."""
    ui = Ui(json_output=json_output)
    with reporting(ui), closing(ctx.obj.client(ui)) as client:
        job = client.job(job_id)
        if wait and job["status"] not in FINAL_STATUSES:
            job = wait_for_jobs(client, ui, {job_id: job_id}, timeout)[job_id]
        saved: list[str] = []
        if job["status"] == "completed":
            saved = [str(p) for p in download_results(client, ui, job, output)]
        if json_output:
            ui.emit_json({**job, "saved": saved})
        else:
            ui.result(job_line(job, saved))
        code = exit_code_for_jobs([job["status"]], waited=True)
        if code is ExitCode.NOT_FINISHED and not json_output:
            ui.error(f"job {job_id} is still {job['status']}: nothing downloaded")
    raise typer.Exit(int(code))


@app.command()
def cancel(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="The job id.")],
    json_output: JsonOption = False,
) -> None:
    """Cancel a job: the API stops it if it runs and deletes it with its files
    (`DELETE /jobs/{id}`, whatever its status)."""
    ui = Ui(json_output=json_output)
    with reporting(ui), closing(ctx.obj.client(ui)) as client:
        client.delete_job(job_id)
        if json_output:
            ui.emit_json({"id": job_id, "deleted": True})
        else:
            ui.result(f"job {job_id} cancelled and deleted")


# --- uploads ------------------------------------------------------------------------


@image_app.command("webp")
def image_webp(
    ctx: typer.Context,
    files: Files,
    quality: Quality = None,
    lossless: Annotated[
        bool | None, typer.Option("--lossless/--lossy", help="Encode losslessly.")
    ] = None,
    wait: WaitOption = True,
    output: OutputOption = None,
    timeout: TimeoutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Convert images to WebP."""
    upload_command(
        ctx, Operation.IMAGE_WEBP, files, {"quality": quality, "lossless": lossless},
        wait, output, timeout, json_output,
    )  # fmt: skip


@image_app.command("avif")
def image_avif(
    ctx: typer.Context,
    files: Files,
    quality: Quality = None,
    wait: WaitOption = True,
    output: OutputOption = None,
    timeout: TimeoutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Convert images to AVIF."""
    upload_command(
        ctx, Operation.IMAGE_AVIF, files, {"quality": quality}, wait, output, timeout, json_output
    )


@image_app.command("format")
def image_format(
    ctx: typer.Context,
    files: Files,
    to: Annotated[
        str,
        typer.Option(
            "--to", help="png, jpg/jpeg, gif, bmp, tiff/tif, webp or avif.", show_default=False
        ),
    ],
    quality: Quality = None,
    wait: WaitOption = True,
    output: OutputOption = None,
    timeout: TimeoutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Convert images to another format."""
    upload_command(
        ctx, Operation.IMAGE_FORMAT, files, {"to": to, "quality": quality},
        wait, output, timeout, json_output,
    )  # fmt: skip


@image_app.command("resize")
def image_resize(
    ctx: typer.Context,
    files: Files,
    width: Annotated[int | None, typer.Option(help="Width in pixels.")] = None,
    height: Annotated[int | None, typer.Option(help="Height in pixels.")] = None,
    fit: Annotated[
        str | None, typer.Option(help="cover (the API's default), contain, fill or inside.")
    ] = None,
    wait: WaitOption = True,
    output: OutputOption = None,
    timeout: TimeoutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Resize images (width, height or both; never enlarged). One request per file."""
    upload_command(
        ctx, Operation.IMAGE_RESIZE, files, {"width": width, "height": height, "fit": fit},
        wait, output, timeout, json_output,
    )  # fmt: skip


@video_app.command("convert")
def video_convert(
    ctx: typer.Context,
    file: OneFile,
    to: Annotated[
        str | None, typer.Option("--to", help="Container: mp4 (the API's default), webm, mkv.")
    ] = None,
    codec: Annotated[
        str | None, typer.Option(help="h264, h265/hevc, vp9 or av1 (default: the container's).")
    ] = None,
    crf: Annotated[int | None, typer.Option(help="Quality (lower is better).")] = None,
    preset: Annotated[str | None, typer.Option(help="Encoder preset (medium).")] = None,
    wait: WaitOption = True,
    output: OutputOption = None,
    timeout: TimeoutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Convert a video to another container or codec."""
    upload_command(
        ctx, Operation.VIDEO_CONVERT, [file],
        {"to": to, "codec": codec, "crf": crf, "preset": preset},
        wait, output, timeout, json_output,
    )  # fmt: skip


@video_app.command("rotate")
def video_rotate(
    ctx: typer.Context,
    file: OneFile,
    degrees: Annotated[int | None, typer.Option(help="90 (the API's default), 180 or 270.")] = None,
    no_transcode: Annotated[
        bool | None,
        typer.Option("--no-transcode/--transcode", help="Only set the rotation metadata."),
    ] = None,
    wait: WaitOption = True,
    output: OutputOption = None,
    timeout: TimeoutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Rotate a video."""
    upload_command(
        ctx, Operation.VIDEO_ROTATE, [file], {"degrees": degrees, "no_transcode": no_transcode},
        wait, output, timeout, json_output,
    )  # fmt: skip


@video_app.command("resize")
def video_resize(
    ctx: typer.Context,
    file: OneFile,
    width: Annotated[int | None, typer.Option(help="Width in pixels.")] = None,
    height: Annotated[int | None, typer.Option(help="Height in pixels.")] = None,
    keep_aspect: Annotated[
        bool | None,
        typer.Option("--keep-aspect/--no-keep-aspect", help="Keep the aspect ratio (default)."),
    ] = None,
    wait: WaitOption = True,
    output: OutputOption = None,
    timeout: TimeoutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Resize a video."""
    upload_command(
        ctx, Operation.VIDEO_RESIZE, [file],
        {"width": width, "height": height, "keep_aspect": keep_aspect},
        wait, output, timeout, json_output,
    )  # fmt: skip


@video_app.command("trim")
def video_trim(
    ctx: typer.Context,
    file: OneFile,
    start: Annotated[str, typer.Option(help="Start, HH:MM:SS[.mmm].", show_default=False)],
    end: Annotated[str, typer.Option(help="End, HH:MM:SS[.mmm].", show_default=False)],
    wait: WaitOption = True,
    output: OutputOption = None,
    timeout: TimeoutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Cut a video to [start, end]."""
    upload_command(
        ctx, Operation.VIDEO_TRIM, [file], {"start": start, "end": end},
        wait, output, timeout, json_output,
    )  # fmt: skip


@video_app.command("thumbnail")
def video_thumbnail(
    ctx: typer.Context,
    file: OneFile,
    at: Annotated[
        str | None, typer.Option("--at", help="Time of the frame, HH:MM:SS[.mmm] (00:00:01).")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="webp (the API's default), jpeg or png.")
    ] = None,
    wait: WaitOption = True,
    output: OutputOption = None,
    timeout: TimeoutOption = None,
    json_output: JsonOption = False,
) -> None:
    """Take one frame of a video as an image."""
    upload_command(
        ctx, Operation.VIDEO_THUMBNAIL, [file], {"at": at, "to": to},
        wait, output, timeout, json_output,
    )  # fmt: skip


# --- the steps of an upload command --------------------------------------------------


@contextmanager
def closing(client: ApiClient) -> Iterator[ApiClient]:
    try:
        yield client
    finally:
        client.close()


def upload_command(
    ctx: typer.Context,
    operation: Operation,
    files: Sequence[Path],
    options: Mapping[str, Any],
    wait: bool,
    output: Path | None,
    timeout: float | None,
    json_output: bool,
) -> None:
    """Upload (bars: bytes, rate, time left), then follow the jobs, then download."""
    ui = Ui(json_output=json_output)
    with reporting(ui), closing(ctx.obj.client(ui)) as client:
        fields = form_fields(operation, options)
        queued = upload_files(client, ui, operation, files, fields)
        outcomes: list[dict[str, Any]] = [
            {"file": str(q["file"]), "job_id": q["job_id"], "status": q["status"]} for q in queued
        ]
        if wait:
            if output is not None:
                output.mkdir(parents=True, exist_ok=True)
            jobs = wait_for_jobs(client, ui, {q["job_id"]: q["file"].name for q in queued}, timeout)
            for outcome in outcomes:
                job = jobs[outcome["job_id"]]
                outcome.update(status=job["status"], error=job.get("error"), saved=[])
                if job["status"] == "completed":
                    outcome["result_url"] = job.get("result_url")
                    outcome["saved"] = [str(p) for p in download_results(client, ui, job, output)]
        if json_output:
            ui.emit_json({"jobs": outcomes})
        else:
            for line in summary_lines(outcomes):
                ui.result(line)
        code = exit_code_for_jobs([o["status"] for o in outcomes], waited=wait)
    raise typer.Exit(int(code))


def upload_files(
    client: ApiClient,
    ui: Ui,
    operation: Operation,
    files: Sequence[Path],
    fields: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Send every request of the plan; the jobs made, in the order of the files."""
    queued: list[dict[str, Any]] = []
    with ui.transfer_bars() as bars:
        tasks = {path: bars.add_task(f"upload {path.name}", total=path.stat().st_size)
                 for path in files}  # fmt: skip
        for request in plan_uploads(operation, files):
            body = MultipartBody(fields, request.file_field, request.files)

            def stream(body: MultipartBody = body) -> Iterator[bytes]:
                for path in body_files(body):
                    bars.reset(tasks[path], total=path.stat().st_size)
                return body.stream(lambda part, n: bars.advance(tasks[part.path], n))

            try:
                data = client.upload(request.path, body.headers, stream)
            except CliError:
                if queued:
                    ui.info("queued before the error: " + ", ".join(q["job_id"] for q in queued))
                raise
            made = queued_jobs(request, data)
            queued.extend(made)
            for job in made:
                ui.info(f"uploaded {job['file']}: job {job['job_id']} {job['status']}")
    return queued


def body_files(body: MultipartBody) -> list[Path]:
    return [p.path for p in body.pieces if isinstance(p, FilePart)]


def wait_for_jobs(
    client: ApiClient,
    ui: Ui,
    labels: Mapping[str, str],
    timeout: float | None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, dict[str, Any]]:
    """Poll each job until every one has ended or `timeout` passed; the last job objects."""
    deadline = None if timeout is None else time.monotonic() + timeout
    jobs: dict[str, dict[str, Any]] = {}
    with ui.job_bars() as bars:
        tasks = {
            job_id: bars.add_task(f"job {label}", total=100, status="pending")
            for job_id, label in labels.items()
        }
        while True:
            for job_id in labels:
                if job_id in jobs and jobs[job_id]["status"] in FINAL_STATUSES:
                    continue
                job = client.job(job_id)
                previous = jobs.get(job_id, {}).get("status")
                jobs[job_id] = job
                bars.update(
                    tasks[job_id],
                    completed=job.get("progress") or 0,
                    status=status_text(job["status"]),
                )
                if job["status"] != previous and not ui.live:
                    ui.info(job_line(job))
            if all(j["status"] in FINAL_STATUSES for j in jobs.values()):
                return jobs
            if deadline is not None and time.monotonic() >= deadline:
                ui.info(f"stopped waiting after {timeout:g} s")
                return jobs
            sleep(POLL_SECONDS)


def job_line(job: Mapping[str, Any], saved: Sequence[str] = ()) -> str:
    line = f"job {job['id']} {job['status']}"
    if job["status"] == "processing":
        line += f" {job.get('progress', 0)}%"
    if job.get("error"):
        line += f": {job['error']}"
    if saved:
        line += f" -> {', '.join(saved)}"
    return line


def result_links(job: Mapping[str, Any]) -> list[str]:
    """Every file a completed job offers: its renditions', else its result's URL."""
    if job.get("renditions"):
        return [r["url"] for r in job["renditions"]]
    return [job["result_url"]] if job.get("result_url") else []


def download_results(
    client: ApiClient, ui: Ui, job: Mapping[str, Any], target: Path | None
) -> list[Path]:
    """Save a completed job's result(s) under the API's file names; a job with several
    files (renditions) takes `target` as a folder."""
    links = result_links(job)
    if len(links) > 1 and target is not None:
        target.mkdir(parents=True, exist_ok=True)
    saved = []
    with ui.transfer_bars() as bars:
        for url in links:
            name = safe_filename(url_filename(url), fallback_filename(job["id"], None))
            dest = output_path(target, name, is_dir=Path.is_dir, exists=Path.exists)
            task = bars.add_task(f"download {dest.name}", total=None)
            client.download(
                url,
                dest,
                on_start=lambda total, task=task: bars.update(task, total=total),
                on_bytes=lambda n, task=task: bars.advance(task, n),
            )
            saved.append(dest)
    return saved


def run() -> None:
    app(prog_name="mediaflow")
