"""The web console's serving: the page and its assets, their security headers, and that
nothing of it reaches the OpenAPI schema or loads from elsewhere. (Its behaviour in a real
browser against the real API is tests/integration/test_console.py.)"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from mediaflow_api.app import create_app
from mediaflow_api.console import STATIC, content_security_policy
from tests.unit.api.conftest import FakeClients, make_settings

pytestmark = pytest.mark.unit

ASSETS = sorted(p.name for p in STATIC.iterdir())


class PageParser(HTMLParser):
    """Scripts, stylesheets and attributes of the console's page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_code: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open = tag

    def handle_data(self, data: str) -> None:
        if self._open in ("script", "style") and data.strip():
            self.inline_code.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def directives(csp: str) -> dict[str, list[str]]:
    return {
        name: values for name, *values in (part.split() for part in csp.split(";") if part.strip())
    }


def test_the_page_is_served_at_the_root_with_a_strict_policy(
    client: TestClient[Litestar],
) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = directives(response.headers["content-security-policy"])
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    # Results are read from the storage's public endpoint (presigned URLs), nothing else.
    assert csp["connect-src"] == ["'self'", "http://127.0.0.1:9"]
    assert csp["img-src"] == ["'self'", "blob:", "http://127.0.0.1:9"]
    assert not any("unsafe" in value for values in csp.values() for value in values)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("name", ASSETS)
def test_every_asset_is_served_with_its_type_and_the_headers(
    client: TestClient[Litestar], name: str
) -> None:
    response = client.get(f"/console/{name}")
    assert response.status_code == 200
    assert response.content == (STATIC / name).read_bytes()
    expected = {
        ".js": "text/javascript",
        ".css": "text/css",
        ".html": "text/html",
        ".svg": "image/svg+xml",
    }[(STATIC / name).suffix]
    assert response.headers["content-type"].split(";")[0] == expected
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_policy_names_the_public_storage_endpoint() -> None:
    settings = make_settings(
        s3_endpoint="http://minio:9000", s3_public_endpoint="https://media.example.com"
    )
    csp = directives(content_security_policy(settings))
    assert csp["media-src"] == ["'self'", "blob:", "https://media.example.com"]
    assert "http://minio:9000" not in content_security_policy(settings)


def test_the_console_stays_out_of_the_openapi_schema(app: Litestar) -> None:
    paths = app.openapi_schema.to_schema()["paths"]
    assert all(path.startswith("/api/v1/") for path in paths), sorted(paths)


def test_the_api_keeps_answering_problem_details_beside_the_console(
    client: TestClient[Litestar],
) -> None:
    assert client.get("/console/missing.js").status_code == 404
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_the_page_has_no_inline_code_and_loads_only_its_own_assets(
    client: TestClient[Litestar],
) -> None:
    parser = PageParser()
    parser.feed(client.get("/").text)
    assert parser.inline_code == []
    for tag, attrs in parser.tags:
        assert "style" not in attrs, tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        for name in ("src", "href"):
            value = attrs.get(name)
            if value and tag in ("script", "link", "img"):
                assert value.startswith("/console/"), value
                assert (STATIC / value.removeprefix("/console/")).is_file(), value


@pytest.mark.parametrize("name", [n for n in ASSETS if n.endswith((".js", ".css", ".html"))])
def test_no_asset_refers_to_another_origin_or_a_missing_module(name: str) -> None:
    text = (STATIC / name).read_text()
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), name
    assert "innerHTML" not in text  # text goes in as text: no markup from job errors
    for module in re.findall(r'from "\./([^"]+)"', text):
        assert (STATIC / module).is_file(), module


def test_the_page_is_served_with_clients_that_fail() -> None:
    # The console needs nothing of Kubernetes or MinIO to load: the page itself never fails.
    fakes = FakeClients()
    fakes.kube_error = fakes.minio_error = RuntimeError("down")
    app = create_app(make_settings(), clients_factory=lambda _settings: fakes)
    with TestClient(app) as client:
        assert client.get("/").status_code == 200
