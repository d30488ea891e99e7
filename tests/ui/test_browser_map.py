"""The evidence map tab in headless Chromium: the table's counts equal the corpus (counted here,
independently of assistant.evidence_map), choosing a cell lists exactly its cards, a card opens in the
card viewer, and the ask button asks the chat about the strategy."""

from __future__ import annotations

from typing import Any

import pytest

from assistant.settings import Settings
from ingest.cards import load_corpus

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")]

KIND = {"review": "review", "study": "study", "related-review": "later research", "related-study": "later research",
        "guidance": "guidance"}


def expected_cells(settings: Settings, column: Any) -> dict[tuple[str, str], set[str]]:
    """("theme/strategy" or "theme/", column) → card ids, straight from the cards' strategy sections."""
    corpus = load_corpus(settings.index.corpus_dir)
    out: dict[tuple[str, str], set[str]] = {}
    for card in corpus.cards:
        for s in card.sections:
            if s.name == "strategy" and s.theme:
                sid = s.strategy if s.strategy in corpus.taxonomy.themes[s.theme].strategies else ""
                out.setdefault((f"{s.theme}/{sid}", column(card)), set()).add(card.id)
    return out


def open_map(page: Any) -> None:
    page.get_by_role("tab", name="Evidence map").click()
    page.wait_for_selector("#evidence-map-table td[data-count]")


def shown_cells(page: Any) -> dict[tuple[str, str], int]:
    cells = page.eval_on_selector_all(
        "#evidence-map-table td[data-count]",
        "tds => tds.map(td => [td.dataset.row, td.dataset.col, td.innerText.trim()])")
    return {(row, col): 0 if text == "—" else int(text) for row, col, text in cells}


def choose_cell(page: Any, label_start: str) -> None:
    page.click("#map-cell input")
    page.fill("#map-cell input", label_start)
    page.locator("#map-cell [role=option]").filter(has_text=label_start).first.click()


def test_map_tab_counts_equal_the_corpus(page: Any, ui_settings: Settings) -> None:
    open_map(page)
    shown = shown_cells(page)
    expected = expected_cells(ui_settings, lambda c: KIND[c.kind])
    assert {k: n for k, n in shown.items() if n} == {k: len(v) for k, v in expected.items()}
    assert {col for _, col in shown} == {"review", "study", "later research", "guidance"}
    assert any(n == 0 for n in shown.values())  # gaps are shown, as —
    gap = page.locator("#evidence-map-table td.shade-0").first
    assert gap.inner_text().strip() == "—" and gap.is_visible()
    # another set of columns: by country
    page.locator("#map-by").get_by_text("Country").click()
    page.wait_for_selector("#evidence-map-table th[data-col='Norway']")
    shown = shown_cells(page)
    expected = expected_cells(ui_settings, lambda c: c.country.strip())
    assert {k: n for k, n in shown.items() if n} == {k: len(v) for k, v in expected.items()}
    assert page.external_requests == []


def test_a_cell_lists_exactly_its_cards_and_one_opens_in_the_viewer(page: Any, ui_settings: Settings) -> None:
    open_map(page)
    corpus = load_corpus(ui_settings.index.corpus_dir)
    title = corpus.taxonomy.strategy_title("support-development", "supervision")
    expected = expected_cells(ui_settings, lambda c: KIND[c.kind])[("support-development/supervision", "study")]
    choose_cell(page, f"{title} × study")
    page.wait_for_selector(f"#map-cards :text('{title} × study: {len(expected)} card(s)')")
    picked = page.locator("#evidence-map-table td.selected")
    assert picked.count() == 1 and picked.get_attribute("data-row") == "support-development/supervision"
    assert picked.get_attribute("data-col") == "study" and picked.inner_text().strip() == str(len(expected))
    listed = page.locator("#map-cards li")
    assert listed.count() == len(expected)
    cards = {c.id: c for c in corpus.cards}
    text = page.inner_text("#map-cards")
    for cid in expected:
        assert cards[cid].title[:40] in text
    page.click("#map-card-picker input")
    options = page.locator("#map-card-picker [role=option]")
    assert options.count() == len(expected)
    first = min(expected)
    options.filter(has_text=cards[first].title[:40]).first.click()
    page.wait_for_selector("#card-viewer :text('Card id:')")
    viewer = page.inner_text("#card-viewer")
    assert cards[first].title[:40] in viewer and first in viewer
    assert page.locator("#question textarea").is_visible()  # back on the chat tab


def test_the_ask_button_asks_the_chat_about_the_strategy(page: Any) -> None:
    open_map(page)
    assert page.locator("#map-ask").is_disabled()
    choose_cell(page, "Supervision that understands the peer role × guidance")
    page.wait_for_selector("#map-ask:not([disabled])")
    page.click("#map-ask")
    page.wait_for_function(
        """() => document.querySelectorAll("#chat [data-testid='bot']").length > 0
                 && !document.querySelector('#chat').innerText.includes('Searching the evidence')""")
    assert page.locator("#chat [data-testid='user']").last.inner_text().strip() == \
        "What does the evidence say about supervision that understands the peer role?"
    page.wait_for_selector("#sources-panel :text('On the evidence map')")
    assert "Supervision that understands the peer role:" in page.inner_text("#sources-panel")


def test_clicking_a_table_cell_picks_it(page: Any, ui_settings: Settings) -> None:
    open_map(page)
    key, col = "organizational-preparation/role-definition", "guidance"
    expected = expected_cells(ui_settings, lambda c: KIND[c.kind])[(key, col)]
    page.click(f"#evidence-map-table td[data-row='{key}'][data-col='{col}']")
    page.wait_for_selector(f"#map-cards :text('× {col}: {len(expected)} card(s)')")
    assert page.locator("#map-cards li").count() == len(expected)
    assert page.locator("#map-cell input").input_value().startswith("Clear role definition and job descriptions × guidance")
    picked = page.locator("#evidence-map-table td.selected")
    assert picked.get_attribute("data-row") == key and picked.get_attribute("data-col") == col
    assert page.locator("#map-ask").is_enabled()
    # the table is drawn again with the outline: a second click still works
    page.click("#evidence-map-table td[data-row='leadership/'][data-col='review']")
    page.wait_for_selector("#map-cards :text('Leadership championing (theme level) × review: 1 card(s)')")
    assert page.locator("#evidence-map-table td.selected").get_attribute("data-row") == "leadership/"
