"""Browser tests: the gateway under uvicorn on 127.0.0.1 and Debian's Chromium, headless, driven
by Playwright (Python). Playwright never downloads a browser here: it launches the system's
Chromium (``/usr/bin/chromium``, or ``BILLING_GATEWAY_TEST_CHROMIUM``).

Without that browser the tests marked ``browser`` skip with the reason, unless
``BILLING_GATEWAY_REQUIRE_BROWSER=1`` (CI sets it), which makes them fail instead.

The browser reaches nothing but the gateway: every host name resolves to nothing except
127.0.0.1, and each page's context aborts (and records) any request to another origin.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Playwright, Request, Route, WebSocket, sync_playwright

from helpers import ServerThread

CHROMIUM = Path(os.environ.get("BILLING_GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = os.environ.get("BILLING_GATEWAY_REQUIRE_BROWSER", "") not in ("", "0")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # root in containers and CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # No name resolves (no request can leave the machine), except the gateway's address.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
TIMEOUT_MS = 20_000  # the longest any one step (a navigation, a wait for text) may take
VIEWPORT = {"width": 1280, "height": 800}


# Module scope, not session: Playwright's sync API runs an asyncio loop in the main thread while
# it is started, and a later test's anyio.run() there would fail with "Already running asyncio".
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set BILLING_GATEWAY_TEST_CHROMIUM)"
        if REQUIRE_BROWSER:
            pytest.fail(f"BILLING_GATEWAY_REQUIRE_BROWSER is set but there is {reason}")
        pytest.skip(reason)
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # launch() gives the browser a new, empty profile (user data dir) and removes it at close.
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS
    )
    yield browser
    browser.close()


@pytest.fixture
def server(gateway) -> Iterator[ServerThread]:
    """The gateway (the test's database and clock) serving HTTP and WebSocket on 127.0.0.1."""
    with ServerThread(gateway) as running:
        yield running


@dataclass
class Traffic:
    """What a page asked for: every request and WebSocket, and those refused for leaving the
    gateway's origin."""

    origin: str
    requests: list[Request] = field(default_factory=list)
    websockets: list[WebSocket] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def urls(self) -> list[str]:
        return [r.url for r in self.requests] + [ws.url for ws in self.websockets]

    def assert_stayed_home(self) -> None:
        """Every request and WebSocket went to the gateway's host and port, and the page broke
        no rule of its Content-Security-Policy and threw nothing."""
        home = urlsplit(self.origin).netloc
        assert self.refused == []
        assert [u for u in self.urls() if not u.startswith("data:") and urlsplit(u).netloc != home] == []
        assert [
            m for m in self.console_errors if "Content Security Policy" in m or m.startswith("uncaught")
        ] == []


@pytest.fixture
def traffic(server: ServerThread) -> Traffic:
    return Traffic(origin=server.url)


@pytest.fixture
def page(browser: Browser, traffic: Traffic) -> Iterator[Page]:
    """A page in a new browser context (no cookies, storage or cache from another test) that can
    reach the gateway's origin only. Console errors and uncaught exceptions are recorded."""
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)

    def only_the_gateway(route: Route) -> None:
        url = route.request.url
        if url.startswith((traffic.origin + "/", "data:", "blob:")):
            route.continue_()
        else:
            traffic.refused.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", only_the_gateway)
    context.on("request", lambda request: traffic.requests.append(request))
    page = context.new_page()
    page.on("websocket", lambda websocket: traffic.websockets.append(websocket))
    page.on("console", lambda m: traffic.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: traffic.console_errors.append(f"uncaught: {error}"))
    yield page
    context.close()
