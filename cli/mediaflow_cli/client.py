"""The HTTP API as the commands use it: tokens (refreshed as they expire), error answers
turned into CliError with the problem details' text, uploads streamed, results downloaded."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from mediaflow_cli.credentials import (
    CredentialStore,
    Session,
    needs_refresh,
    session_from_tokens,
)
from mediaflow_cli.exitcodes import ExitCode
from mediaflow_cli.forms import API_PREFIX
from mediaflow_cli.problems import CliError, api_error

# Answers worth waiting for and sending again: rate limits and a busy API say when.
RETRYABLE = frozenset({429, 503})
MAX_RETRY_WAIT_SECONDS = 30.0
MAX_ATTEMPTS = 4


def retry_delay(status: int, retry_after: str | None, attempt: int) -> float | None:
    """Seconds to wait before sending a request again after `status` (attempt counts from
    1), or None to report the error: only 429/503 that name a short enough Retry-After
    (in seconds), a few times."""
    if status not in RETRYABLE or attempt >= MAX_ATTEMPTS or not retry_after:
        return None
    try:
        seconds = float(retry_after)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_RETRY_WAIT_SECONDS else None


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def unreachable(api_url: str, error: Exception) -> CliError:
    return CliError(
        f"Cannot reach the MediaFlow API at {api_url}: {error or type(error).__name__}",
        ExitCode.UNAVAILABLE,
    )


class ApiClient:
    def __init__(
        self,
        api_url: str,
        store: CredentialStore,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.api_url = api_url
        self.store = store
        self.clock = clock
        self.sleep = sleep
        self.on_wait = on_wait
        self.http = httpx.Client(
            base_url=api_url + API_PREFIX,
            # Connect retries only (nothing was sent); long writes and reads for big uploads.
            transport=httpx.HTTPTransport(retries=2),
            timeout=httpx.Timeout(60.0, connect=10.0),
            headers={"User-Agent": "mediaflow-cli"},
        )
        # Result URLs are presigned for the object store: no API token goes there.
        self.downloads = httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))

    def close(self) -> None:
        self.http.close()
        self.downloads.close()

    # --- sending -------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        headers: dict[str, str] | None = None,
        body: Callable[[], Iterator[bytes]] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, waiting out short rate limits (`body()` streams a fresh body for
        each attempt); a network failure is exit 5."""
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        attempt = 1
        while True:
            if body is not None:
                kwargs["content"] = body()
            try:
                response = self.http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as error:
                raise unreachable(self.api_url, error) from error
            delay = retry_delay(response.status_code, response.headers.get("Retry-After"), attempt)
            if delay is None:
                return response
            if self.on_wait:
                self.on_wait(f"API busy (HTTP {response.status_code}); retrying in {delay:g} s")
            self.sleep(delay)
            attempt += 1

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        raise api_error(response.status_code, _body(response), response.reason_phrase)

    def public(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request without a token (login, refresh, logout)."""
        return self._check(self._send(method, path, None, **kwargs))

    def authed(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request with the access token, refreshed first if it expires soon, and once
        more after a 401 (a token the clock thought valid)."""
        session = self._fresh_session()
        response = self._send(method, path, session.access_token, **kwargs)
        if response.status_code == 401:
            session = self.refresh(session)
            response = self._send(method, path, session.access_token, **kwargs)
        return self._check(response)

    # --- the session ---------------------------------------------------------------

    def session(self) -> Session:
        session = self.store.session(self.api_url)
        if session is None:
            raise CliError(
                f"Not logged in to {self.api_url}: run `mediaflow login` first.", ExitCode.AUTH
            )
        return session

    def _fresh_session(self) -> Session:
        session = self.session()
        if needs_refresh(session, self.clock()):
            session = self.refresh(session)
        return session

    def login(self, email: str, password: str) -> Session:
        response = self.public(
            "POST", "/auth/login", data={"username": email, "password": password}
        )
        session = session_from_tokens(email, response.json(), self.clock())
        with self.store.locked():
            self.store.save_session(self.api_url, session)
        return session

    def refresh(self, stale: Session) -> Session:
        """A new token pair for `stale`'s login. Under the store's lock: a refresh token
        works once, so a process that finds it already replaced uses the new pair."""
        with self.store.locked():
            current = self.store.session(self.api_url)
            if current is None:
                raise CliError(
                    f"Logged out of {self.api_url}: run `mediaflow login`.", ExitCode.AUTH
                )
            if current.refresh_token != stale.refresh_token:
                return current
            response = self._send(
                "POST", "/auth/refresh", None, json={"refresh_token": current.refresh_token}
            )
            if response.status_code == 401:
                self.store.forget(self.api_url)
                problem = _body(response) or {}
                raise CliError(
                    "Your session has ended "
                    f"({problem.get('detail', 'the refresh token was refused')}): "
                    "run `mediaflow login` again.",
                    ExitCode.AUTH,
                    problem,
                )
            self._check(response)
            session = session_from_tokens(current.email, response.json(), self.clock())
            self.store.save_session(self.api_url, session)
            return session

    def logout(self) -> Session | None:
        """End the login on the API and forget it here (also when the API no longer knew
        it: it has ended either way)."""
        session = self.store.session(self.api_url)
        if session is None:
            return None
        try:
            response = self._send(
                "POST", "/auth/logout", None, json={"refresh_token": session.refresh_token}
            )
            if response.status_code != 401:
                self._check(response)
        finally:
            with self.store.locked():
                self.store.forget(self.api_url)
        return session

    # --- jobs ------------------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any]:
        return self.authed("GET", f"/jobs/{job_id}").json()["data"]

    def jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        query = {k: v for k, v in params.items() if v is not None}
        return self.authed("GET", "/jobs", params=query).json()["data"]

    def delete_job(self, job_id: str) -> None:
        self.authed("DELETE", f"/jobs/{job_id}")

    def upload(
        self, path: str, headers: dict[str, str], body: Callable[[], Iterator[bytes]]
    ) -> dict[str, Any]:
        """POST a multipart body (`body()` streams it, afresh for each attempt)."""
        response = self.authed("POST", path, headers=headers, body=body)
        return response.json()["data"]

    def download(
        self,
        url: str,
        dest: Path,
        on_start: Callable[[int | None], None],
        on_bytes: Callable[[int], None],
    ) -> httpx.Response:
        """Stream a result to `dest` (through a temporary file beside it, renamed when
        complete, so a broken download leaves no partial result)."""
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            with self.downloads.stream("GET", url) as response:
                if not response.is_success:
                    response.read()
                    raise api_error(response.status_code, _body(response), response.reason_phrase)
                length = response.headers.get("Content-Length")
                on_start(int(length) if length and length.isdigit() else None)
                with tmp.open("wb") as file:
                    for chunk in response.iter_bytes(256 * 1024):
                        file.write(chunk)
                        on_bytes(len(chunk))
            tmp.replace(dest)
        except httpx.TransportError as error:
            raise unreachable(url.split("?")[0], error) from error
        finally:
            tmp.unlink(missing_ok=True)
        return response
