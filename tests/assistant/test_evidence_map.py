"""The evidence map: counts equal an independent count over the cards, the CLI writes PNG/HTML/CSV,
the answer's strategies are placed on the map, and a reload after a new card changes the right cell."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest

from assistant import evidence_map as em
from assistant.cli import main
from assistant.types import Answer, StrategyItem
from ingest.cards import Corpus, load_corpus
from tests.conftest import CORPUS, NoEmbedder, make_settings

KIND_COLUMN = {"review": "review", "study": "study", "related-review": "later research",
               "related-study": "later research", "guidance": "guidance"}


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus(CORPUS)


def independent_counts(corpus: Corpus, column: Any) -> dict[tuple[str, str, str], set[str]]:
    """(theme, strategy or "", column) → card ids, counted straight from the card files' sections."""
    out: dict[tuple[str, str, str], set[str]] = {}
    for card in corpus.cards:
        for s in card.sections:
            if s.name != "strategy" or not s.theme:
                continue
            strategy = s.strategy if s.strategy in corpus.taxonomy.themes[s.theme].strategies else ""
            out.setdefault((s.theme, strategy, column(card)), set()).add(card.id)
    return out


def band(year: int) -> str:
    return "<2010" if year < 2010 else "2010-2014" if year < 2015 else "2015-2019" if year < 2020 else "2020+"


COLUMNS = {"kind": lambda c: KIND_COLUMN[c.kind], "design": lambda c: c.design.split(";")[0].strip().lower(),
           "country": lambda c: c.country.strip(), "year": lambda c: band(c.year)}


@pytest.mark.parametrize("by", ["kind", "design", "country", "year"])
def test_counts_equal_an_independent_count(corpus: Corpus, by: str) -> None:
    m = em.build_map(corpus.cards, corpus.taxonomy, by)  # type: ignore[arg-type]
    expected = independent_counts(corpus, COLUMNS[by])
    got = {(r.theme, r.strategy, c): set(m.cell(r.key, c)) for r in m.rows for c in m.columns if m.count(r.key, c)}
    assert got == expected
    assert sum(m.column_totals.values()) == len(corpus.cards)
    assert set(m.columns) == {COLUMNS[by](c) for c in corpus.cards}


def test_rows_follow_the_taxonomy_leadership_first_with_theme_level_rows(corpus: Corpus) -> None:
    m = em.build_map(corpus.cards, corpus.taxonomy, "kind")
    assert m.rows[0].theme == "leadership"
    strategy_rows = [(r.theme, r.strategy) for r in m.rows if r.strategy]
    assert strategy_rows == [(t.id, sid) for t in corpus.taxonomy.themes.values() for sid in t.strategies]
    assert [r.theme for r in m.rows if not r.strategy] == list(corpus.taxonomy.themes)  # the review, theme level
    assert m.cell("leadership/", "review") == ("zeng-2021",)
    assert m.columns == ("review", "study", "later research", "guidance")
    assert em.build_map(corpus.cards, corpus.taxonomy, "year").columns == ("<2010", "2010-2014", "2015-2019", "2020+")
    with pytest.raises(ValueError, match="unknown map columns 'colour'"):
        em.build_map(corpus.cards, corpus.taxonomy, "colour")  # type: ignore[arg-type]


def test_html_table_shows_counts_shades_and_gaps(corpus: Corpus) -> None:
    m = em.build_map(corpus.cards, corpus.taxonomy, "kind")
    table = em.to_html_table(m)
    cells = re.findall(r'<td class="shade-(\d)(?: selected)?" data-row="([^"]+)" data-col="([^"]+)" data-count="(\d+)"', table)
    assert len(cells) == len(m.rows) * len(m.columns)
    for shade, row, col, n in cells:
        assert int(n) == m.count(row, col)
        assert (shade == "0") == (n == "0")  # only an empty cell is unshaded: the gap
    picked = em.to_html_table(m, selected=("leadership/", "review"))
    assert picked.count(" selected") == 1 and 'class="shade-1 selected" data-row="leadership/" data-col="review"' in picked
    assert em.shade(m.max_count, m.max_count) == em.SHADES and em.shade(1, 100) == 1


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_cli_map_writes_png_html_and_csv(tmp_path: Path, corpus: Corpus, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["map", "--corpus", str(CORPUS), "--by", "country", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    m = em.build_map(corpus.cards, corpus.taxonomy, "country")
    assert f"{len(m.gaps)} empty cells" in printed
    png = out / "evidence-map-country.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    page = (out / "evidence-map-country.html").read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and 'id="evidence-map-table"' in page
    with (out / "evidence-map-country.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(m.rows) * len(m.columns)
    expected = independent_counts(corpus, COLUMNS["country"])
    for row in rows:
        ids = set(filter(None, row["card_ids"].split(";")))
        assert int(row["count"]) == len(ids)
        assert ids == expected.get((row["theme"], row["strategy"], row["country"]), set())
    assert main(["map", "--corpus", str(CORPUS), "--out", str(out)]) == 0  # default: kind
    assert (out / "evidence-map-kind.csv").read_text(encoding="utf-8").startswith("theme,strategy,title,kind,")


def test_answer_context_places_each_strategy(corpus: Corpus) -> None:
    title = corpus.taxonomy.strategy_title("support-development", "supervision")
    lines = em.answer_context(corpus.cards, corpus.taxonomy, [
        ("support-development", title), ("support-development", title),  # once only
        ("", "What the studies found"),  # not on the map
        ("leadership", corpus.taxonomy.themes["leadership"].title)])  # theme level
    assert len(lines) == 2
    sup = {c.id for c in corpus.cards for s in c.sections if (s.theme, s.strategy) == ("support-development", "supervision")}
    studies = {c.id for c in corpus.cards if c.kind == "study"}
    n_studies = len(sup & studies)
    assert lines[0].startswith(f"{title}: ") and f"{n_studies} of {len(studies)} studies" in lines[0]
    uk = {c.id for c in corpus.cards if c.country == "UK"}
    assert ("none from the UK" in lines[0]) == (not sup & uk)
    assert lines[1].startswith("Leadership championing (theme level): 1 of 1 review")


def test_answer_text_lists_the_map_context() -> None:
    from assistant.render import answer_to_text

    answer = Answer(question="q", status="answered", answer="A [1].",
                    strategies=[StrategyItem("support-development", "Supervision", "A [1].", [1])])
    assert "On the evidence map" not in answer_to_text(answer)
    text = answer_to_text(answer, map_context=["Supervision: 3 of 35 studies; none from the UK"])
    assert text.endswith("On the evidence map:\n  - Supervision: 3 of 35 studies; none from the UK")


NEW_CARD = """---
id: testauthor-2023
kind: related-study
title: A made-up study of supervision for the map test
authors: ["Testauthor, A."]
year: 2023
venue: Journal of Tests
url: https://example.org/test
country: Norway
setting: test setting
design: qualitative; interviews
participants: peer workers
review_inclusion: n/a
themes: [support-development]
sources: [https://example.org/test]
---
## Summary
A made-up study used only by a test of the evidence map.

## Strategies
### support-development/supervision: Supervisors who know peer work
Peer workers valued supervisors who understood the peer role, in this made-up test study.

## Caveats
Not a real study.
"""


def test_a_new_card_and_a_reload_change_the_right_cell(tmp_path: Path, corpus_copy: Path) -> None:
    """Through the UI handler, over a real Assistant's corpus: reload, and the map follows the corpus."""
    from assistant.chat import Assistant
    from assistant.ui import handlers

    assistant = Assistant(make_settings(tmp_path, corpus_copy, feedback_path=tmp_path / "fb.jsonl"),
                          embedder=NoEmbedder())
    ctx = handlers.PageContext.create(assistant.settings, assistant, download_dir=tmp_path / "dl")
    before = handlers.current_map(ctx, "country")
    (corpus_copy / "related" / "testauthor-2023.md").write_text(NEW_CARD, encoding="utf-8")
    assert handlers.current_map(ctx, "country").cells == before.cells  # not reloaded yet: the loaded corpus
    assistant.reload()
    after = handlers.current_map(ctx, "country")
    key = "support-development/supervision"
    assert after.cell(key, "Norway") == tuple(sorted((*before.cell(key, "Norway"), "testauthor-2023")))
    changed = {k for k in set(before.cells) | set(after.cells) if before.cells.get(k) != after.cells.get(k)}
    assert changed == {(key, "Norway")}
    kind_after = handlers.current_map(ctx, "kind")
    assert "testauthor-2023" in kind_after.cell(key, "later research")
    reply = handlers.map_cell(ctx, "country", handlers.cell_value(key, "Norway"))
    assert isinstance(reply.map_cards, str) and "A made-up study of supervision" in reply.map_cards
    assert ("[" not in reply.map_question) and reply.map_question == \
        "What does the evidence say about supervision that understands the peer role?"


def test_map_handlers_list_exactly_the_cells_cards(tmp_path: Path, corpus: Corpus) -> None:
    from assistant.ui import handlers, texts

    class Stub:
        def __init__(self) -> None:
            self.corpus = corpus

    ctx = handlers.PageContext.create(make_settings(tmp_path), Stub(), download_dir=tmp_path / "dl")  # type: ignore[arg-type]
    view = handlers.map_view(ctx, "design")
    m = em.build_map(corpus.cards, corpus.taxonomy, "design")
    assert isinstance(view.map_cells, list) and len(view.map_cells) == len(m.rows) * len(m.columns)
    key, col = "organizational-preparation/role-definition", "qualitative"
    reply = handlers.map_cell(ctx, "design", handlers.cell_value(key, col))
    assert isinstance(reply.map_card_choices, list)
    assert [cid for _, cid in reply.map_card_choices] == list(m.cell(key, col))
    gap_row, gap_col = m.gaps[0]
    assert texts.MAP_GAP in str(handlers.map_cell(ctx, "design", handlers.cell_value(gap_row, gap_col)).map_cards)
    assert handlers.map_cell(ctx, "design", "nonsense").map_question == ""
    opened = handlers.map_open_card(ctx, m.cell(key, col)[0])
    assert opened.tab == "chat" and opened.card_open is True and "Card id:" in str(opened.card_view)


def test_the_sources_panel_says_where_the_answer_sits_on_the_map(tmp_path: Path, corpus: Corpus) -> None:
    from assistant.ui import handlers
    from assistant.ui.state import ChatState

    title = corpus.taxonomy.strategy_title("support-development", "supervision")

    class Stub:
        def __init__(self) -> None:
            self.corpus = corpus

        def ask(self, question: str, history: Any = None, theme: Any = None) -> Answer:
            return Answer(question=question, status="answered", answer="A.",
                          strategies=[StrategyItem("support-development", title, "A.", [])])

    ctx = handlers.PageContext.create(make_settings(tmp_path), Stub(), download_dir=tmp_path / "dl")  # type: ignore[arg-type]
    reply = handlers.ask(ctx, ChatState(), "Who should supervise peer workers?", "all")
    expected = em.answer_context(corpus.cards, corpus.taxonomy, [("support-development", title)])
    assert isinstance(reply.sources, str) and "**On the evidence map**" in reply.sources
    assert expected[0] in reply.sources


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_to_gradio_switches_tabs_and_fills_the_map_pickers() -> None:
    from dataclasses import fields

    from assistant.ui.app import Page, to_gradio
    from assistant.ui.state import Reply

    page = Page(**{f.name: f"<{f.name}>" for f in fields(Page)})
    out = to_gradio(Reply(tab="chat", map_cells=[("a", "b")], map_question="", map_html="<table/>"), page)
    assert out["<tabs>"]["selected"] == "chat"
    assert out["<map_cell>"]["choices"] == [("a", "b")] and out["<map_cell>"]["value"] is None
    assert out["<map_ask>"]["interactive"] is False and out["<map_html>"] == "<table/>"
    asking = to_gradio(Reply(map_question="What does the evidence say about x?"), page)["<map_ask>"]
    assert asking["interactive"] is True and asking["value"].endswith("What does the evidence say about x?")
