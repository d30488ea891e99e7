"""The deterministic hash embedder (ingest/embedding.py) that every unit test relies on."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ingest.embedding import HashEmbedder, get_embedder
from ingest.settings import IndexSettings
from tests.conftest import CORPUS

E = HashEmbedder(64)


def cos(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


def test_vectors_are_unit_length_and_sized() -> None:
    for text in ["peer workers", "Supervision that understands the peer role.", "", "!!!", "a"]:
        v = E.embed_query(text)
        assert len(v) == 64 and np.linalg.norm(v) == pytest.approx(1.0)


def test_same_text_same_vector_in_another_process() -> None:
    """sha256, not the per-process salted hash(): vectors stored by one run are found by the next."""
    code = "from ingest.embedding import HashEmbedder; print(HashEmbedder(64).embed_query('peer supervision'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == str(E.embed_query("peer supervision"))


def test_it_is_a_bag_of_words() -> None:
    assert E.embed_query("peer worker supervision") == E.embed_query("Supervision, PEER worker!")
    related = cos(E.embed_query("peer worker supervision"), E.embed_query("supervision of a peer worker"))
    unrelated = cos(E.embed_query("peer worker supervision"), E.embed_query("budget spreadsheet formula"))
    assert related > 0.5 > unrelated


def test_documents_and_queries_share_one_space() -> None:
    texts = ["peer workers", "training", ""]
    assert E.embed_documents(texts) == [E.embed_query(t) for t in texts] == E.embed_queries(texts)


def test_text_with_no_words_still_gets_a_unit_vector() -> None:
    assert E.embed_query("") == [1.0] + [0.0] * 63


@pytest.mark.parametrize("dim", [0, 7, -3])
def test_too_small_a_dimension_is_refused(dim: int) -> None:
    with pytest.raises(ValueError, match=f"dim must be at least 8, got {dim}"):
        HashEmbedder(dim)


def test_settings_select_it_by_name() -> None:
    embedder = get_embedder(IndexSettings(corpus_dir=CORPUS, embedding_model="hash-32"))
    assert isinstance(embedder, HashEmbedder) and embedder.dim == 32 and embedder.name == "hash-32"
