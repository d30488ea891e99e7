"""Guards on the evidence corpus itself: valid, complete, traceable, honest."""

from __future__ import annotations

import re
from collections import defaultdict
from urllib.parse import urlparse

import pytest

from assistant.settings import PROJECT_ROOT
from ingest.cards import Corpus, load_corpus

# Secondary pages (aggregators, summaries): allowed only next to a canonical source.
SECONDARY = ("discovery.researcher.life", "scite.ai", "concepedia.online", "rrel.info", "bettercareplaybook.org",
             "booksci.cn", "medworm.com", "psychosocial.com", "mentalhealthaustralia.org.au", "springermedicine.com")
CANONICAL = re.compile(
    r"(^|\.)(doi\.org|link\.springer\.com|springer\.com|biomedcentral\.com|pubmed\.ncbi\.nlm\.nih\.gov|ncbi\.nlm\.nih\.gov|"
    r"psychiatryonline\.org|cambridge\.org|emerald\.com|wiley\.com|tandfonline\.com|ajpmonline\.org|publish\.csiro\.au|"
    r"informahealthcare\.com|medrxiv\.org|ouci\.dntb\.gov\.ua|[a-z.]*\.gov(\.[a-z]{2})?|[a-z.-]*\.edu(\.[a-z]{2})?|"
    r"[a-z.-]*\.ac\.[a-z]{2}|pure\.[a-z.]+|[a-z-]+\.pure\.elsevier\.com|experts\.mcmaster\.ca|cris\.bgu\.ac\.il|"
    r"ethos\.bl\.uk|rand\.org|qmhc\.qld\.gov\.au)$")


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus(PROJECT_ROOT / "corpus")


def test_counts_by_kind(corpus: Corpus) -> None:
    kinds = defaultdict(int)
    for card in corpus.cards:
        kinds[card.kind] += 1
    assert kinds["review"] == 1
    assert kinds["study"] >= 28
    assert kinds["related-review"] + kinds["related-study"] >= 6


def test_the_review_card(corpus: Corpus) -> None:
    review = corpus.by_id()["zeng-2021"]
    assert review.kind == "review" and review.doi == "10.1007/s10488-021-01118-6"
    text = review.full_text()
    assert "28" in text and "25" in text and "3" in text
    caveats = next(s.text for s in review.sections if s.name == "caveats").lower()
    assert "only the abstract" in caveats and "reference list" in caveats
    assert {s.theme for s in review.sections if s.theme} == set(corpus.taxonomy.themes)


def test_ids_and_dois_are_unique(corpus: Corpus) -> None:
    ids = [c.id for c in corpus.cards]
    dois = [c.doi.lower() for c in corpus.cards if c.doi]
    assert len(ids) == len(set(ids))
    assert len(dois) == len(set(dois))


def test_every_theme_has_strategies_from_at_least_four_studies(corpus: Corpus) -> None:
    studies_by_theme: dict[str, set[str]] = defaultdict(set)
    for card in corpus.cards:
        if card.kind == "study":
            for s in card.sections:
                if s.theme:
                    studies_by_theme[s.theme].add(card.id)
    for theme in corpus.taxonomy.themes:
        assert len(studies_by_theme[theme]) >= 4, theme


def test_every_taxonomy_strategy_is_used(corpus: Corpus) -> None:
    used = {(s.theme, s.strategy) for c in corpus.cards for s in c.sections if s.theme}
    declared = {(t.id, s) for t in corpus.taxonomy.themes.values() for s in t.strategies}
    assert declared - used == set()


def test_every_card_has_a_canonical_source(corpus: Corpus) -> None:
    for card in corpus.cards:
        hosts = [urlparse(u).netloc.lower() for u in card.sources]
        assert any(CANONICAL.search(h) for h in hosts), (card.id, hosts)
        if any(s in h for h in hosts for s in SECONDARY):
            assert card.doi or any(CANONICAL.search(h) for h in hosts), card.id


def test_studies_are_never_marked_confirmed(corpus: Corpus) -> None:
    # Nobody has the review's reference list, so no study can be confirmed as included.
    for card in corpus.cards:
        if card.kind == "study":
            assert card.review_inclusion in {"probable", "possible"}, card.id
        else:
            assert card.review_inclusion == "n/a", card.id


def test_every_card_says_what_is_uncertain(corpus: Corpus) -> None:
    for card in corpus.cards:
        assert any(s.name == "caveats" for s in card.sections), card.id


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z]+", text.lower())  # numbers and statistics are facts, not prose
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_cards_do_not_copy_long_passages_from_the_dossier(corpus: Corpus) -> None:
    """Own words: no run of 16 words shared with the research dossier (titles excepted)."""
    dossier = PROJECT_ROOT.parent / "shared" / "research" / "dossier.md"
    if not dossier.exists():
        pytest.skip("shared/research/dossier.md is not beside the checkout")
    n = 16
    source = _ngrams(dossier.read_text(encoding="utf-8"), n)
    for card in corpus.cards:
        shared = _ngrams(card.full_text(), n) & source
        title = _ngrams(card.title, n)
        assert not (shared - title), (card.id, [" ".join(g) for g in list(shared - title)[:2]])
