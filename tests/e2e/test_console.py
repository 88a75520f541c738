"""The web console of the release `make up` installs, in Debian's Chromium (headless): served
by the API's Service at MEDIAFLOW_API_URL, results read from the storage's public endpoint.

The thorough browser tests run against the API from the tree
(tests/integration/test_console.py); this one proves the release serves the same console and
that a conversion works through it end to end. It needs an image built with the console.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.console_page import Console, check_download, chromium
from tests.media import make_photo

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def test_the_release_serves_the_console_and_converts_through_it(
    release: str, api_url: str, browser: Browser, tmp_path: Path
) -> None:
    photo = make_photo(tmp_path / "release photo.jpg")
    context = browser.new_context(accept_downloads=True)
    console = Console(context.new_page(), api_url, tmp_path)
    try:
        headers = console.open()
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        console.sign_up()
        console.choose("/image/convert/webp", [photo])
        (item,), seen = console.upload_and_follow(1)
        expect(item).to_have_attribute("data-status", "completed")
        assert any(re.fullmatch(r"Uploading \d+%", s) for s in seen), seen
        item.get_by_role("button", name="View the result of release photo.jpg").click()
        expect(console.page.locator("#result-view img")).to_be_visible()
        expect(console.page.locator("#r-format")).to_have_text("image/webp")
        probe = check_download(console, "release photo.webp", tmp_path)
        assert (probe["streams"][0]["width"], probe["streams"][0]["height"]) == (320, 240)
        assert console.problems == [], console.problems
    finally:
        context.close()
