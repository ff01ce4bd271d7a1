"""Browser tests of the console: the session's live server, Debian's Chromium, Playwright.

Playwright for Python drives the system browser (``executable_path``): it never downloads
one. Each test opens its own browser contexts (separate cookie jars: two reviewers are two
contexts). The helpers (sign in and out, screenshots) are in attest_testing.browser.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from attest_testing.support import LiveServer

CHROMIUM = Path(os.environ.get("ATTEST_TEST_CHROMIUM", "/usr/bin/chromium"))
#: Headless and quiet: without the background-networking flags Chromium's own connections
#: (updates, sync) are refused by the closed network and slow every page down.
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


@pytest.fixture(scope="module")
def browser(live: LiveServer) -> Iterator[Any]:
    """Chromium for one test module. Playwright's sync API runs an event loop in this
    thread while it is open, so it opens after the live server (whose set-up runs its own
    loop) and closes at the end of the module, before other modules' fixtures need one."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is absent: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is absent: apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def new_context(browser: Any, live: LiveServer) -> Iterator[Callable[[], Any]]:
    """Open a fresh browser context (its own cookies) on the live server; each page it
    opens fails a test on any JavaScript dialog (an XSS would open one)."""
    opened: list[Any] = []

    def make() -> Any:
        context = browser.new_context(
            base_url=live.base_url, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(15_000)
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()


@pytest.fixture
def page(new_context: Callable[[], Any]) -> Any:
    return new_context().new_page()
