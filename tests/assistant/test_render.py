"""One rendering module for the CLI text, the UI's Markdown and the Markdown download: author names
(the card's short citation), DOI/URL links, and escaping of user text (HTML and Markdown)."""

from __future__ import annotations

import html
import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from assistant import render
from assistant.types import Answer, Citation
from ingest.cards import Corpus, load_corpus
from ingest.types import Card
from tests.conftest import CORPUS

HOSTILE = "<script>window.__xss=1</script><b>bold</b> <img src=x onerror=alert(1)> **not bold** [x](javascript:1)"
MD = MarkdownIt("commonmark")


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus(CORPUS)


@pytest.fixture(scope="module")
def gates(corpus: Corpus) -> Card:
    return corpus.by_id()["gates-2007"]


def cite(card: Card, n: int = 1, **changes: object) -> Citation:
    """A citation of ``card`` as the composer makes one (short_cite and link from the card)."""
    c = Citation(n=n, card_id=card.id, doi=card.doi, title=card.title, year=card.year, section="summary",
                 quote=card.sections[0].text[:100], authors="; ".join(card.authors), country=card.country,
                 design=card.design, short_cite=card.short_cite, link=card.link)
    return replace(c, **changes)  # type: ignore[arg-type]


def answer_citing(*citations: Citation, question: str = "Who should supervise peer workers?") -> Answer:
    return Answer(question=question, status="answered", answer="Supervise them [1].", citations=list(citations),
                  evidence={"n_sources": len(citations), "designs": {"qualitative": len(citations)}},
                  standalone_question=question)


def inline(md: str) -> str:
    """One paragraph of Markdown rendered to HTML, without the <p> wrapper."""
    out = MD.render(md).strip()
    assert out.startswith("<p>") and out.endswith("</p>"), out
    return out[3:-4]


# ------------------------------------------------------------------------------------------------
# author names: the card's short citation, everywhere

def test_short_cite_rules(gates: Card) -> None:
    assert gates.short_cite == "Gates & Akabas (2007)"
    partial = replace(gates, authors=("Chinman, M.",), year=2008, authors_complete=False)
    assert partial.short_cite == "Chinman et al. (2008)"
    assert replace(gates, authors=("A, B.", "C, D.", "E, F.")).short_cite == "A et al. (2007)"
    assert replace(gates, authors=("Solo, A.",)).short_cite == "Solo (2007)"


def test_every_output_names_a_source_by_its_short_cite(gates: Card, corpus: Corpus) -> None:
    chinman = replace(corpus.by_id()["chinman-2008"], authors=("Chinman, M.",), authors_complete=False)
    answer = answer_citing(cite(gates, 1), cite(chinman, 2))
    outputs = {"chat": render.chat_markdown(answer), "sources": render.sources_markdown(answer, {}),
               "text": render.answer_to_text(answer), "download": render.answer_to_markdown(answer)}
    for name, out in outputs.items():
        assert "Gates &amp; Akabas (2007)" in out or "Gates & Akabas (2007)" in out, name
        assert "Chinman et al. (2008)" in out, name
        assert "Gates et al." not in out, name  # two authors are named, not "et al."
    assert render.card_choice_label(gates) == f"Gates & Akabas (2007) — {gates.title}"
    assert render.card_choice_label(gates, [1, 3]).startswith("[1, 3] Gates & Akabas (2007) — ")


def test_a_citation_without_short_cite_falls_back_to_its_card_id(gates: Card) -> None:
    c = cite(gates, short_cite="")
    assert render.cite_name(c) == "gates-2007 (2007)"
    assert render.reference_line(c).startswith("[1] gates-2007 (2007). ")


def test_the_card_viewer_lists_every_author(gates: Card) -> None:
    assert "Gates, L. B.; Akabas, S. H." in render.card_markdown(gates, {})


# ------------------------------------------------------------------------------------------------
# links: ingest.types.card_link, http(s) only

def test_doi_links_go_through_doi_org(gates: Card) -> None:
    c = cite(gates)
    url = f"https://doi.org/{gates.doi}"
    assert render.citation_link(c) == url
    assert render.citation_link(replace(c, link=None)) == url  # the DOI wins even without a stored link
    assert render.citation_link_markdown(c) == f"[doi:{gates.doi}]({url})"
    assert f'<a href="{url}">doi:{gates.doi}</a>' in MD.render(render.sources_markdown(answer_citing(c), {}))
    assert url in render.reference_line(c) and url in render.answer_to_text(answer_citing(c))
    assert f"[{url}]({url})" in render.card_markdown(gates, {})


def test_url_links_when_there_is_no_doi(gates: Card) -> None:
    url = "https://www.ajpmonline.org/article/S0749-3797(21)00267-1/pdf"
    c = cite(gates, doi=None, link=url)
    assert render.citation_link(c) == url
    assert render.citation_link_markdown(c) == f"[{url}]({url})"  # balanced parentheses are kept
    assert f'href="{url}"' in MD.render(render.citation_link_markdown(c))
    assert render.citation_link_markdown(cite(gates, doi=None, link=None)) == ""


def test_only_http_links_become_links() -> None:
    assert render.link_markdown("x", "javascript:alert(1)") == "x"
    assert render.link_markdown("<b>x</b>", "data:text/html,hi") == "&lt;b&gt;x&lt;/b&gt;"
    assert render.link_markdown("x", "https://a.example/b c") == "x"  # whitespace: not a valid address
    assert render.link_markdown("x", None) == "x"
    assert render.link_markdown("x", "https://a.example/a(b") == "[x](https://a.example/a%28b)"


# ------------------------------------------------------------------------------------------------
# escaping user text (HTML and Markdown)

def test_escape_user_text_is_inert() -> None:
    escaped = render.escape_user_text(HOSTILE)
    assert "<" not in escaped and ">" not in escaped
    rendered = inline(escaped)
    assert not re.search(r"<(?!br)", rendered)  # no tag at all in the output
    assert html.unescape(rendered) == HOSTILE


@pytest.mark.parametrize("text", ["1. not a list", "- not a list", "> not a quote", "# not a heading",
                                  "`not code`", "*not em* _nor this_", "| a | b |", "~~not struck~~",
                                  "[link](https://example.org)", "![img](x.png)", "a\\b", "<https://x.org>"])
def test_markdown_specials_stay_literal(text: str) -> None:
    rendered = inline(render.escape_user_text(text))
    assert "<" not in rendered.replace("&lt;", "") and html.unescape(rendered) == text


@hsettings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=60))
def test_escaped_text_renders_as_itself(text: str) -> None:
    rendered = inline(render.escape_user_text(text))
    assert "<" not in rendered.replace("&lt;", "")
    assert html.unescape(rendered) == text


def test_the_download_escapes_the_question(gates: Card) -> None:
    doc = render.answer_to_markdown(answer_citing(cite(gates), question=HOSTILE))
    heading = MD.render(doc.splitlines()[0]).strip()
    assert heading.startswith("<h1>") and heading.endswith("</h1>")
    assert "<" not in heading[4:-5] and html.unescape(heading[4:-5]) == HOSTILE
    assert "## References" in doc
    plain = render.answer_to_markdown(answer_citing(cite(gates), question="Who should supervise peer workers?"))
    assert plain.startswith("# Who should supervise peer workers?\n")


def test_chat_markdown_escapes_the_rewritten_question(gates: Card) -> None:
    answer = replace(answer_citing(cite(gates, 1), cite(gates, 2)), question="and <b>it</b>?",
                     standalone_question="And <b>it</b>? (follow-up to: Q)")
    text = render.chat_markdown(answer)
    assert "<b>" not in text and "&lt;b&gt;" in text
    assert "Follow-up, read as" in text
    assert "**Sources**" in text and "[2] " in text


def test_sources_and_cards_escape_their_text(corpus: Corpus, gates: Card) -> None:
    md = render.sources_markdown(answer_citing(cite(gates, quote=HOSTILE, title="<i>t</i>")), {})
    assert "<script" not in md and "&lt;script&gt;" in md and "<i>" not in md
    titles = {t.id: t.title for t in corpus.taxonomy.themes.values()}
    for card in corpus.cards:
        text = render.card_markdown(card, titles)
        assert card.title[:30] in html.unescape(text)
        assert "<script" not in text.lower()
        assert text.count("#### ") == len(card.sections)
    hostile_card = replace(gates, title=HOSTILE, sections=(replace(gates.sections[0], text=HOSTILE),))
    assert "<script" not in render.card_markdown(hostile_card, titles)


def test_abstain_banner_and_section_labels() -> None:
    answer = Answer(question="q", status="abstained", answer="No.", nearest_topics=["A <b>", "B", "C", "D"])
    banner = render.abstain_banner(answer)
    assert banner.startswith("**Not covered by the evidence base.**") and "A &lt;b&gt;; B; C." in banner
    assert "D" not in banner.split("example:")[1]
    titles = {"leadership": "Leadership championing"}
    assert render.section_label("leadership/peer-roles: Create roles", titles) == "Leadership championing: Create roles"
    assert render.section_label("summary", titles) == "summary"
