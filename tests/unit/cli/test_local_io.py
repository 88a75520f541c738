"""The CLI's two local edges: the credentials file and the streamed multipart body (real
files in a temporary folder; the body is read back by the parser the API uses)."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import multipart

from mediaflow_cli.credentials import (
    CredentialStore,
    Session,
    config_dir,
    needs_refresh,
    session_from_tokens,
)
from mediaflow_cli.multipart import MultipartBody, quote_name


def test_the_config_folder_follows_xdg() -> None:
    home = Path("/home/u")
    assert config_dir({}, home) == Path("/home/u/.config/mediaflow")
    assert config_dir({"XDG_CONFIG_HOME": "/cfg"}, home) == Path("/cfg/mediaflow")
    # The XDG spec: a relative path is invalid and ignored.
    assert config_dir({"XDG_CONFIG_HOME": "rel"}, home) == Path("/home/u/.config/mediaflow")


def test_an_access_token_is_refreshed_a_minute_before_it_expires() -> None:
    session = session_from_tokens("a@b.c", {"access_token": "x", "refresh_token": "y",
                                             "expires_in": 900}, now=1000.0)  # fmt: skip
    assert session.expires_at == 1900.0
    # Refresh answers the same pair inside the envelope.
    refreshed = session_from_tokens(
        "a@b.c",
        {"success": True, "data": {"access_token": "x2", "refresh_token": "y2", "expires_in": 900}},
        now=2000.0,
    )
    assert (refreshed.access_token, refreshed.refresh_token, refreshed.expires_at) == (
        "x2",
        "y2",
        2900.0,
    )
    assert not needs_refresh(session, 1839.0)
    assert needs_refresh(session, 1841.0)


def test_credentials_are_private_and_kept_per_api(tmp_path: Path) -> None:
    folder = tmp_path / "config" / "mediaflow"
    store = CredentialStore(folder)
    one = Session("a@example.com", "access-1", "refresh-1", 100.0)
    two = Session("b@example.com", "access-2", "refresh-2", 200.0)
    store.save_session("http://one", one)
    store.save_session("http://two", two)

    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.session("http://one") == one
    assert store.current_url() == "http://two"
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []

    store.forget("http://two")
    assert store.session("http://two") is None
    assert store.current_url() == "http://one"
    store.forget("http://one")
    assert store.current_url() is None


def test_a_group_readable_folder_is_made_private(tmp_path: Path) -> None:
    folder = tmp_path / "mediaflow"
    folder.mkdir(mode=0o755)
    CredentialStore(folder).save_session("http://x", Session("e", "a", "r", 1.0))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_damaged_credentials_file_reads_as_logged_out(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.path.write_text("{not json")
    assert store.session("http://x") is None
    store.path.write_text('{"current": "http://x", "sessions": {"http://x": {"email": 1}}}')
    assert store.session("http://x") is None


def parse(body: MultipartBody, data: bytes) -> list[multipart.MultipartPart]:
    parser = multipart.MultipartParser(io.BytesIO(data), body.boundary, len(data))
    return list(parser)


def test_the_streamed_body_is_the_form_the_api_reads(tmp_path: Path) -> None:
    photo = tmp_path / 'my "best" photo.jpg'
    photo.write_bytes(b"\xff\xd8" + bytes(range(256)) * 3000)  # > one chunk
    clip = tmp_path / "été.png"
    clip.write_bytes(b"\x89PNG" * 10)
    body = MultipartBody({"quality": "90", "lossless": "false"}, "files", [photo, clip])

    sent: dict[Path, int] = {}
    data = b"".join(
        body.stream(lambda part, n: sent.__setitem__(part.path, sent.get(part.path, 0) + n))
    )
    assert len(data) == body.length == int(body.headers["Content-Length"])
    assert sent == {photo: photo.stat().st_size, clip: clip.stat().st_size}
    assert body.file_bytes == sum(sent.values())

    parts = parse(body, data)
    # Fields first, so the API checks them before any file byte.
    assert [p.name for p in parts] == ["quality", "lossless", "files", "files"]
    assert (parts[0].value, parts[1].value) == ("90", "false")
    assert quote_name(photo.name) == "my %22best%22 photo.jpg"
    assert parts[2].filename == photo.name  # the API's parser decodes it back
    assert parts[2].raw == photo.read_bytes()
    assert parts[3].filename == "été.png"
    assert parts[3].raw == clip.read_bytes()
    assert parts[3].content_type == "image/png"

    # Streaming again (a retry after a refreshed token) sends the same body.
    assert b"".join(body.stream()) == data
