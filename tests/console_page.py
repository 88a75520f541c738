"""The web console driven in a real browser (Debian's Chromium, headless, Playwright):
the page helper shared by tests/integration/test_console.py (API from the tree) and
tests/e2e/test_console.py (the release)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.media import ffprobe

CHROMIUM = Path("/usr/bin/chromium")
DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs/images"
PASSWORD = "console passphrase 1"  # noqa: S105 - a test password
JOB_TIMEOUT_MS = 45_000
# Sign-ups hash a password (argon2, 64 MiB) on a machine shared with other work: seconds.
expect.set_options(timeout=20_000)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless. Missing, it is a failure, never a skip."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()


class Console:
    """A browser page on the console that records console errors and CSP violations."""

    def __init__(self, page: Page, url: str, shots: Path) -> None:
        self.page = page
        self.url = url
        self.shots = shots
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.set_default_timeout(15_000)

    def _console(self, message: ConsoleMessage) -> None:
        # Chromium reports CSP violations ("Refused to load/execute ...") as console errors.
        if message.type in ("error", "warning"):
            self.problems.append(f"{message.type}: {message.text}")

    def open(self) -> dict[str, str]:
        response = self.page.goto(f"{self.url}/")
        assert response is not None
        assert response.status == 200, f"{self.url}/ answered {response.status}: no console?"
        expect(self.page.locator("#auth")).to_be_visible()
        return response.headers

    def sign_up(self) -> str:
        email = f"console-{uuid.uuid4().hex[:10]}@example.com"
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Create account").click()
        expect(self.page.locator("#work")).to_be_visible()
        expect(self.page.locator("#who")).to_have_text(email)
        return email

    def choose(self, operation: str, files: list[Path], **fields: str) -> None:
        self.page.get_by_label("Operation").select_option(operation)
        for name, value in fields.items():
            field = self.page.locator(f"#opt-{name}")
            if field.evaluate("e => e.tagName") == "SELECT":
                field.select_option(value)
            else:
                field.fill(value)
        self.page.locator("#files").set_input_files([str(f) for f in files])

    def upload_and_follow(self, count: int) -> tuple[list[Any], list[str]]:
        """Submit, then watch the newest `count` upload items until each is final; returns
        their elements and every state text seen meanwhile."""
        # The page records every state text as it is set: a small upload on a warm pod can
        # pass "Uploading n%" between two polls of the test.
        self.page.evaluate(RECORD_STATES)
        self.page.get_by_role("button", name="Upload and convert").click()
        items = self.page.locator("#uploads li.upload")

        def final() -> bool:
            statuses = [items.nth(i).get_attribute("data-status") for i in range(count)]
            return all(s in ("completed", "failed", "deleted") for s in statuses)

        def seen() -> list[str]:
            states: list[str] = self.page.evaluate("window.__mediaflowStates")
            return [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]

        wait_in_page(self.page, final, JOB_TIMEOUT_MS, lambda: f"jobs to finish; seen {seen()}")
        return [items.nth(i) for i in range(count)], seen()

    def screenshot(self, name: str) -> Path:
        path = self.shots / name
        self.page.screenshot(path=str(path), full_page=True)
        if os.environ.get("MEDIAFLOW_CONSOLE_SCREENSHOTS") == "1":
            DOCS_IMAGES.mkdir(exist_ok=True)
            self.page.screenshot(path=str(DOCS_IMAGES / name), full_page=True)
        return path


# Every text a `.state` element of the upload list is given, in order: a text node added under
# one (textContent assignments replace it) or a new upload item with its first state.
RECORD_STATES = """() => {
  window.__mediaflowStates = [];
  new MutationObserver((mutations) => {
    for (const mutation of mutations) {
      for (const node of mutation.addedNodes) {
        if (node.nodeType === Node.TEXT_NODE && node.parentElement?.classList.contains("state")) {
          window.__mediaflowStates.push(node.data);
        } else if (node.nodeType === Node.ELEMENT_NODE) {
          for (const state of node.querySelectorAll(".state")) {
            window.__mediaflowStates.push(state.textContent);
          }
        }
      }
    }
  }).observe(document.getElementById("uploads"), { childList: true, subtree: true });
}"""


def wait_in_page(
    page: Page,
    predicate: Callable[[], bool],
    timeout_ms: int,
    what: Callable[[], str] = lambda: "the page",
) -> None:
    waited = 0
    while not predicate():
        assert waited < timeout_ms, f"timed out after {timeout_ms} ms waiting for {what()}"
        page.wait_for_timeout(100)
        waited += 100


def check_download(console: Console, name: str, tmp: Path) -> dict[str, Any]:
    with console.page.expect_download() as info:
        console.page.locator("#download").click()
    download = info.value
    assert download.suggested_filename == name
    saved = tmp / download.suggested_filename
    download.save_as(saved)
    return ffprobe(saved)  # fails unless the file decodes
