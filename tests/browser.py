"""Open report files in Debian's headless Chromium and record what they do.

Playwright drives the system browser at /usr/bin/chromium; ``playwright install`` (which
downloads browsers) is never needed. A :class:`Visit` keeps every console message, uncaught
page error and request of one page, so a test can assert the report stayed silent and offline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# we run as root (no sandbox) and offline: without the networking flags chromium phones home
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "reports" / "browser"


def require_chromium() -> None:
    """Skip when Chromium or playwright is missing; fail instead under CI, which must run these."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright is not installed (pip install -e '.[dev]')")
    if not missing:
        return
    reason = "browser tests need Chromium and playwright: " + "; ".join(missing)
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so they may not be skipped", pytrace=False)
    pytest.skip(reason)


def launch(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)


@dataclass
class Visit:
    """One page opened on a local file, with everything it logged and fetched."""

    page: object
    path: Path
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.path.resolve().as_uri()

    @property
    def console_errors(self) -> list[str]:
        return [text for kind, text in self.console if kind == "error"]

    @property
    def foreign_requests(self) -> list[str]:
        """Every request but the report file itself; data: URLs are inline, so they are allowed."""
        return [url for url in self.requests if url != self.url and not url.startswith("data:")]

    def assert_quiet(self) -> None:
        assert self.errors == [], f"uncaught errors in {self.url}: {self.errors}"
        assert self.console_errors == [], f"console errors in {self.url}: {self.console_errors}"
        assert self.foreign_requests == [], f"{self.url} requested {self.foreign_requests}"


def visit(browser, path: Path) -> Visit:
    """Open ``path`` in a fresh context (so nothing is shared between reports) and watch it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    seen = Visit(page=page, path=path)
    page.on("console", lambda message: seen.console.append((message.type, message.text)))
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    page.on("request", lambda request: seen.requests.append(request.url))
    page.goto(seen.url, wait_until="load")
    return seen


def close(seen: Visit) -> None:
    seen.page.context.close()


def open_all_details(page) -> int:
    """Click every closed <details> summary in document order (parents before the ones inside)."""
    opened = 0
    details = page.locator("details")
    for index in range(details.count()):
        item = details.nth(index)
        if item.evaluate("d => d.open"):
            continue
        summary = item.locator(":scope > summary")
        summary.scroll_into_view_if_needed()
        summary.click()
        assert item.evaluate("d => d.open"), f"<details> #{index} did not open on click"
        opened += 1
    return opened


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
