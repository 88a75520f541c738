"""The tokens of `mediaflow login`, kept in the user's config folder.

`$XDG_CONFIG_HOME/mediaflow/credentials.json` (`~/.config/mediaflow/...` when unset or not
absolute, as the XDG spec says), the folder 0700 and the file 0600, written atomically.
One session per API address, so one config serves several installations; `current` is the
address of the last login, used when neither `--api-url` nor `MEDIAFLOW_API_URL` is given.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FILE_NAME = "credentials.json"
# Refresh an access token this long before it expires (clock skew, a slow upload's start).
REFRESH_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class Session:
    email: str
    access_token: str
    refresh_token: str
    expires_at: float  # epoch seconds when the access token expires


def config_dir(env: Mapping[str, str], home: Path) -> Path:
    """The `mediaflow` folder of the user's config directory."""
    xdg = env.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".config"
    return base / "mediaflow"


def needs_refresh(session: Session, now: float, margin: float = REFRESH_MARGIN_SECONDS) -> bool:
    return session.expires_at - margin <= now


def token_pair(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The token pair of an answer: login answers it flat (OAuth2), refresh in the
    envelope's `data`."""
    data = body.get("data")
    return data if isinstance(data, Mapping) and "access_token" in data else body


def session_from_tokens(email: str, body: Mapping[str, Any], now: float) -> Session:
    """A session from the API's answer to a login or a refresh."""
    tokens = token_pair(body)
    return Session(
        email=email,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        expires_at=now + float(tokens.get("expires_in") or 0),
    )


class CredentialStore:
    """The credentials file; `locked()` serialises refreshes between processes (a refresh
    token works once: two processes refreshing with the same one would end the login)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / FILE_NAME

    def _ensure_folder(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder.chmod(0o700)

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"current": None, "sessions": {}}
        except (OSError, ValueError):
            return {"current": None, "sessions": {}}
        data.setdefault("current", None)
        data.setdefault("sessions", {})
        return data

    def write(self, data: Mapping[str, Any]) -> None:
        self._ensure_folder()
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".credentials-", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as file:
                json.dump(data, file, indent=2)
                file.flush()
                os.fsync(file.fileno())
            Path(tmp).replace(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self._ensure_folder()
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def current_url(self) -> str | None:
        return self.read().get("current")

    def session(self, api_url: str) -> Session | None:
        raw = self.read()["sessions"].get(api_url)
        if not raw:
            return None
        try:
            return Session(**raw)
        except TypeError:
            return None

    def save_session(self, api_url: str, session: Session) -> None:
        data = self.read()
        data["sessions"][api_url] = asdict(session)
        data["current"] = api_url
        self.write(data)

    def forget(self, api_url: str) -> None:
        data = self.read()
        data["sessions"].pop(api_url, None)
        if data.get("current") == api_url:
            data["current"] = next(iter(data["sessions"]), None)
        self.write(data)
