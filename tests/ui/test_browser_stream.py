"""Streaming in the browser: with the LLM composer, the first verified sentence is on the page while
the model has not yet produced the last one (the fake chat model waits for the test before its last
line), and what was shown stays when the answer completes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from assistant.chat import Assistant
from assistant.settings import Settings
from tests.fakes import first_sentence, make_scripted_chat_model, prompt_passages
from tests.ui.conftest import VIEWPORT, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")]

BOTS = "#chat [data-testid='bot']"


def lines_for(prompt: str) -> list[str]:
    """One supported sentence from each of the first three passages, each citing its passage."""
    return [f"{first_sentence(text)} [{i}]" for i, text in list(prompt_passages(prompt).items())[:3]]


def words(line: str, n: int = 6) -> str:
    return " ".join(line.split("[")[0].split()[:n])


@pytest.fixture
def streaming_app(ui_settings: Settings, real_assistant: Any) -> Iterator[tuple[str, Any, threading.Event]]:
    from assistant.ui.app import build_app
    from assistant.ui.serve import launch_app

    release = threading.Event()
    model = make_scripted_chat_model(lambda p: "\n".join(lines_for(p)), line_delay=0.3, before_last_line=release)
    assistant = Assistant(ui_settings.replace(composer="llm"), embedder=real_assistant.embedder,
                          store=real_assistant.store, chat_model=model)
    demo = build_app(assistant.settings, assistant)
    _, url, _ = launch_app(demo, assistant.settings, host="127.0.0.1", port=free_port(), prevent_thread_lock=True,
                           quiet=True)
    try:
        yield url, model, release
    finally:
        release.set()
        demo.close()


def test_first_sentence_appears_before_the_last_is_generated(browser: Any, streaming_app: Any) -> None:
    url, model, release = streaming_app
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(url)
        page.wait_for_selector("#question textarea")
        page.fill("#question textarea", "Who should supervise peer workers?")
        page.press("#question textarea", "Enter")
        deadline = time.monotonic() + 30
        while not model.prompts and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = lines_for(model.prompts[-1])
        assert len(lines) == 3
        page.wait_for_function("([sel, text]) => { const b = document.querySelectorAll(sel);"
                               " return b.length > 0 && b[b.length - 1].innerText.includes(text); }",
                               arg=[BOTS, words(lines[0])])
        shown = page.locator(BOTS).last.inner_text()
        assert not release.is_set(), "the model has not been allowed to write its last line yet"
        assert words(lines[2]) not in shown, "the last sentence is not generated yet, so it cannot be shown"
        release.set()
        page.wait_for_function("() => document.querySelector('#sources-panel').innerText.includes('[3]')")
        final = page.locator(BOTS).last.inner_text()
        positions = [final.find(words(line)) for line in lines]
        assert all(p >= 0 for p in positions) and positions == sorted(positions), final
        assert shown.strip().split("[1]")[0] in final, "what was shown first is still there"
    finally:
        context.close()
