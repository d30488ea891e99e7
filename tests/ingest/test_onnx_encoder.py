"""The ONNX question encoder (ingest/onnx_encoder.py): exported from the packaged weights, it gives
sentence-transformers' vectors (cosine >= 0.9999 on 200 card sentences), and whenever the export or
the runtime fails questions go through the NumPy encoder instead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.embedding import SentenceTransformerEmbedder, get_embedder, resolve_model_path
from ingest.minilm import NumpyMiniLM
from ingest.onnx_encoder import OnnxMiniLM, OnnxUnavailable, encoder_path, export, optimised_path
from ingest.settings import IndexSettings
from tests.ingest.test_minilm import DEFAULT_MODEL, PARITY_SENTENCES, corpus_sentences

MIN_COSINE = 0.9999


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model exported once for this module (about 20 s: torch is imported)."""
    return tmp_path_factory.mktemp("encoders")


@pytest.mark.integration
def test_onnx_query_vectors_match_sentence_transformers(exported: Path) -> None:
    sentences = corpus_sentences(PARITY_SENTENCES)
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, query_backend="onnx", encoder_dir=exported)
    path = embedder.export_query_encoder()
    assert path is not None and path.is_file() and optimised_path(path).is_file()
    onnx_vectors = np.asarray(embedder.embed_queries(sentences))
    # The ONNX encoder really ran: a fallback would compare NumPy with sentence-transformers.
    assert embedder.query_backend == "onnx" and isinstance(embedder._query_model, OnnxMiniLM)
    st_vectors = np.asarray(embedder.embed_documents(sentences))
    assert onnx_vectors.shape == st_vectors.shape == (PARITY_SENTENCES, 384)
    cosines = np.sum(onnx_vectors * st_vectors, axis=1) / (
        np.linalg.norm(onnx_vectors, axis=1) * np.linalg.norm(st_vectors, axis=1))
    worst = int(np.argmin(cosines))
    assert cosines.min() >= MIN_COSINE, (
        f"min cosine {cosines.min():.10f} over {PARITY_SENTENCES} card sentences; worst: {sentences[worst][:100]!r}")
    # A second export finds the file and does nothing.
    assert export(resolve_model_path(DEFAULT_MODEL), exported) == path


@pytest.mark.integration
def test_a_failing_export_leaves_the_numpy_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated exporter failure")

    monkeypatch.setattr(torch.onnx, "export", broken)
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, query_backend="onnx", encoder_dir=tmp_path)
    assert embedder.export_query_encoder() is None
    assert not list(tmp_path.glob("*.onnx*"))  # nothing half-written left behind
    with pytest.raises(OnnxUnavailable, match="simulated exporter failure"):
        export(resolve_model_path(DEFAULT_MODEL), tmp_path)
    vector = embedder.embed_query("Who should supervise peer workers?")
    assert embedder.query_backend == "numpy" and isinstance(embedder._query_model, NumpyMiniLM)
    assert len(vector) == 384 and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_no_export_falls_back_to_numpy(tmp_path: Path) -> None:
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, query_backend="onnx", encoder_dir=tmp_path / "none")
    assert embedder._numpy_model() is not None
    assert embedder.query_backend == "numpy" and isinstance(embedder._query_model, NumpyMiniLM)


def test_a_damaged_export_falls_back_to_numpy(tmp_path: Path) -> None:
    path = encoder_path(tmp_path, resolve_model_path(DEFAULT_MODEL))
    path.write_bytes(b"not an onnx graph")
    with pytest.raises(OnnxUnavailable, match="cannot run"):
        OnnxMiniLM(resolve_model_path(DEFAULT_MODEL), path)._load()
    embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, query_backend="onnx", encoder_dir=tmp_path)
    assert embedder._numpy_model() is not None and embedder.query_backend == "numpy"


def test_the_setting_selects_the_encoder(tmp_path: Path) -> None:
    for backend in ("onnx", "numpy", "sentence-transformers"):
        embedder = get_embedder(IndexSettings(index_dir=tmp_path, query_encoder=backend))
        assert isinstance(embedder, SentenceTransformerEmbedder) and embedder.query_backend == backend
        assert embedder.encoder_dir == tmp_path.resolve() / "encoders"
    with pytest.raises(ValueError, match="query_backend"):
        SentenceTransformerEmbedder(DEFAULT_MODEL, query_backend="tensorrt")
