"""The `mediaflow` command against the release `make up` installed, run as users run it (the
package's console script, a subprocess, no terminal): log in, convert a photo, photos in a
batch and a clip end to end, failures and their exit codes, tokens refreshed, logout."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.media import ffprobe, make_clip, make_photo

MEDIAFLOW = shutil.which("mediaflow", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli-media")
    clip = make_clip(folder / "clip.mp4")
    # The first half of an MP4 whose index (moov) is at its end: libmagic sees an MP4,
    # so the API takes it, and ffmpeg cannot decode it, so the job fails.
    broken = folder / "broken.mp4"
    broken.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    return {
        "photo": make_photo(folder / "photo.jpg"),
        "other": make_photo(folder / "other.jpg", size="160x120"),
        "clip": clip,
        "broken": broken,
    }


@dataclass
class Cli:
    """The command for one user: its own config folder, the release's API address."""

    env: dict[str, str]
    cwd: Path
    email: str
    password: str

    @property
    def credentials(self) -> Path:
        return Path(self.env["XDG_CONFIG_HOME"]) / "mediaflow" / "credentials.json"

    def __call__(
        self,
        *args: str,
        stdin: str | None = None,
        timeout: float = 300,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        assert MEDIAFLOW, "the console script `mediaflow` is installed with the project"
        return subprocess.run(
            [MEDIAFLOW, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            cwd=self.cwd,
            timeout=timeout,
            check=False,
        )

    def ok(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        run = self(*args, stdin=stdin, env=env)
        assert run.returncode == 0, f"{args}: exit {run.returncode}\n{run.stdout}\n{run.stderr}"
        return run

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def login(self) -> None:
        self.ok("login", "--email", self.email, "--password-stdin", stdin=self.password + "\n")


def register(api_url: str) -> tuple[str, str]:
    """A fresh user (sign-ups share the per-address limit with every test on this machine:
    wait as the API says)."""
    email = f"cli-{uuid.uuid4().hex[:10]}@example.com"
    password = uuid.uuid4().hex
    for _ in range(10):
        answer = httpx.post(
            f"{api_url}/api/v1/auth/register",
            json={"email": email, "password": password},
            timeout=60,
        )
        if answer.status_code != 429:
            break
        time.sleep(float(answer.headers.get("Retry-After", "5")))
    assert answer.status_code == 201, answer.text
    return email, password


@pytest.fixture
def cli(release: str, api_url: str, tmp_path: Path) -> Cli:
    email, password = register(api_url)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "MEDIAFLOW_API_URL": api_url,
        "LANG": "C.UTF-8",
    }
    return Cli(env=env, cwd=work, email=email, password=password)


def video_stream(path: Path) -> dict[str, Any]:
    return ffprobe(path)["streams"][0]


def test_login_then_a_photo_and_a_clip_end_to_end(cli: Cli, media: dict[str, Path]) -> None:
    cli.login()
    folder = cli.credentials.parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(cli.credentials.stat().st_mode) == 0o600
    stored = json.loads(cli.credentials.read_text())
    assert stored["current"] == cli.env["MEDIAFLOW_API_URL"]
    assert stored["sessions"][stored["current"]]["email"] == cli.email

    # As in a terminal (Rich's TTY_COMPATIBLE): the bars of the upload, the job, the download.
    terminal = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "120"}
    photo = cli.ok("image", "webp", str(media["photo"]), "--quality", "70", "-o", "out",
                   env=terminal)  # fmt: skip
    saved = cli.cwd / "out" / "photo.webp"
    assert "-> out/photo.webp" in photo.stdout, photo.stdout
    size = (
        f"{media['photo'].stat().st_size / 1000:.1f}/{media['photo'].stat().st_size / 1000:.1f} kB"
    )
    bars = photo.stderr
    assert re.search(rf"upload photo\.jpg .*{re.escape(size)}", bars), bars
    assert re.search(r"job photo\.jpg .*100%.*completed", bars), bars
    assert re.search(r"download photo\.webp .*kB", bars), bars
    stream = video_stream(saved)
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("webp", 320, 240)

    result = cli.json(
        "video", "convert", str(media["clip"]), "--to", "webm", "--preset", "ultrafast", "-o",
        "out",
    )  # fmt: skip
    [job] = result["jobs"]
    assert job["status"] == "completed", job
    assert job["file"] == str(media["clip"])
    [path] = job["saved"]
    assert Path(path).name == "clip.webm"
    probe = ffprobe(cli.cwd / path)
    assert "webm" in probe["format"]["format_name"]
    assert probe["streams"][0]["codec_name"] == "vp9"
    assert float(probe["format"]["duration"]) == pytest.approx(2.0, abs=0.3)

    table = cli.ok("jobs", "--type", "video_convert").stdout
    assert job["job_id"] in table
    assert "completed" in table
    listed = cli.json("jobs", "--status", "completed", "--page-size", "5")
    assert listed["total"] == 2
    assert {j["id"] for j in listed["items"]} >= {job["job_id"]}


def test_many_photos_go_through_the_batch_endpoint(
    cli: Cli, media: dict[str, Path], api_url: str
) -> None:
    cli.login()
    out = cli.cwd / "out"
    out.mkdir()
    (out / "photo.png").write_bytes(b"mine, not to be overwritten")
    result = cli.json(
        "image", "format", str(media["photo"]), str(media["other"]), "--to", "png", "-o", "out"
    )
    jobs = result["jobs"]
    assert [j["status"] for j in jobs] == ["completed", "completed"]
    assert [Path(j["saved"][0]).name for j in jobs] == ["photo-1.png", "other.png"]
    assert (out / "photo.png").read_bytes() == b"mine, not to be overwritten"
    sizes = [(video_stream(cli.cwd / j["saved"][0])["width"]) for j in jobs]
    assert sizes == [320, 160]
    assert all((cli.cwd / j["saved"][0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for j in jobs)
    # One batch request made both; the API's list counts files, not requests.
    assert cli.json("jobs", "--type", "image_convert_format")["total"] == 2


def test_a_failing_job_and_a_refused_request_say_why_with_their_exit_codes(
    cli: Cli, media: dict[str, Path]
) -> None:
    cli.login()
    failed = cli("video", "thumbnail", str(media["broken"]), "-o", "out")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "failed:" in failed.stdout
    assert not (cli.cwd / "out").exists() or not list((cli.cwd / "out").iterdir())

    as_json = cli("video", "thumbnail", str(media["broken"]), "--json")
    assert as_json.returncode == 1
    [job] = json.loads(as_json.stdout)["jobs"]
    assert job["status"] == "failed"
    assert job["error"]
    assert job["saved"] == []

    # A field the API refuses: its problem details' text, exit 4, nothing queued.
    refused = cli("image", "webp", str(media["photo"]), "--quality", "500")
    assert refused.returncode == 4, refused.stderr
    assert "quality" in refused.stderr
    assert "HTTP 422" in refused.stderr
    refused_json = cli("video", "trim", str(media["clip"]), "--start", "00:00:02", "--end",
                       "00:00:01", "--json")  # fmt: skip
    assert refused_json.returncode == 4
    error = json.loads(refused_json.stdout)["error"]
    assert error["exit_code"] == 4
    assert error["problem"]["status"] == 422
    assert error["problem"]["detail"] in error["message"]

    # A usage error is click's 2, before anything is sent.
    assert cli("image", "webp", "no-such-file.jpg").returncode == 2
    assert cli("video", "trim", str(media["clip"])).returncode == 2
    assert cli.json("jobs", "--status", "failed")["total"] == 2


def test_no_wait_then_watch_get_and_cancel(cli: Cli, media: dict[str, Path]) -> None:
    cli.login()
    [queued] = cli.json("image", "avif", str(media["photo"]), "--no-wait")["jobs"]
    assert queued["status"] == "pending"
    assert "saved" not in queued
    job_id = queued["job_id"]

    watched = cli.json("watch", job_id)
    assert watched["status"] == "completed"
    assert watched["progress"] == 100

    got = cli.json("get", job_id, "-o", "mine.avif")
    assert got["saved"] == ["mine.avif"]
    assert (cli.cwd / "mine.avif").read_bytes()[4:12] == b"ftypavif"
    cli.ok("get", job_id, "-o", ".")
    assert (cli.cwd / "photo.avif").read_bytes()[4:12] == b"ftypavif"

    cancelled = cli.ok("cancel", job_id)
    assert job_id in cancelled.stdout
    gone = cli("get", job_id)
    assert gone.returncode == 4
    assert "HTTP 404" in gone.stderr


def test_tokens_are_refreshed_and_logout_ends_the_login(cli: Cli, api_url: str) -> None:
    wrong = cli("login", "--email", cli.email, "--password-stdin", stdin="not it\n")
    assert wrong.returncode == 3, wrong.stderr
    assert not cli.credentials.exists()

    cli.login()
    url = cli.env["MEDIAFLOW_API_URL"]

    def session() -> dict[str, Any]:
        return json.loads(cli.credentials.read_text())["sessions"][url]

    def edit(**changes: Any) -> None:
        data = json.loads(cli.credentials.read_text())
        data["sessions"][url].update(changes)
        cli.credentials.write_text(json.dumps(data))

    first = session()
    # Expired by the clock: refreshed before the request.
    edit(expires_at=time.time() - 10)
    assert cli.json("jobs")["total"] == 0
    second = session()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["expires_at"] > time.time() + 60
    # The API refuses the access token (the clock thought it valid): refreshed after the 401.
    edit(access_token="not-a-token")  # noqa: S106 - a made-up token
    assert cli.json("jobs")["total"] == 0
    third = session()
    assert third["refresh_token"] != second["refresh_token"]

    # Five processes find the token expired at once: one refreshes (a refresh token works
    # once; spending it twice would end the login), the others use the pair it saved.
    edit(expires_at=time.time() - 10)
    assert MEDIAFLOW
    racing = [
        subprocess.Popen([MEDIAFLOW, "jobs", "--json"], env=cli.env, cwd=cli.cwd,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(5)
    ]  # fmt: skip
    for process in racing:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert json.loads(out)["total"] == 0
    assert cli.json("jobs")["total"] == 0  # the login survived
    third = session()
    assert third["expires_at"] > time.time() + 60

    cli.ok("logout")
    assert url not in json.loads(cli.credentials.read_text())["sessions"]
    out = cli("jobs")
    assert out.returncode == 3
    assert "mediaflow login" in out.stderr
    # The login is over on the API too: its refresh token no longer works.
    refused = httpx.post(
        f"{api_url}/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]},
        timeout=30,
    )  # fmt: skip
    assert refused.status_code == 401
