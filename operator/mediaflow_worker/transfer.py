"""Streaming download of the input and presigned PUT of the output (stdlib `http.client`).

One request per connection, no pool: urllib3 cost ~40 ms of start-up for nothing a single GET
and a single PUT need. What it did for us is done here by hand: redirects (each hop's scheme
checked), no content decoding, a byte cap and a total deadline, connect/read timeouts, two
retries of a failed connection (never of a request that was sent), and a short body is an error.

With `public_only` (a MediaJob's own `input.url`), every hop's host is resolved once, refused
unless all its addresses are public, and the connection goes to the addresses that were checked
(no second lookup for DNS rebinding to answer); the Host header and TLS stay on the name.
"""

from __future__ import annotations

import http.client
import socket  # already loaded by http.client
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from mediaflow_core.addresses import NON_PUBLIC as NON_PUBLIC
from mediaflow_core.addresses import public_address

from .errors import InputNotFound, InvalidInput, TransientError
from .report import log, redact_url

CHUNK = 1024 * 1024
MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 60.0
CONNECT_RETRY_SLEEPS = (0.0, 2.0)  # what urllib3's Retry(connect=2, backoff_factor=1) did


def check_scheme(url: str) -> None:
    """Only http and https are fetched, on every redirect hop."""
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        raise InvalidInput("the input URL is not a valid http or https URL") from None
    if scheme not in ("http", "https"):
        raise InvalidInput("the input URL must be http or https (also after redirects)")


def public_addresses(host: str, redirected: bool) -> list[str]:
    """The host's addresses, resolved once; InvalidInput unless every one of them is public.

    A failed lookup stays an OSError (socket.gaierror): transient, like a refused connection.
    """
    found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    for ip in addresses:
        if not public_address(ip):
            # A name's address is not told: the message must not turn the worker into a
            # resolver of internal names for whoever submits URLs.
            named = f"{host} is not" if ip == host else f"{host} resolves to something that is not"
            raise InvalidInput(
                f"{'after a redirect, ' if redirected else ''}the input URL's host {named} "
                "a public address; MediaFlow fetches URLs on public addresses only"
            )
    return addresses


def pin(conn: http.client.HTTPConnection, addresses: list[str]) -> None:
    """Make `conn` connect to these addresses (in order) instead of looking its host up again.

    http.client keeps using `conn.host` for the Host header and, over https, for SNI and the
    certificate check; only the socket's destination changes.
    """

    def create_connection(
        address: tuple[str, int],
        timeout: float | None = None,
        source_address: tuple[str, int] | None = None,
    ) -> socket.socket:
        error = OSError(f"no address for {address[0]}")
        for ip in addresses:
            try:
                return socket.create_connection((ip, address[1]), timeout, source_address)
            except OSError as exc:
                error = exc
        raise error

    conn._create_connection = create_connection  # type: ignore[attr-defined]


def _connect(
    url: str, *, public_only: bool = False, redirected: bool = False
) -> tuple[http.client.HTTPConnection, str]:
    """An open connection to the URL's host, and the request target (path and query).

    With `public_only`, InvalidInput unless the host resolves to public addresses only, and
    the connection goes to those addresses."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise http.client.InvalidURL("no host")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    for pause in (*CONNECT_RETRY_SLEEPS, None):
        try:
            addresses = public_addresses(parts.hostname, redirected) if public_only else None
        except OSError:
            if pause is None:
                raise
            time.sleep(pause)
            continue
        if parts.scheme == "https":
            import ssl  # only https pays for it

            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname,
                parts.port,
                timeout=CONNECT_TIMEOUT,
                context=ssl.create_default_context(),
                blocksize=CHUNK,
            )
        else:
            conn = http.client.HTTPConnection(
                parts.hostname, parts.port, timeout=CONNECT_TIMEOUT, blocksize=CHUNK
            )
        if addresses is not None:
            pin(conn, addresses)
        try:
            conn.connect()
        except OSError:
            conn.close()
            if pause is None:
                raise
            time.sleep(pause)
            continue
        assert conn.sock is not None  # noqa: S101
        conn.sock.settimeout(READ_TIMEOUT)
        return conn, target
    raise AssertionError("unreachable")  # pragma: no cover


def fetch(url: str, dest: Path, max_bytes: int, timeout: float, public_only: bool = False) -> int:
    """Stream `url` into `dest`; stop as soon as `max_bytes` is passed. Returns the size.

    With `public_only`, the first URL and every redirect must be on public addresses."""
    deadline = time.monotonic() + timeout
    check_scheme(url)
    conn = None
    try:
        for hop in range(MAX_REDIRECTS + 1):
            conn, target = _connect(url, public_only=public_only, redirected=hop > 0)
            conn.request("GET", target, headers={"Accept-Encoding": "identity"})
            response = conn.getresponse()
            if response.status not in _REDIRECTS:
                break
            location = response.getheader("Location", "")
            conn.close()
            url = urljoin(url, location)
            check_scheme(url)
        else:
            raise InvalidInput(f"the input URL redirects more than {MAX_REDIRECTS} times")
        log("fetch", url=redact_url(url), status=response.status)
        if 400 <= response.status < 500:
            raise InputNotFound(
                f"the input URL answered HTTP {response.status}; check that the object or URL "
                "exists and is readable"
            )
        if response.status != 200:
            raise TransientError(f"the input URL answered HTTP {response.status}")
        declared = (response.getheader("Content-Length") or "").strip()
        if declared.isdigit() and int(declared) > max_bytes:
            raise InvalidInput(f"the input is {int(declared)} bytes; the limit is {max_bytes}")
        size = 0
        with dest.open("wb") as out:
            while chunk := response.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise InvalidInput(f"the input is larger than the {max_bytes}-byte limit")
                if time.monotonic() > deadline:
                    raise TransientError(f"downloading the input took longer than {timeout:.0f} s")
                out.write(chunk)
        if declared.isdigit() and size != int(declared):
            # http.client does not check this itself; a cut connection must not pass as the file.
            raise TransientError(
                f"the download ended after {size} of {int(declared)} bytes; the connection was cut"
            )
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise TransientError(f"downloading the input failed: {type(exc).__name__}") from None
    finally:
        if conn is not None:
            conn.close()
    if size == 0:
        raise InvalidInput("the input is empty")
    return size


def upload(path: Path, url: str, content_type: str) -> None:
    """PUT the file to the presigned URL with its Content-Type and Content-Length."""
    size = path.stat().st_size
    conn = None
    try:
        conn, target = _connect(url)
        with path.open("rb") as body:
            conn.request(
                "PUT",
                target,
                body=body,
                headers={"Content-Type": content_type, "Content-Length": str(size)},
            )
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise TransientError(f"uploading the output failed: {type(exc).__name__}") from None
    finally:
        if conn is not None:
            conn.close()
    log("upload", url=redact_url(url), status=response.status, size=size)
    if not 200 <= response.status < 300:
        raise TransientError(f"uploading the output failed: HTTP {response.status}")
