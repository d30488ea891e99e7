"""Ingestion with the real embedding model and a real Chroma directory.

Embedding the whole corpus with the real model takes most of a minute on a small machine (that is
the shared ``real_index`` fixture's job, for the answer tests); these tests build their own index of
a slice of the corpus (MINI_CARDS, one card per folder) with the default model, so the ingest suite
stays fast. Everything here is the production path: the default settings, the packaged model and
an embedded Chroma directory.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Sequence

import pytest

from ingest.embedding import SentenceTransformerEmbedder
from ingest.settings import IndexSettings
from assistant.settings import Settings
from ingest.cards import load_corpus
from ingest.pipeline import run_ingest
from ingest.split import split_card
from ingest.store import EvidenceStore
from tests.conftest import make_settings
from tests.ingest.conftest import (
    MINI_CARDS,
    copy_corpus,
    edit_card,
    expected_ids,
    ids_by_card,
    manifest,
    manifest_snapshot,
)

pytestmark = pytest.mark.integration

EDITED = "gates-2007"
DEFAULT_MODEL = IndexSettings.model_fields["embedding_model"].default


class CountingEmbedder(SentenceTransformerEmbedder):
    """The real embedder, remembering every text it embeds."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.index.embedding_model, settings.index.embedding_batch_size, settings.index.query_encoder)
        self.texts: list[str] = []

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return super().embed_documents(texts)


@pytest.fixture(scope="module")
def real_mini_index(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """MINI_CARDS indexed with the default (real) embedding model."""
    root = tmp_path_factory.mktemp("real-mini")
    settings = make_settings(root, copy_corpus(root / "corpus", MINI_CARDS), embedding_model=DEFAULT_MODEL)
    report = run_ingest(settings)
    assert report.model_loaded and report.added == report.passages
    return settings


def test_real_index_holds_exactly_the_corpus_passages(real_mini_index: Settings) -> None:
    assert not real_mini_index.index.embedding_model.startswith("hash-")
    store = EvidenceStore(real_mini_index)
    expected = expected_ids(real_mini_index)
    assert store.ids() == expected
    assert store.count() == len(expected)
    keys = store.record_manager().list_keys()
    assert len(keys) == len(set(keys)) and set(keys) == expected
    state = manifest(real_mini_index)
    assert state["state"] == "complete" and state["fingerprint"] == real_mini_index.index.vector_fingerprint()
    # Real sentence embeddings: 384 dimensions, unit length.
    got = store.collection().get(limit=5, include=["embeddings"])
    for vector in got["embeddings"]:
        assert len(vector) == 384
        assert math.isclose(math.sqrt(sum(float(v) * v for v in vector)), 1.0, abs_tol=1e-3)
    # What is stored is the card text itself.
    settings = real_mini_index
    by_id = {p.id: p for c in load_corpus(settings.index.corpus_dir).cards
             for p in split_card(c, settings.index.chunk_size, settings.index.chunk_overlap)}
    for p in store.passages():
        assert (p.text, p.card_id, p.theme, p.strategy) == (
            by_id[p.id].text, by_id[p.id].card_id, by_id[p.id].theme, by_id[p.id].strategy)


def test_second_run_is_a_no_op(real_mini_index: Settings) -> None:
    before = manifest_snapshot(real_mini_index)
    report = run_ingest(real_mini_index)
    assert (report.added, report.updated, report.deleted) == (0, 0, 0)
    assert report.skipped == report.passages == len(expected_ids(real_mini_index))
    assert report.model_loaded is False
    assert manifest_snapshot(real_mini_index) == before
    # Handed a real embedder, the no-op run still never loads the model.
    embedder = CountingEmbedder(real_mini_index)
    report = run_ingest(real_mini_index, embedder=embedder)
    assert (report.added, report.model_loaded, embedder.loaded, embedder.texts) == (0, False, False, [])


def test_editing_one_card_re_embeds_only_its_passages(real_mini_index: Settings, tmp_path: Path) -> None:
    # Work on a copy of the shared index so other tests keep the pristine one.
    corpus = copy_corpus(tmp_path / "corpus", MINI_CARDS)
    settings = make_settings(tmp_path, corpus, embedding_model=DEFAULT_MODEL)
    shutil.copytree(real_mini_index.index.index_dir, settings.index.index_dir, ignore=shutil.ignore_patterns("ingest.lock"))
    before = ids_by_card(settings)
    assert {pid for ids in before.values() for pid in ids} == expected_ids(real_mini_index)

    # A metadata change (the title is part of every passage id) replaces all of the card's passages.
    edit_card(corpus / "studies" / f"{EDITED}.md", "\ntitle: Developing strategies", "\ntitle: Developing ways")
    embedder = CountingEmbedder(settings)
    report = run_ingest(settings, embedder=embedder)

    after = ids_by_card(settings)
    n_new = len(after[EDITED])
    assert n_new == len(before[EDITED]) and not after[EDITED] & before[EDITED]
    assert report.added == n_new == len(embedder.texts)
    assert report.deleted == len(before[EDITED])
    assert report.changes == {"added": [], "updated": [EDITED], "deleted": []}
    assert report.model_loaded is True
    assert {k: v for k, v in after.items() if k != EDITED} == {k: v for k, v in before.items() if k != EDITED}
    assert all(text.startswith("Developing ways") for text in embedder.texts)

    # The new vectors are the model's vectors for the new passages: each finds itself first.
    store = EvidenceStore(settings)
    for passage in [p for p in store.passages() if p.card_id == EDITED][:2]:
        vector = embedder.embed_documents([passage.embed_text()])[0]
        (top, score), = store.query(vector, k=1)
        assert top.id == passage.id and score > 0.99
