"""A webhook receiver for tests: an HTTP server on this machine that records every POST (its
headers, body and the peer's address) and answers with the next of its scripted codes."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    peer: str


@dataclass
class Receiver:
    """Answers POSTs with the next of `codes` (then 200), listening on `host`."""

    codes: list[int]
    host: str = "127.0.0.1"
    deliveries: list[Delivery] = field(default_factory=list)
    url: str = ""

    @property
    def requests(self) -> list[tuple[dict[str, str], bytes]]:
        return [(d.headers, d.body) for d in self.deliveries]

    def serve(self) -> Iterator[Receiver]:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.deliveries.append(Delivery(headers, body, self.client_address[0]))
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer((self.host, 0), Handler)
        self.url = f"http://{self.host}:{server.server_address[1]}/hooks/mediaflow"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
