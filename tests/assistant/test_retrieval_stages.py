"""The retrieval stages one at a time (assistant/retrieval/stages.py), on hand-made passages."""

from __future__ import annotations

import pytest

from assistant.retrieval.index import PassageIndex, StrategyMatch
from assistant.retrieval.stages import (
    diversify,
    enumerate_strategy,
    fuse,
    lexical_hits,
    lexical_scores,
    mentioned_cards,
    named_first,
)
from ingest.embedding import HashEmbedder
from ingest.taxonomy import load_taxonomy
from ingest.text import Tokenizer
from tests.assistant.passages import passage, scored
from tests.conftest import CORPUS

A, B, C = passage("alpha-2020"), passage("beta-2019"), passage("gamma-2021")


# ---- fuse ---------------------------------------------------------------------------------------

def test_fuse_adds_reciprocal_ranks_and_keeps_both_signals() -> None:
    out = fuse([(A, 0.9), (B, 0.8)], [(B, 7.0), (C, 3.0)], dense_weight=1.0, lexical_weight=1.0, rrf_k=10)
    assert [sp.passage.id for sp in out] == [B.id, A.id, C.id]
    b, a, c = out
    assert b.score == pytest.approx(1 / 12 + 1 / 11) and a.score == pytest.approx(1 / 11) and c.score == pytest.approx(1 / 12)
    assert (b.dense, b.dense_rank, b.bm25_rank) == (0.8, 2, 1)
    assert (a.dense, a.dense_rank, a.bm25_rank) == (0.9, 1, None)
    assert (c.dense, c.dense_rank, c.bm25_rank) == (None, None, 2)


def test_fuse_weights_each_ranking() -> None:
    out = fuse([(A, 0.9)], [(C, 3.0)], dense_weight=1.0, lexical_weight=2.0, rrf_k=10)
    assert [sp.passage.id for sp in out] == [C.id, A.id] and out[0].score == pytest.approx(2 / 11)


def test_fuse_breaks_ties_by_card_then_position() -> None:
    b1 = passage("beta-2019", 1)
    out = fuse([(C, 0.9), (b1, 0.5)], [(B, 1.0), (A, 0.5)], dense_weight=1.0, lexical_weight=1.0, rrf_k=10)
    # C and B share rank 1, b1 and A rank 2: equal scores fall back to card id, then ordinal.
    assert [sp.passage.id for sp in out] == [B.id, C.id, A.id, b1.id]


def test_fuse_of_nothing_is_empty() -> None:
    assert fuse([], [], dense_weight=1.0, lexical_weight=1.0, rrf_k=10) == []


# ---- diversify ----------------------------------------------------------------------------------

def test_diversify_caps_passages_per_card_and_stops_at_k() -> None:
    ranked = [scored(passage("alpha-2020", i), 1 - i / 10) for i in range(4)] + [scored(B, 0.1), scored(C, 0.05)]
    out = diversify(ranked, k=3, max_per_card=2)
    assert [sp.passage.id for sp in out] == ["alpha-2020#0", "alpha-2020#1", B.id]


def test_diversify_limits_raise_the_cap_for_named_cards() -> None:
    ranked = [scored(passage("alpha-2020", i), 1 - i / 10) for i in range(4)] + [scored(B, 0.1)]
    out = diversify(ranked, k=10, max_per_card=1, limits={"alpha-2020": 3})
    assert [sp.passage.id for sp in out] == ["alpha-2020#0", "alpha-2020#1", "alpha-2020#2", B.id]


@pytest.mark.parametrize("k", [0, -1])
def test_diversify_refuses_a_k_that_is_not_positive(k: int) -> None:
    with pytest.raises(ValueError, match=f"k must be positive, got {k}"):
        diversify([scored(A, 1.0)], k=k, max_per_card=2)


# ---- mentioned_cards ----------------------------------------------------------------------------

SURNAMES = {"kemp": {"kemp-2012"}, "henderson": {"kemp-2012"}, "byrne": {"byrne-2019", "byrne-2022"},
            "such": {"such-2015"}}


@pytest.mark.parametrize("question, expected", [
    ("What did Kemp and Henderson find?", ["kemp-2012"]),
    ("What does the Byrne 2019 study say?", ["byrne-2019"]),
    ("What did Byrne (2022) report?", ["byrne-2022"]),
    ("What did Byrne find?", ["byrne-2019", "byrne-2022"]),
    ("What did Kemp, Henderson and Byrne find?", ["kemp-2012"]),  # the card named most often wins
    ("what did kemp find?", []),  # a lower-case word is not a name
    ("byrne 2019 study, what did it find?", ["byrne-2019"]),  # ... unless a year follows it
    ("is the kemp (2012) paper any good?", ["kemp-2012"]),
    ("Such posts need supervision", []),  # a capitalised stop word opening the question is not a name
    ("What did Such 2015 find?", ["such-2015"]),
    ("What did Byrne 2001 find?", []),  # no card of that author in that year
])
def test_mentioned_cards(question: str, expected: list[str]) -> None:
    assert mentioned_cards(question, SURNAMES) == expected


# ---- named_first --------------------------------------------------------------------------------

def test_named_first_puts_the_named_cards_passages_on_top() -> None:
    k0, k1, k2 = (passage("kemp-2012", i, theme="leadership" if i < 2 else "support-development") for i in range(3))
    fused = [scored(A, 0.5), scored(k1, 0.4), scored(B, 0.3)]
    out = named_first(fused, [A, B, k0, k1, k2], ["kemp-2012"], theme=None)
    assert [sp.passage.id for sp in out] == [k1.id, k0.id, k2.id, A.id, B.id]
    assert out[0].score > out[1].score > out[2].score > 0.5  # above everything fused
    themed = named_first(fused, [A, B, k0, k1, k2], ["kemp-2012"], theme="leadership")
    assert [sp.passage.id for sp in themed][:2] == [k1.id, k0.id] and k2.id not in {sp.passage.id for sp in themed}


# ---- enumerate_strategy -------------------------------------------------------------------------

def test_enumeration_lists_one_passage_per_card_on_the_best_strategies() -> None:
    sup = [passage("alpha-2020", 0, theme="support-development", strategy="supervision"),
           passage("alpha-2020", 1, theme="support-development", strategy="supervision"),
           passage("beta-2019", 0, theme="support-development", strategy="supervision")]
    ment = [passage("gamma-2021", 0, theme="support-development", strategy="mentoring")]
    far = [passage("delta-2018", 0, theme="leadership", strategy="champions")]
    by_strategy = {("support-development", "supervision"): sup, ("support-development", "mentoring"): ment,
                   ("leadership", "champions"): far}
    matches = [StrategyMatch("support-development", "supervision", 0.80),
               StrategyMatch("support-development", "mentoring", 0.77), StrategyMatch("leadership", "champions", 0.60)]
    fused = [scored(sup[1], 0.9), scored(sup[0], 0.5)]
    out, cards = enumerate_strategy(fused, matches, by_strategy, None, margin=0.05, max_strategies=2)
    assert cards == ["alpha-2020", "beta-2019", "gamma-2021"]
    assert out[0].passage.id == sup[1].id  # the card's best-scored passage stands for it
    only_one, _ = enumerate_strategy(fused, matches, by_strategy, None, margin=0.05, max_strategies=1)
    assert {sp.passage.card_id for sp in only_one} == {"alpha-2020", "beta-2019"}
    _, cards = enumerate_strategy(fused, matches, by_strategy, "leadership", margin=0.05, max_strategies=2)
    assert cards == ["delta-2018"]
    assert enumerate_strategy(fused, matches, by_strategy, "recruitment-training-induction", margin=0.05,
                              max_strategies=2) == ([], [])


# ---- lexical_hits -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_index() -> PassageIndex:
    texts = ["Supervisors with lived experience helped peer workers.", "Funding kept the posts open.",
             "Induction covered confidentiality and disclosure.", "Training in boundaries helped new staff.",
             "Managers championed the peer role."]
    themes = ["support-development", "organizational-preparation", "recruitment-training-induction",
              "recruitment-training-induction", "leadership"]
    passages = [passage(f"card{i}-2020", 0, t, theme=th, strategy="x") for i, (t, th) in enumerate(zip(texts, themes))]
    return PassageIndex(passages, load_taxonomy(CORPUS / "themes.yaml"), HashEmbedder(64), Tokenizer())


def test_lexical_hits_rank_by_bm25_and_drop_zero_scores(small_index: PassageIndex) -> None:
    tokens = small_index.tokenizer("induction and training")
    hits = lexical_hits(small_index, lexical_scores(small_index, tokens), 10, None)
    assert {p.card_id for p, _ in hits} == {"card2-2020", "card3-2020"}
    assert all(score > 0 for _, score in hits) and hits[0][1] >= hits[1][1]
    assert lexical_hits(small_index, lexical_scores(small_index, small_index.tokenizer("quantum entanglement")),
                        10, None) == []


def test_lexical_hits_respect_n_and_the_theme(small_index: PassageIndex) -> None:
    tokens = small_index.tokenizer("induction training supervisors funding")
    scores = lexical_scores(small_index, tokens)
    assert len(lexical_hits(small_index, scores, 2, None)) == 2
    themed = lexical_hits(small_index, scores, 10, "support-development")
    assert [p.card_id for p, _ in themed] == ["card0-2020"]


def test_large_index_lexical_hits_equal_the_full_sort(small_index: PassageIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above FULL_SORT_MAX only the positive scores are ranked, ties by passage order: the hits of
    the full sort, in that order."""
    import assistant.retrieval.stages as st

    tokens = small_index.tokenizer("induction training supervisors funding peer")
    scores = lexical_scores(small_index, tokens)
    pos = {p.id: i for i, p in enumerate(small_index.passages)}
    expected = {(n, th): sorted(lexical_hits(small_index, scores, 100, th), key=lambda h: (-h[1], pos[h[0].id]))[:n]
                for n in (1, 2, 10) for th in (None, "leadership")}
    monkeypatch.setattr(st, "FULL_SORT_MAX", 0)
    for (n, th), hits in expected.items():
        assert hits and lexical_hits(small_index, scores, n, th) == hits


def test_exact_dense_hits_equal_an_exact_store_query(small_index: PassageIndex) -> None:
    import numpy as np

    from assistant.retrieval.stages import exact_dense_hits
    from tests.fakes import InMemoryStore

    embedder = HashEmbedder(64)
    store = InMemoryStore()
    store.sync(small_index.passages, embedder)
    vectors = np.asarray(embedder.embed_documents([p.embed_text() for p in small_index.passages]), dtype="float32")
    index = PassageIndex(small_index.passages, small_index.taxonomy, embedder, small_index.tokenizer, vectors)
    q = embedder.embed_query("supervisors for peer workers")
    cos = index.cosines(q)
    assert cos is not None
    for theme in (None, "recruitment-training-induction", "no-such-theme"):
        ours = exact_dense_hits(index, cos, 3, theme)
        theirs = store.query(q, 3, where={"theme": theme} if theme else None)
        assert [p.id for p, _ in ours] == [p.id for p, _ in theirs]
        assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], abs=1e-6)


def test_lift_rows_equals_lift_of_the_hits(small_index: PassageIndex) -> None:
    """The row-based lift the retriever uses gives what ``lift`` gives on the same hits."""
    import numpy as np

    rows = np.asarray([3, 1, 3, 0, 4, 1], dtype=np.intp)
    values = np.asarray([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert small_index.lift_rows(rows, values) == small_index.lift(small_index.hits(rows, values))
