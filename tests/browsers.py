"""Headless Chromium for the admin's browser tests, driven by Playwright's sync API.

Chromium comes from the system (Debian's ``chromium`` package; ``MC_CHROMIUM``
points elsewhere); Playwright never downloads a browser here. Without them a
test is skipped on a developer machine, and fails when ``CI`` is set.
Screenshots go to ``MC_TEST_ARTIFACTS`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests import backends

CHROMIUM = os.environ.get("MC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(
    os.environ.get("MC_TEST_ARTIFACTS") or Path(__file__).resolve().parent.parent / "test-artifacts"
)
#: The widths the admin must be usable at, and its two themes.
WIDTHS = (1400, 800)
THEMES = ("light", "dark")


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -e '.[dev]'"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium not found at {CHROMIUM}: apt-get install chromium (or set MC_CHROMIUM)"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched Chromium; skips the test without one, fails it under ``CI``."""
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}. CI must run the browser tests, not skip them.")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread, so Django takes the
    # test's own (synchronous) database calls for calls from async code.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: Any, username: str, password: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")


def screenshot(page: Any, name: str) -> Path:
    """Save the whole page as ``admin-<name>-<backend>.png`` in the artifacts folder."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    backend = backends.requested() or "sqlite"
    path = ARTIFACTS / f"admin-{name}-{backend}.png"
    page.screenshot(path=path, full_page=True)
    return path


def screenshots(page: Any, name: str) -> list[Path]:
    """Screenshots of the page as it is now, at each width in each theme
    (``<name>-1400-light`` ...); the page's own width and theme are put back."""
    viewport = page.viewport_size
    taken = []
    try:
        for theme in THEMES:
            page.emulate_media(color_scheme=theme)
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": viewport["height"]})
                taken.append(screenshot(page, f"{name}-{width}-{theme}"))
    finally:
        page.emulate_media(color_scheme="light")
        page.set_viewport_size(viewport)
    return taken


def expect(locator: Any, message: str | None = None) -> Any:
    from playwright.sync_api import expect

    return expect(locator, message)
