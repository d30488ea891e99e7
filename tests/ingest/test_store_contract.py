"""One contract for the vector store, run against the in-memory fake (tests/fakes.py) and the real
Chroma ``EvidenceStore`` (embedded, in a temporary directory, hash embedder): writing through
``sync``, ``ids`` and ``count``, cosine ordering, the theme filter, deletion, and passages that come
back with every field and all their card metadata."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.cards import load_corpus
from ingest.embedding import HashEmbedder
from ingest.errors import IndexNotBuiltError
from ingest.settings import IndexSettings
from ingest.split import split_card
from ingest.types import Passage
from tests.conftest import CORPUS
from tests.fakes import InMemoryStore

CARDS = ("gates-2007", "chinman-2008", "byrne-2022")
EMBEDDER = HashEmbedder(64)


@pytest.fixture(scope="module")
def passages() -> list[Passage]:
    by_id = load_corpus(CORPUS).by_id()
    out = [p for card in CARDS for p in split_card(by_id[card])]
    assert len({p.theme for p in out if p.theme}) >= 2, "the theme-filter tests need passages of two themes"
    return out


def _chroma(tmp: Path) -> Any:
    from ingest.store import EvidenceStore

    return EvidenceStore(IndexSettings(corpus_dir=CORPUS, index_dir=tmp / "index", embedding_model=EMBEDDER.name))


MAKERS: dict[str, Callable[[Path], Any]] = {"in-memory": lambda tmp: InMemoryStore(), "chroma": _chroma}


@pytest.fixture(params=list(MAKERS))
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return MAKERS[request.param](tmp_path)


@pytest.fixture(params=list(MAKERS))
def store(request: pytest.FixtureRequest, tmp_path: Path, passages: list[Passage]) -> Any:
    s = MAKERS[request.param](tmp_path)
    s.sync(passages, EMBEDDER)
    return s


@pytest.fixture(scope="module", params=list(MAKERS))
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, passages: list[Passage]) -> Any:
    """A store written once per module, for the tests that only read."""
    s = MAKERS[request.param](tmp_path_factory.mktemp(request.param))
    s.sync(passages, EMBEDDER)
    return s


def test_a_new_store_is_empty_and_not_built(empty_store: Any) -> None:
    assert empty_store.count() == 0 and empty_store.ids() == set()
    with pytest.raises(IndexNotBuiltError):
        empty_store.passages()


def test_sync_adds_every_passage_once(empty_store: Any, passages: list[Passage]) -> None:
    stats = empty_store.sync(passages, EMBEDDER)
    assert (stats["added"], stats["skipped"], stats["deleted"]) == (len(passages), 0, 0)
    assert empty_store.ids() == {p.id for p in passages}
    assert empty_store.count() == len(passages)


def test_sync_again_skips_and_force_rewrites(store: Any, passages: list[Passage]) -> None:
    again = store.sync(passages, EMBEDDER)
    assert (again["added"], again["skipped"], again["deleted"]) == (0, len(passages), 0)
    forced = store.sync(passages, EMBEDDER, force=True)
    assert (forced["added"], forced["deleted"]) == (len(passages), 0)
    assert store.count() == len(passages)


def test_sync_deletes_passages_no_longer_given(store: Any, passages: list[Passage]) -> None:
    kept = [p for p in passages if p.card_id != CARDS[0]]
    stats = store.sync(kept, EMBEDDER)
    assert (stats["added"], stats["deleted"]) == (0, len(passages) - len(kept))
    assert store.ids() == {p.id for p in kept}


def test_passages_round_trip_every_field_and_the_card_metadata(filled: Any, passages: list[Passage]) -> None:
    assert filled.passages() == sorted(passages, key=lambda p: (p.card_id, p.ordinal))
    sample = next(p for p in filled.passages() if p.theme)
    assert sample.meta["short_cite"] and sample.meta["year"] and sample.strategy_title


def test_query_orders_by_cosine(filled: Any, passages: list[Passage]) -> None:
    target = passages[5]
    vector = EMBEDDER.embed_query(target.embed_text())
    hits = filled.query(vector, 10)
    assert len(hits) == 10
    assert hits[0][0].id == target.id and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True)
    doc_vectors = {p.id: np.asarray(v) for p, v in zip(passages, EMBEDDER.embed_documents([p.embed_text() for p in passages]))}
    for p, score in hits:
        assert score == pytest.approx(float(doc_vectors[p.id] @ np.asarray(vector)), abs=1e-5)


def test_query_returns_at_most_what_is_stored(filled: Any, passages: list[Passage]) -> None:
    hits = filled.query(EMBEDDER.embed_query("peer workers"), 10_000)
    assert len(hits) == len(passages)


def test_where_filter_keeps_one_theme(filled: Any, passages: list[Passage]) -> None:
    theme = next(p.theme for p in passages if p.theme)
    in_theme = {p.id for p in passages if p.theme == theme}
    hits = filled.query(EMBEDDER.embed_query("supervision and training for peer workers"), 100, where={"theme": theme})
    assert {p.id for p, _ in hits} == in_theme


def test_delete_ids_removes_from_ids_count_and_queries(store: Any, passages: list[Passage]) -> None:
    gone = [p.id for p in passages[:3]]
    store.delete_ids(gone)
    store.delete_ids([])  # a no-op
    assert store.count() == len(passages) - 3 and not set(gone) & store.ids()
    hits = store.query(EMBEDDER.embed_query(passages[0].embed_text()), len(passages))
    assert not {p.id for p, _ in hits} & set(gone)


def test_the_retriever_ranks_alike_over_either_store(tmp_path: Path, passages: list[Passage]) -> None:
    """What the contract buys: the assistant's retriever gives the same passages over the fake."""
    from assistant.retrieval import HybridRetriever
    from assistant.settings import RetrievalSettings
    from ingest.taxonomy import load_taxonomy
    from ingest.vocabulary import load_vocabulary

    taxonomy, vocabulary = load_taxonomy(CORPUS / "themes.yaml"), load_vocabulary(CORPUS / "vocabulary.yaml")
    ranked = []
    for make in MAKERS.values():
        s = make(tmp_path / str(len(ranked)))
        s.sync(passages, EMBEDDER)
        retriever = HybridRetriever(RetrievalSettings(), EMBEDDER, taxonomy, vocabulary, s)
        result = retriever.retrieve("Who should supervise peer workers?")
        ranked.append([sp.passage.id for sp in result.passages])
    assert ranked[0] and ranked[0] == ranked[1]
