"""Section-aware splitting and content-addressed passage ids."""

from __future__ import annotations

import dataclasses
import re

import pytest

from assistant.settings import Settings
from ingest.types import QUESTION_SECTION, Card, Passage
from ingest.cards import Corpus, load_corpus
from ingest.split import (
    from_metadata,
    passage_id,
    split_card,
    split_corpus,
    split_sentences,
    to_metadata,
)
from tests.conftest import CORPUS

SPLITS = [(800, 100), (400, 50), (300, 0)]


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus(CORPUS)


def _long_card(card: Card, n_sentences: int = 40) -> Card:
    """The card with its Caveats made long enough to need several passages."""
    sentences = " ".join(f"Sentence number {i} says something about peer supervision in site {i}."
                         for i in range(n_sentences))
    sections = tuple(dataclasses.replace(s, text=f"{s.text}\n\n{sentences}") if s.name == "caveats" else s
                     for s in card.sections)
    return dataclasses.replace(card, sections=sections)


def _uncovered(text: str, pieces: list[str]) -> str:
    """The characters of ``text`` that no piece covers (pieces are found in order, overlaps allowed)."""
    covered = [False] * len(text)
    start = 0
    for piece in pieces:
        found = text.find(piece, start)
        assert found >= 0, piece[:80]
        covered[found:found + len(piece)] = [True] * len(piece)
        start = found + 1
    return "".join(ch for ch, c in zip(text, covered) if not c).strip()


# ------------------------------------------------------------------------------------------------
# Passages and sections


def _text(passages: list[Passage]) -> list[Passage]:
    """The passages of card text (curated questions are keys to them, tested on their own below)."""
    return [p for p in passages if p.section != QUESTION_SECTION]


def test_question_passages_point_at_a_section_of_their_card(corpus: Corpus) -> None:
    with_questions = [c for c in corpus.cards if c.questions]
    assert len(with_questions) >= 50
    for card in with_questions:
        passages = split_card(card)
        sections = {s.heading: s for s in card.sections}
        questions = [p for p in passages if p.section == QUESTION_SECTION]
        assert [(p.heading, p.text) for p in questions] == list(card.questions)
        assert [p.ordinal for p in passages] == list(range(len(passages)))  # questions come after the text
        for p in questions:
            section = sections[p.heading]
            assert (p.theme, p.strategy, p.strategy_title) == (section.theme, section.strategy, section.title)
            assert p.embed_text() == p.text
        assert len({p.id for p in passages}) == len(passages)


@pytest.mark.parametrize("chunk_size, chunk_overlap", SPLITS)
def test_passages_never_cross_a_section(corpus: Corpus, chunk_size: int, chunk_overlap: int) -> None:
    by_id = corpus.by_id()
    passages = _text(split_corpus(corpus.cards, chunk_size, chunk_overlap))
    assert len({p.card_id for p in passages}) == len(corpus.cards)
    for p in passages:
        card = by_id[p.card_id]
        containing = [s for s in card.sections if p.text in s.text]
        assert len(containing) == 1, (p.card_id, p.text[:80], [s.heading for s in containing])
        (section,) = containing
        assert (p.heading, p.section, p.theme, p.strategy, p.strategy_title) == (
            section.heading, section.name, section.theme, section.strategy, section.title)


@pytest.mark.parametrize("chunk_size, chunk_overlap", SPLITS + [(200, 20)])
def test_passages_cover_every_section_in_order(corpus: Corpus, chunk_size: int, chunk_overlap: int) -> None:
    for card in corpus.cards:
        passages = _text(split_card(card, chunk_size, chunk_overlap))
        assert [p.ordinal for p in passages] == list(range(len(passages)))
        # Passages follow the card's section order and every section has at least one passage.
        headings = [p.heading for p in passages]
        assert list(dict.fromkeys(headings)) == [s.heading for s in card.sections]
        for section in card.sections:
            pieces = [p.text for p in passages if p.heading == section.heading]
            assert all(piece in section.text for piece in pieces)
            if len(section.text) <= chunk_size:
                assert pieces == [section.text]
            else:
                # Together the pieces cover the whole section: nothing is lost between or at the edges.
                assert len(pieces) > 1
                assert _uncovered(section.text, pieces) == "", (card.id, section.heading)


def test_strategy_passages_carry_theme_and_strategy(corpus: Corpus) -> None:
    passages = _text(split_corpus(corpus.cards))
    strategy = [p for p in passages if p.section == "strategy"]
    other = [p for p in passages if p.section != "strategy"]
    assert strategy and other
    for p in strategy:
        assert p.theme in corpus.taxonomy.themes
        if p.strategy is None:  # a theme-level heading (e.g. the review, whose abstract names themes only)
            assert p.heading.startswith(f"{p.theme}: "), p.heading
            continue
        assert p.strategy in corpus.taxonomy.themes[p.theme].strategies
        assert p.heading.startswith(f"{p.theme}/{p.strategy}: ")
        assert p.strategy_title and p.heading.endswith(p.strategy_title)
    assert any(p.strategy is None for p in strategy) and any(p.strategy for p in strategy)
    assert all(p.theme is None and p.strategy is None and p.strategy_title is None for p in other)
    assert {p.section for p in other} == {"summary", "caveats"}
    # The metadata the vector store gets keeps them too, and reads back to the same passage.
    for p in strategy[:20] + other[:20]:
        meta = to_metadata(p)
        assert meta["theme"] == (p.theme or "") and meta["strategy"] == (p.strategy or "")
        assert all(v is not None and isinstance(v, (str, int, float, bool)) for v in meta.values())
        back = from_metadata(meta)
        assert (back.id, back.card_id, back.text, back.theme, back.strategy, back.ordinal) == (
            p.id, p.card_id, p.text, p.theme, p.strategy, p.ordinal)


@pytest.mark.parametrize("chunk_size, chunk_overlap", [(200, 0), (300, 50), (800, 100)])
def test_long_sections_are_split_under_chunk_size(corpus: Corpus, chunk_size: int, chunk_overlap: int) -> None:
    card = _long_card(corpus.by_id()["gates-2007"])
    caveats = next(s for s in card.sections if s.name == "caveats")
    assert len(caveats.text) > 3 * chunk_size
    passages = [p for p in split_card(card, chunk_size, chunk_overlap) if p.section == "caveats"]
    assert len(passages) >= len(caveats.text) // chunk_size
    assert all(0 < len(p.text) <= chunk_size for p in passages)
    assert all(p.text in caveats.text for p in passages)
    # Together the pieces cover the section's text: nothing but whitespace is left out.
    assert _uncovered(caveats.text, [p.text for p in passages]) == ""
    # The real corpus at the default settings: no passage is longer than chunk_size either.
    assert max(len(p.text) for p in split_corpus(corpus.cards, chunk_size, chunk_overlap)) <= chunk_size


def test_overlap_is_shared_between_neighbouring_pieces(corpus: Corpus) -> None:
    card = _long_card(corpus.by_id()["gates-2007"], n_sentences=60)

    def pairs(overlap: int) -> list[tuple[str, str]]:
        """Neighbouring pieces inside the added paragraph (overlap never reaches across paragraphs)."""
        pieces = [p.text for p in split_card(card, 300, overlap) if p.section == "caveats"]
        out = [(a, b) for a, b in zip(pieces, pieces[1:]) if a.startswith("Sentence number")]
        assert len(out) > 5
        return out

    # With an overlap the next piece starts with text the previous one ended with; without, never.
    assert all(b[:25] in a for a, b in pairs(120))
    assert not any(b[:25] in a for a, b in pairs(0))


def test_long_sections_are_cut_at_sentence_ends_not_abbreviations(corpus: Corpus) -> None:
    passages = split_corpus(corpus.cards, 200, 20)
    fragments = [p.text for p in passages if re.search(r"\bet al\.$|\be\.g\.$|\b[A-Z]\.$", p.text)]
    assert fragments == []


# ------------------------------------------------------------------------------------------------
# Content-addressed ids


def test_ids_are_deterministic_and_unique(corpus: Corpus) -> None:
    first = split_corpus(corpus.cards)
    again = split_corpus(load_corpus(CORPUS).cards)
    assert [p.id for p in first] == [p.id for p in again]
    assert len({p.id for p in first}) == len(first)
    assert all(re.fullmatch(r"[0-9a-f]{64}", p.id) for p in first)
    p = first[0]
    assert p.id == passage_id(p.card_id, p.heading, p.text, p.meta)


def test_id_changes_with_the_text_of_its_section_only(corpus: Corpus) -> None:
    card = corpus.by_id()["gates-2007"]
    before = _text(split_card(card))
    sections = list(card.sections)
    i = next(i for i, s in enumerate(sections) if s.name == "strategy")
    sections[i] = dataclasses.replace(sections[i], text=sections[i].text + " One more sentence.")
    after = _text(split_card(dataclasses.replace(card, sections=tuple(sections))))
    changed = {(a.heading, a.id != b.id) for a, b in zip(before, after)}
    assert changed == {(s.heading, s.heading == sections[i].heading) for s in card.sections}


@pytest.mark.parametrize("field, value", [
    ("title", "A different title"),
    ("year", 2008),
    ("authors", ("Gates, L. B.",)),
    ("doi", "10.1007/other"),
    ("design", "mixed methods; surveys"),
    ("review_inclusion", "possible"),
])
def test_id_changes_when_card_metadata_changes(corpus: Corpus, field: str, value: object) -> None:
    card = corpus.by_id()["gates-2007"]
    before = split_card(card)
    after = split_card(dataclasses.replace(card, **{field: value}))
    assert [p.text for p in before] == [p.text for p in after]
    assert not {p.id for p in before} & {p.id for p in after}


def test_id_ignores_what_the_passage_does_not_carry(corpus: Corpus) -> None:
    card = corpus.by_id()["gates-2007"]
    before = [p.id for p in split_card(card)]
    changed = dataclasses.replace(card, sources=("https://example.org/x",), content_hash="0" * 64)
    assert [p.id for p in split_card(changed)] == before


def test_id_depends_on_the_card_and_heading() -> None:
    base = passage_id("a-2001", "Summary", "text", {"title": "t"})
    assert base != passage_id("b-2001", "Summary", "text", {"title": "t"})
    assert base != passage_id("a-2001", "Caveats", "text", {"title": "t"})
    assert base != passage_id("a-2001", "Summary", "text.", {"title": "t"})
    assert base != passage_id("a-2001", "Summary", "text", {"title": "u"})
    assert base == passage_id("a-2001", "Summary", "text", {"title": "t"})


def test_ids_differ_between_chunk_settings(corpus: Corpus) -> None:
    card = _long_card(corpus.by_id()["gates-2007"])
    assert {p.id for p in split_card(card, 800, 100)} != {p.id for p in split_card(card, 400, 100)}


# ------------------------------------------------------------------------------------------------
# Sentences


@pytest.mark.parametrize("text, expected", [
    ("Peers help. Managers agree.", ["Peers help.", "Managers agree."]),
    ("Peer roles, e.g. support workers, grew. Then funding fell.",
     ["Peer roles, e.g. support workers, grew.", "Then funding fell."]),
    ("Chinman et al. (2008) trained peers. Training helped.",
     ["Chinman et al. (2008) trained peers.", "Training helped."]),
    ("Work by Gillard et al. Found in London. Done.", ["Work by Gillard et al. Found in London.", "Done."]),
    ("Gates, L. B. and Akabas, S. H. ran focus groups. Then they wrote it up.",
     ["Gates, L. B. and Akabas, S. H. ran focus groups.", "Then they wrote it up."]),
    ("Roles differ, i.e. peers share experience. Dr. Smith agreed! Why? Because.",
     ["Roles differ, i.e. peers share experience.", "Dr. Smith agreed!", "Why?", "Because."]),
    ("Sites had 27 staff. 12 were peers.", ["Sites had 27 staff.", "12 were peers."]),
    ('He said "Peers matter." Then he left.', ['He said "Peers matter."', "Then he left."]),
    ("First paragraph ends here\n\nSecond paragraph. Third sentence.",
     ["First paragraph ends here", "Second paragraph.", "Third sentence."]),
    ("no capital after the dot. so one sentence.", ["no capital after the dot. so one sentence."]),
    ("", []),
    ("   \n\n  ", []),
])
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_split_sentences_returns_exact_substrings_of_real_cards(corpus: Corpus) -> None:
    n = 0
    for card in corpus.cards:
        for section in card.sections:
            sentences = split_sentences(section.text)
            assert sentences, section.heading
            position = 0
            for sentence in sentences:
                found = section.text.find(sentence, position)
                assert found >= 0, (card.id, sentence)
                assert section.text[position:found].strip() == ""  # nothing skipped between sentences
                position = found + len(sentence)
                n += 1
            assert section.text[position:].strip() == ""
            # No sentence ends on a known abbreviation or an initial.
            assert not any(re.search(r"\b(?:et al|e\.g|i\.e)\.$", s) for s in sentences[:-1]), card.id
    assert n > 500


# ------------------------------------------------------------------------------------------------
# Bad parameters


@pytest.mark.parametrize("chunk_size, chunk_overlap", [(300, 300), (300, 500), (200, 201)])
def test_overlap_not_smaller_than_size_is_refused(corpus: Corpus, chunk_size: int, chunk_overlap: int) -> None:
    card = corpus.by_id()["gates-2007"]
    with pytest.raises(ValueError) as info:
        split_card(card, chunk_size, chunk_overlap)
    assert f"chunk_overlap ({chunk_overlap})" in str(info.value)
    assert f"chunk_size ({chunk_size})" in str(info.value)
    with pytest.raises(ValueError, match=re.escape(f"chunk_overlap ({chunk_overlap})")):
        split_corpus([card], chunk_size, chunk_overlap)
    # The settings object refuses the same combination, naming the values.
    with pytest.raises(ValueError, match=re.escape(f"chunk_size ({chunk_size})")):
        Settings(chunk_size=chunk_size, chunk_overlap=chunk_overlap)


def test_passage_is_our_own_type(corpus: Corpus) -> None:
    passages = split_card(corpus.by_id()["gates-2007"])
    assert passages and all(type(p) is Passage for p in passages)
    assert all(p.meta["title"] == corpus.by_id()["gates-2007"].title and p.meta["year"] == 2007 for p in passages)
    assert all(p.embed_text().endswith(p.text) for p in passages)
