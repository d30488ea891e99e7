"""Fixtures for the chat UI: a live Gradio server over the real index, and headless Chromium.

The browser is Debian's Chromium at /usr/bin/chromium driven by Playwright (never a downloaded
browser). Without it the browser tests are skipped, unless the CI environment variable is set:
then they fail, so CI cannot pass without having run them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from assistant.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def ui_settings(real_index: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The real index, with the feedback log in a temporary folder."""
    return real_index.replace(feedback_path=tmp_path_factory.mktemp("feedback") / "feedback.jsonl")


@pytest.fixture(scope="session")
def ui_server(ui_settings: Settings, real_assistant: Any) -> Iterator[str]:
    """The app on 127.0.0.1 at a free port, in this process; yields its URL."""
    from assistant.ui.app import build_app
    from assistant.ui.serve import launch_app

    demo = build_app(ui_settings, real_assistant)
    _, url, _ = launch_app(demo, ui_settings, host="127.0.0.1", port=free_port(), prevent_thread_lock=True,
                           quiet=True)
    try:
        yield url.rstrip("/") + "/"
    finally:
        demo.close()


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    if not CHROMIUM.exists():
        reason = (f"{CHROMIUM} is missing: install Debian's chromium package (`apt-get install -y chromium`, "
                  "or `make browser`) to run the browser tests")
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI is set, so this is a failure, not a skip)")
        pytest.skip(reason)
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def browser(chromium_executable: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@pytest.fixture
def page(browser: Any, ui_server: str) -> Iterator[Any]:
    """A fresh page (own context: own Gradio session) that may only talk to the local server.

    Any request to another host is aborted and recorded in ``page.external_requests``.
    """
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    external: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        host = urlsplit(url).hostname
        if url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            external.append(url)
            route.abort()

    context.route("**/*", guard)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    pg.external_requests = external
    pg.goto(ui_server)
    pg.wait_for_selector("#question textarea")
    try:
        yield pg
    finally:
        context.close()
