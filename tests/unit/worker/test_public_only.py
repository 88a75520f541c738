"""MEDIAFLOW_INPUT_PUBLIC_ONLY: a user's own input URL is fetched only from public addresses,
on every redirect hop, from the very addresses that were checked. Nothing here contacts an
address off this machine: public addresses appear only as strings."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mediaflow_worker import transfer
from mediaflow_worker.errors import InvalidInput
from mediaflow_worker.settings import settings_from_env

from .conftest import LOOPBACK, url_dir

PUBLIC_ONLY = {"MEDIAFLOW_INPUT_PUBLIC_ONLY": "1"}
REFUSAL = "not a public address; MediaFlow fetches URLs on public addresses only"


@pytest.mark.parametrize(
    "ip",
    [
        "10.0.0.1",  # private
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",  # loopback
        "169.254.169.254",  # link-local: cloud metadata
        "100.64.0.1",  # shared address space (CGNAT)
        "224.0.0.1",  # multicast
        "239.255.255.250",
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "0.0.0.0",  # noqa: S104 - connecting to it reaches this host
        "192.0.2.1",  # documentation
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",  # IPv6 multicast
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:a00:1::1",  # 6to4 around 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
        "2001:db8::1",
        "not-an-address",
        "",
    ],
)
def test_non_public_addresses_are_refused(ip: str) -> None:
    assert transfer.public_address(ip) is False


# Issue 10, item 9: IPv6 forms the guard called public, and the rest of IANA's special-purpose
# registries (each with a public IPv4 address inside where the form carries one, so that
# judging by the carried address would wrongly accept it).
@pytest.mark.parametrize(
    "ip",
    [
        "::808:808",  # ::/96 IPv4-compatible (deprecated), around 8.8.8.8
        "::a00:1",  # ... around 10.0.0.1
        "::ffff:8.8.8.8",  # ::ffff:0:0/96 IPv4-mapped: a name never resolves to one
        "::ffff:0:808:808",  # ::ffff:0:0:0/96 IPv4-translated (SIIT), around 8.8.8.8
        "::ffff:0:a00:1",  # ... around 10.0.0.1
        "::ffff:0:7f00:1",  # ... around 127.0.0.1
        "64:ff9b:1::808:808",  # 64:ff9b:1::/48 local-use IPv4/IPv6 translation
        "64:ff9b:1:ffff::1",
        "fec0::1",  # fec0::/10 site-local (deprecated)
        "feff:ffff::1",
        "100::1",  # 100::/64 discard-only
        "100:0:0:1::1",  # 100:0:0:1::/64 dummy prefix
        "2001::1",  # 2001::/32 Teredo
        "2001:2::1",  # benchmarking
        "2001:3::1",  # AMT
        "2001:4:112::1",  # AS112
        "2001:20::1",  # ORCHIDv2
        "2002:808:808::1",  # 6to4 around 8.8.8.8
        "2620:4f:8000::1",  # AS112 direct delegation
        "3fff::1",  # documentation (RFC 9637)
        "5f00::1",  # segment routing SIDs
        "4000::1",  # not (yet) global unicast
        "192.31.196.1",  # AS112-v4
        "192.52.193.1",  # AMT
        "192.88.99.1",  # 6to4 relay anycast (deprecated)
        "192.175.48.1",  # AS112 direct delegation
        "192.0.0.170",  # NAT64 discovery
        "198.19.255.1",  # benchmarking
    ],
)
def test_every_special_purpose_range_is_refused(ip: str) -> None:
    assert transfer.public_address(ip) is False


@pytest.mark.parametrize(
    "ip", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "2a00:1450:4001::1", "64:ff9b::808:808"]
)
def test_public_addresses_are_accepted(ip: str) -> None:
    assert transfer.public_address(ip) is True


def test_the_setting_is_off_unless_asked_for(tmp_path: Path) -> None:
    env = {
        "MEDIAFLOW_OPERATION": "ImageConvert",
        **url_dir(tmp_path, "http://x/in", "http://x/out"),
    }
    assert settings_from_env(env).input_public_only is False
    assert settings_from_env({**env, "MEDIAFLOW_INPUT_PUBLIC_ONLY": "0"}).input_public_only is False
    assert settings_from_env({**env, **PUBLIC_ONLY}).input_public_only is True
    # Anything but an explicit "off" keeps the guard on.
    assert settings_from_env({**env, "MEDIAFLOW_INPUT_PUBLIC_ONLY": "yes"}).input_public_only


# ---------------------------------------------------------------- the worker as a process


def refused(run: Any, fragment: str) -> None:
    assert run.returncode == 65, (run.termination, run.stdout[-2000:], run.stderr[-2000:])
    assert run.termination["reason"] == "InvalidInput"
    assert fragment in run.termination["message"], run.termination["message"]
    assert run.upload is None


def test_a_loopback_url_by_address_is_refused_before_connecting(run_worker, listener) -> None:
    url = f"http://{LOOPBACK}:{listener.port}/photo.jpg"
    run = run_worker("ImageConvert", {"format": "png"}, url, PUBLIC_ONLY)
    refused(run, f"the input URL's host {LOOPBACK} is {REFUSAL}")
    time.sleep(0.3)  # any connection would have been accepted by now
    assert listener.connections == 0


def test_a_loopback_url_by_name_is_refused_before_connecting(run_worker, listener) -> None:
    run = run_worker(
        "ImageConvert", {"format": "png"}, f"http://localhost:{listener.port}/p.jpg", PUBLIC_ONLY
    )
    refused(run, f"the input URL's host localhost resolves to something that is {REFUSAL}")
    run = run_worker(
        "ImageConvert",
        {"format": "png"},
        f"http://[::ffff:{LOOPBACK}]:{listener.port}/p.jpg",
        PUBLIC_ONLY,
    )
    refused(run, f"the input URL's host ::ffff:{LOOPBACK} is {REFUSAL}")
    time.sleep(0.3)
    assert listener.connections == 0


def test_without_the_setting_the_same_server_is_fetched(run_worker, http_server, media) -> None:
    """The presigned URL of an input object points at private storage, and must keep working."""
    for env in ({}, {"MEDIAFLOW_INPUT_PUBLIC_ONLY": "0"}):
        run = run_worker("ImageConvert", {"format": "png"}, media.png(), env)
        assert run.returncode == 0, run.termination
        assert run.upload is not None


# ---------------------------------------------------------------- redirects and pinning


@pytest.fixture
def seen_hosts() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that serves a tiny body and records each request's Host header;
    /redirect?to=URL redirects."""
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            hosts.append(self.headers.get("Host", ""))
            if self.path.startswith("/redirect?to="):
                self.send_response(302)
                self.send_header("Location", self.path.removeprefix("/redirect?to="))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"bytes")

    httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{httpd.server_address[1]}", hosts
    httpd.shutdown()
    httpd.server_close()


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(seen_hosts) -> None:
    """`pin` sends the socket to the checked address: the name itself is never looked up
    (media.example has no address here), yet it is what the server sees as Host."""
    base, hosts = seen_hosts
    port = int(base.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("media.example", port, timeout=5)
    transfer.pin(conn, [LOOPBACK])
    conn.request("GET", "/photo.jpg")
    assert conn.getresponse().read() == b"bytes"
    conn.close()
    assert hosts == [f"media.example:{port}"]


def test_pin_tries_each_checked_address_in_turn(seen_hosts) -> None:
    base, hosts = seen_hosts
    port = int(base.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("media.example", port, timeout=5)
    transfer.pin(conn, ["127.0.0.2", LOOPBACK])  # nothing listens on 127.0.0.2: refused
    conn.request("GET", "/x")
    assert conn.getresponse().status == 200
    conn.close()
    assert hosts == [f"media.example:{port}"]


def test_every_redirect_hop_is_checked(seen_hosts, monkeypatch, tmp_path: Path) -> None:
    """With 127.0.0.1 deemed public (a stand-in for a public server), a redirect to another
    loopback address is refused before it is contacted."""
    base, hosts = seen_hosts
    monkeypatch.setattr(transfer, "public_address", lambda ip: ip == LOOPBACK)
    dest = tmp_path / "input"
    assert transfer.fetch(f"{base}/photo.jpg", dest, 100, 10, public_only=True) == 5
    assert dest.read_bytes() == b"bytes"
    other = socket.socket()
    other.bind(("127.0.0.2", 0))
    other.listen(8)
    other.setblocking(False)
    try:
        target = f"http://127.0.0.2:{other.getsockname()[1]}/photo.jpg"
        with pytest.raises(InvalidInput) as error:
            transfer.fetch(f"{base}/redirect?to={target}", dest, 100, 10, public_only=True)
        assert str(error.value) == f"after a redirect, the input URL's host 127.0.0.2 is {REFUSAL}"
        with pytest.raises(BlockingIOError):
            other.accept()  # nothing ever connected
    finally:
        other.close()
    assert hosts == [base.removeprefix("http://")] * 2  # the download, the redirect


def test_the_name_is_looked_up_once(seen_hosts, monkeypatch, tmp_path: Path) -> None:
    """No second lookup for DNS rebinding to answer: fetch resolves the name once, checks the
    answer and connects to it (a spy around the real resolver counts the lookups)."""
    base, hosts = seen_hosts
    port = int(base.rsplit(":", 1)[1])
    monkeypatch.setattr(transfer, "public_address", lambda ip: ip == LOOPBACK)
    lookups: list[str] = []
    real = socket.getaddrinfo

    def spy(host: Any, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    url = f"http://localhost:{port}/photo.jpg"
    assert transfer.fetch(url, tmp_path / "input", 100, 10, public_only=True) == 5
    assert lookups.count("localhost") == 1, lookups
    assert hosts == [f"localhost:{port}"]


def test_the_special_purpose_ranges_are_refused_whatever_ipaddress_thinks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ipaddress

    # As if this Python's tables called everything global (they differ between patch releases).
    monkeypatch.setattr(ipaddress.IPv4Address, "is_global", property(lambda _: True))
    monkeypatch.setattr(ipaddress.IPv6Address, "is_global", property(lambda _: True))
    for net in map(ipaddress.ip_network, transfer.NON_PUBLIC):
        for address in (net.network_address, net.broadcast_address, net.network_address + 1):
            if address in net:
                assert transfer.public_address(str(address)) is False, address
    assert transfer.public_address("8.8.8.8") is True
