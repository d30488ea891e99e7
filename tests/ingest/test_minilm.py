"""The NumPy query encoder (ingest/minilm.py): it refuses models it cannot run, and with the shipped
model it gives the vectors sentence-transformers gives (the claim in its docstring and the README)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ingest.embedding import SentenceTransformerEmbedder, resolve_model_path
from ingest.minilm import NumpyMiniLM, UnsupportedModel
from ingest.settings import IndexSettings
from ingest.text import split_sentences
from tests.conftest import CORPUS

DEFAULT_MODEL = IndexSettings.model_fields["embedding_model"].default
PARITY_SENTENCES = 200
MIN_COSINE = 0.99999


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """The shipped model's small config files (no weights: the checks run before any are read)."""
    src = resolve_model_path(DEFAULT_MODEL)
    dest = tmp_path / "model"
    (dest / "1_Pooling").mkdir(parents=True)
    for name in ("modules.json", "config.json", "sentence_bert_config.json", "1_Pooling/config.json"):
        shutil.copy2(src / name, dest / name)
    return dest


def _edit(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    if isinstance(data, list):
        data[0].update(changes)
    else:
        data.update(changes)
    path.write_text(json.dumps(data))


def test_the_shipped_model_is_supported(model_copy: Path) -> None:
    assert NumpyMiniLM(model_copy).max_len == 256


@pytest.mark.parametrize("file, changes, message", [
    ("modules.json", {"type": "sentence_transformers.models.CLIPModel"}, "unsupported module stack"),
    ("1_Pooling/config.json", {"pooling_mode_cls_token": True}, "only mean pooling"),
    ("config.json", {"model_type": "roberta"}, "only BERT"),
    ("config.json", {"hidden_act": "gelu_new"}, "exact GELU"),
])
def test_a_model_it_cannot_run_raises_unsupported(model_copy: Path, file: str, changes: dict[str, object],
                                                  message: str) -> None:
    _edit(model_copy / file, **changes)
    with pytest.raises(UnsupportedModel, match=message):
        NumpyMiniLM(model_copy)


def corpus_sentences(n: int) -> list[str]:
    """``n`` sentences spread evenly over every card section of the real corpus (deterministic)."""
    from ingest.cards import load_corpus

    sentences = sorted({s for card in load_corpus(CORPUS).cards for section in card.sections
                        for s in split_sentences(section.text)})
    assert len(sentences) >= n
    step = len(sentences) / n
    return [sentences[int(i * step)] for i in range(n)]


@pytest.mark.integration
def test_numpy_query_vectors_match_sentence_transformers() -> None:
    sentences = corpus_sentences(PARITY_SENTENCES)
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, query_backend="numpy")
    numpy_vectors = np.asarray(embedder.embed_queries(sentences))
    # The NumPy encoder really ran: a fallback would compare sentence-transformers with itself.
    assert embedder.query_backend == "numpy" and isinstance(embedder._query_model, NumpyMiniLM)
    st_vectors = np.asarray(embedder.embed_documents(sentences))
    assert numpy_vectors.shape == st_vectors.shape == (PARITY_SENTENCES, 384)
    cosines = np.sum(numpy_vectors * st_vectors, axis=1) / (
        np.linalg.norm(numpy_vectors, axis=1) * np.linalg.norm(st_vectors, axis=1))
    worst = int(np.argmin(cosines))
    assert cosines.min() >= MIN_COSINE, (
        f"min cosine {cosines.min():.10f} over {PARITY_SENTENCES} card sentences (mean {cosines.mean():.10f}); "
        f"worst: {sentences[worst][:100]!r}")
