"""Real-browser fixtures: Playwright's sync API driving Debian's chromium.

Playwright's own browser download (`playwright install`) does not work on our
machines, so the tests launch /usr/bin/chromium (Debian's `chromium` package;
.ci/run installs it). Without it the tests skip, except under CI=true, where
they fail.

Pages are Korean by default (`locale="ko-KR"`, as our readers' browsers are);
`make_page(locale="en-US")` gives an English one. Every page made here
records console errors (which is also where chromium reports
Content-Security-Policy violations) and uncaught exceptions: read them with
`errors_of(page)`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import service_missing

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # we run as root, where chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these chromium keeps calling Google hosts it cannot reach.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
TIMEOUT_MS = 10_000

_ERRORS = "_dailyq_errors"


def errors_of(page: Page) -> list[str]:
    """Console errors (CSP violations among them) and uncaught exceptions so far."""
    return list(getattr(page, _ERRORS))


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One headless chromium for all of tests/browser.

    Package scope rather than session scope on purpose: while Playwright's
    sync API is started, the main thread has a running asyncio event loop
    (Playwright's, run in a greenlet), so stopping it as soon as the browser
    tests are done keeps that loop away from every other test.
    """
    if not CHROMIUM.exists():
        service_missing(
            f"{CHROMIUM} is missing: apt-get install --no-install-recommends chromium (or run .ci/run as root)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_missing("playwright is not installed: pip install -r requirements-dev.txt")

    # Django refuses database access from a thread with a running event loop
    # (SynchronousOnlyOperation), and Playwright's sync API leaves one running
    # in the main thread. The live_server thread itself is unaffected, but the
    # tests' own thread touches the database: `live_server` pulls in
    # `transactional_db`, which creates the test database (if no test did
    # before) and flushes the tables after every test. Nothing here is
    # actually async, so lift the check -- only while Playwright runs, so
    # the rest of the suite keeps it. (Playwright with pytest-django needs
    # this; see https://github.com/microsoft/playwright-pytest/issues/29.)
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        # launch() already gives chromium a fresh temporary --user-data-dir
        # and removes it on close.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def make_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Factory: make_page(locale="ko-KR", viewport=DESKTOP, javascript=True, **context_options).

    Each call opens a new browser context (own cookies and storage) with one
    page; all of them close after the test.
    """
    contexts = []

    def make(
        *, locale: str = "ko-KR", viewport: dict | None = None, javascript: bool = True, **context_options
    ) -> Page:
        context = browser.new_context(
            locale=locale,
            viewport=viewport or DESKTOP,
            java_script_enabled=javascript,
            **context_options,
        )
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors: list[str] = []
        setattr(page, _ERRORS, errors)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.append(f"console: {message.text} ({message.location.get('url', '')})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(make_page) -> Page:
    """A Korean desktop page (1280x800)."""
    return make_page()


@pytest.fixture
def phone_page(make_page) -> Page:
    """A Korean phone page: 375x740 CSS pixels at 2x, touch, mobile viewport rules."""
    return make_page(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)


@pytest.fixture
def no_js_page(make_page) -> Page:
    """A Korean desktop page with JavaScript turned off."""
    return make_page(javascript=False)
