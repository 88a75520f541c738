"""The web console in a real browser (Debian's Chromium, headless, driven by Playwright)
against the API running from this tree, the operator, real Job pods and MinIO.

Each test signs up a user of its own through the console. Screenshots go to pytest's
temporary folder; with MEDIAFLOW_CONSOLE_SCREENSHOTS=1 also to docs/images/ (how the images
of docs/console.md are made).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.console_page import Console, check_download, chromium, wait_in_page
from tests.integration.api_process import ApiProcess
from tests.integration.test_api_jobs import cleanup  # noqa: F401 - fixture
from tests.media import make_clip, make_photo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TIMES = "\N{MULTIPLICATION SIGN}"  # between width and height


@pytest.fixture(scope="module")
def console_api(
    api_namespace: str,
    users_namespace: str,
    operator: object,
    cleanup: None,  # noqa: F811 - the fixture: this module's MediaJobs go before the operator
) -> Iterator[ApiProcess]:
    """The API from this tree (with the console), its MediaJobs served by the test operator."""
    env = {
        "MEDIAFLOW_API_NAMESPACE": api_namespace,
        "MEDIAFLOW_API_USERS_NAMESPACE": users_namespace,
        "MEDIAFLOW_API_AUTH_RATE_LIMIT_BURST": "10000",
        "MEDIAFLOW_API_AUTH_ACCOUNT_RATE_LIMIT_BURST": "10000",
    }
    with ApiProcess(env) as process:
        yield process


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("console-media")
    broken = folder / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 200)  # a JPEG's first bytes, then nothing
    return {
        "photo": make_photo(folder / "holiday photo.jpg"),
        "photo2": make_photo(folder / "second.jpg", size="240x160"),
        "clip": make_clip(folder / "clip.mp4", seconds=3),
        "broken": broken,
    }


@pytest.fixture
def console(browser: Browser, console_api: ApiProcess, tmp_path: Path) -> Iterator[Console]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    view = Console(page, console_api.url, tmp_path)
    yield view
    context.close()
    assert view.problems == [], view.problems


def test_the_page_is_served_with_its_policy_and_loads_cleanly(console: Console) -> None:
    headers = console.open()
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self';" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    # The operations come from the API's OpenAPI schema, every single-file upload endpoint.
    options = console.page.locator("#operation option")
    assert options.count() == 10
    console.screenshot("console-sign-in.png")
    # console errors and CSP violations: checked by the fixture


def test_sign_up_convert_two_images_as_a_batch_view_and_download(
    console: Console, media: dict[str, Path], tmp_path: Path
) -> None:
    console.open()
    console.sign_up()
    console.choose("/image/convert/webp", [media["photo"], media["photo2"]], quality="70")
    items, seen = console.upload_and_follow(2)
    for item in items:
        expect(item).to_have_attribute("data-status", "completed")
    # Upload progress then job progress, without reloading.
    assert any(re.fullmatch(r"Uploading \d+%", s) for s in seen), seen
    assert seen[-1] == "Completed"
    uploads = console.page.locator("#uploads progress[aria-label^='Upload of']")
    assert [uploads.nth(i).get_attribute("value") for i in range(2)] == ["100", "100"]

    console.screenshot("console-uploads.png")
    # Two files with an operation that has a batch endpoint went as one batch request: the
    # list shows both jobs.
    expect(console.page.locator("#jobs tr[data-status='completed']")).to_have_count(2)

    console.page.get_by_role("button", name="View the result of holiday photo.jpg").click()
    result = console.page.locator("#result")
    expect(result).to_be_visible()
    image = console.page.locator("#result-view img")
    expect(image).to_be_visible()
    assert image.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [320, 240]
    expect(console.page.locator("#original-view img")).to_be_visible()
    expect(console.page.locator("#r-format")).to_have_text("image/webp")
    expect(console.page.locator("#o-format")).to_have_text("image/jpeg")
    expect(console.page.locator("#r-dims")).to_have_text(f"320 {TIMES} 240")
    expect(console.page.locator("#o-dims")).to_have_text(f"320 {TIMES} 240")
    expect(console.page.locator("#saving")).to_contain_text("%")
    assert re.search(r"\d", console.page.locator("#r-size").inner_text())
    console.screenshot("console-result.png")

    probe = check_download(console, "holiday photo.webp", tmp_path)
    stream = probe["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("webp", 320, 240)


def test_a_video_shows_its_progress_and_plays_side_by_side(
    console: Console, media: dict[str, Path], tmp_path: Path
) -> None:
    console.open()
    console.sign_up()
    console.choose("/video/resize", [media["clip"]], width="160")
    (item,), seen = console.upload_and_follow(1)
    expect(item).to_have_attribute("data-status", "completed")
    assert any(s.startswith("Uploading") for s in seen), seen
    assert any(s.startswith(("Waiting to start", "Processing")) for s in seen), seen

    item.get_by_role("button", name="View the result of clip.mp4").click()
    video = console.page.locator("#result-view video")
    expect(video).to_be_visible()
    assert video.evaluate("v => [v.videoWidth, v.videoHeight]") == [160, 120]
    expect(console.page.locator("#original-view video")).to_be_visible()
    expect(console.page.locator("#r-format")).to_have_text("video/mp4")
    expect(console.page.locator("#o-dims")).to_have_text(f"320 {TIMES} 240")
    probe = check_download(console, "clip.mp4", tmp_path)
    assert (probe["streams"][0]["width"], probe["streams"][0]["height"]) == (160, 120)


def test_failures_are_shown_in_words(console: Console, media: dict[str, Path]) -> None:
    console.open()
    console.sign_up()
    # The API's own validation message, next to its field.
    console.choose("/image/convert/webp", [media["photo"]], quality="0")
    console.page.get_by_role("button", name="Upload and convert").click()
    error = console.page.locator("#opt-quality-error")
    expect(error).to_contain_text("greater than or equal to 1")
    expect(console.page.locator("#opt-quality")).to_have_attribute("aria-invalid", "true")
    expect(console.page.locator("#convert-problem")).to_contain_text("quality")
    # The refused upload logged a 422 in the browser's console: that one is expected.
    console.problems = [p for p in console.problems if "422" not in p]

    # A file that is a JPEG by its first bytes only, dropped on the drop zone: uploaded,
    # then the job fails.
    console.choose("/image/convert/webp", [], quality="80")
    console.page.locator("#drop").evaluate(
        """(zone, bytes) => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], "dropped.jpg", {type: "image/jpeg"}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
        }""",
        list(media["broken"].read_bytes()),
    )
    expect(console.page.locator("#chosen li")).to_have_count(1)
    expect(console.page.locator("#chosen li")).to_contain_text("dropped.jpg")
    (item,), _ = console.upload_and_follow(1)
    expect(item.locator(".name")).to_have_text("dropped.jpg")
    expect(item).to_have_attribute("data-status", "failed")
    expect(item.locator(".state")).to_have_text(re.compile(r"Failed: \w+"))
    console.page.get_by_label("Status").select_option("failed")
    expect(console.page.locator("#jobs tr[data-status]")).to_have_count(1)
    expect(console.page.locator("#jobs tr[data-status='failed'] td").nth(2)).to_contain_text(
        "Failed: "
    )


def test_cancel_list_refresh_and_sign_out(
    console: Console, media: dict[str, Path], tmp_path: Path
) -> None:
    page = console.page
    page.clock.install()  # the console's timers run on a clock the test moves
    console.open()
    console.sign_up()
    console.choose("/video/convert", [media["clip"]], preset="veryslow")
    page.get_by_role("button", name="Upload and convert").click()
    cancel = page.get_by_role("button", name="Cancel clip.mp4")
    cancel.click()
    expect(page.locator("#uploads li.upload").first).to_have_attribute("data-status", "deleted")
    expect(page.locator("#jobs")).to_contain_text("No jobs yet.")

    # The access token is refreshed before it expires (15 minutes): the refresh token turns
    # over, and the API keeps answering.
    before = page.evaluate("sessionStorage.getItem('mediaflow.refresh_token')")
    page.clock.run_for("15:00")
    wait_in_page(
        page,
        lambda: page.evaluate("sessionStorage.getItem('mediaflow.refresh_token')") != before,
        10_000,
    )
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#page-info")).to_have_text("Page 1 of 1 (0 jobs)")

    # A reload keeps the login (the refresh token is in this tab's sessionStorage).
    page.reload()
    expect(page.locator("#work")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#auth")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    page.reload()
    expect(page.locator("#auth")).to_be_visible()


def test_a_phone_sized_window(
    browser: Browser, console_api: ApiProcess, media: dict[str, Path], tmp_path: Path
) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    console = Console(context.new_page(), console_api.url, tmp_path)
    try:
        console.open()
        console.sign_up()
        console.choose("/image/resize", [media["photo"]], width="160")
        (item,), _ = console.upload_and_follow(1)
        expect(item).to_have_attribute("data-status", "completed")
        page = console.page
        # Nothing wider than the window: no sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot = console.screenshot("console-phone.png")
        assert shot.stat().st_size > 10_000
        # Everything is reachable by keyboard: the first control after the skip link is
        # the operation, then its options.
        page.get_by_label("Operation").focus()
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "opt-width"
        assert console.problems == [], console.problems
    finally:
        context.close()
