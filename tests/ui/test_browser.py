"""The chat UI in headless Chromium: ask, read cited answers and sources, open cards, follow up,
hostile input, crisis and abstain banners, feedback and download."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from assistant.feedback import read_feedback
from assistant.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")]

BOTS = "#chat [data-testid='bot']"
USERS = "#chat [data-testid='user']"
PENDING = "Searching the evidence"


def ask(page: Any, text: str) -> str:
    """Type a question, send it, wait for the reply; returns the reply's text."""
    before = page.locator(BOTS).count()
    page.fill("#question textarea", text)
    page.press("#question textarea", "Enter")
    page.wait_for_function(
        """([sel, n, pending]) => document.querySelectorAll(sel).length > n
             && !document.querySelector('#chat').innerText.includes(pending)""",
        arg=[BOTS, before, PENDING])
    return page.locator(BOTS).last.inner_text()


def test_first_visit_shows_examples_and_loads_nothing_from_outside(page: Any) -> None:
    chat = page.locator("#chat")
    assert "Ask about introducing or supporting peer workers" in chat.inner_text()
    for example in ("Who should supervise peer workers?", "What should we do before our first peer worker starts?"):
        assert page.get_by_text(example).first.is_visible()
    assert "Sources appear here" in page.inner_text("#sources-panel")
    assert page.locator("#theme-filter input").input_value() == "All themes"
    assert page.external_requests == []


def test_example_click_answers_it(page: Any) -> None:
    page.get_by_text("Who should supervise peer workers?").first.click()
    page.wait_for_function("""(p) => document.querySelectorAll("#chat [data-testid='bot']").length > 0
                                     && !document.querySelector('#chat').innerText.includes(p)""", arg=PENDING)
    assert page.locator(USERS).last.inner_text().strip() == "Who should supervise peer workers?"
    assert re.search(r"\[1\]", page.locator(BOTS).last.inner_text())


def test_cited_answer_with_sources_panel_card_viewer_and_download(page: Any) -> None:
    reply = ask(page, "What should we do before our first peer worker starts?")
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", reply)}
    assert markers, reply
    sources = page.inner_text("#sources-panel")
    for n in markers:  # every marker resolves to a listed source
        assert f"[{n}] " in sources
    assert "doi:" in sources
    assert page.locator("#sources-panel blockquote").count() >= len(markers)  # the quoted passages
    assert page.locator("#sources-panel a[href^='https://doi.org/']").count() >= 1
    assert not page.locator("#crisis-banner").is_visible()

    # open the first cited card in the card viewer
    page.click("#card-picker input")
    option = page.locator("#card-picker [role=option]").first
    label = option.inner_text()
    assert label.startswith("[1")
    option.click()
    page.wait_for_selector("#card-viewer :text('Summary')")
    viewer = page.inner_text("#card-viewer")
    title = label.split(" — ", 1)[1].strip()
    assert title[:40] in viewer
    assert "Design:" in viewer and "Card id:" in viewer

    # download the answer as Markdown with its references
    with page.expect_download() as info:
        page.click("#download-answer")
    text = Path(info.value.path()).read_text(encoding="utf-8")
    assert text.startswith("# What should we do before our first peer worker starts?")
    assert "## References" in text and "[1] " in text
    assert page.external_requests == []


def test_follow_up_uses_the_earlier_question(page: Any) -> None:
    ask(page, "Who should supervise peer workers?")
    reply = ask(page, "and what about training?")
    assert "Follow-up, read as:" in reply
    assert "follow-up to: Who should supervise peer workers?" in reply
    assert re.search(r"\[\d+\]", reply)


def test_user_text_is_shown_literally_never_run(page: Any) -> None:
    hostile = "<script>window.__xss=1</script><b>bold</b> <img src=x onerror=window.__xss=2> **not bold**"
    ask(page, hostile)
    user = page.locator(USERS).last
    assert user.inner_text().strip() == hostile
    assert user.locator("script, b, img, strong").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_crisis_message_shows_the_banner(page: Any) -> None:
    reply = ask(page, "My peer worker told me she wants to kill herself tonight")
    banner = page.locator("#crisis-banner")
    assert banner.is_visible()
    assert "Please read this first" in banner.inner_text()
    assert "emergency number" in reply
    assert "routed to crisis information" in page.inner_text("#sources-panel")
    # the banner goes away with the next ordinary answer
    ask(page, "Who should supervise peer workers?")
    assert not page.locator("#crisis-banner").is_visible()


def test_out_of_scope_question_shows_the_abstain_banner(page: Any) -> None:
    ask(page, "Write me a poem about cats")
    banner = page.locator("#abstain-banner")
    assert banner.is_visible()
    assert "Not covered by the evidence base" in banner.inner_text()


def test_too_long_question_is_refused(page: Any, ui_settings: Settings) -> None:
    reply = ask(page, "peer support " * (ui_settings.scope.max_question_chars // 12 + 10))
    assert f"the limit is {ui_settings.scope.max_question_chars:,}" in reply


def test_feedback_is_saved(page: Any, ui_settings: Settings) -> None:
    page.click("#thumbs-up")  # nothing to rate yet
    page.wait_for_selector("#feedback-status :text('Ask a question first')")
    ask(page, "Who should supervise peer workers?")
    page.fill("#feedback-comment textarea, #feedback-comment input", "browser-test comment <b>x</b>")
    page.click("#thumbs-down")
    page.wait_for_selector("#feedback-status :text('feedback on the latest answer was saved')")
    entries = [e for e in read_feedback(ui_settings.feedback_file) if e["comment"] == "browser-test comment <b>x</b>"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["rating"] == "down" and entry["status"] == "answered"
    assert entry["question"] == "Who should supervise peer workers?"
    assert entry["citations"] and entry["settings_hash"] == ui_settings.settings_hash()
    assert page.locator("#feedback-comment textarea, #feedback-comment input").input_value() == ""


def test_new_conversation_resets_the_page(page: Any) -> None:
    ask(page, "Who should supervise peer workers?")
    assert page.locator("#download-answer").is_enabled()
    page.click("#new-conversation")
    page.wait_for_function("(sel) => document.querySelectorAll(sel).length === 0", arg=BOTS)
    page.wait_for_selector("#sources-panel :text('Sources appear here')")
    assert page.locator("#download-answer").is_disabled()
    reply = ask(page, "and what about training?")  # no earlier question is context any more
    assert "Follow-up, read as:" not in reply
