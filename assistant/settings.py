"""The one settings object. Nothing else in the project reads environment variables.

``Settings`` nests one group per stage (``index`` comes from the ingest layer). Every field keeps a
flat, unique name, so each knob is ``PEER_ASSIST_<NAME>`` in the environment (for example
``PEER_ASSIST_INDEX_DIR``, ``PEER_ASSIST_TOP_K``) and ``Settings(top_k=5)`` in code; the nested
form ``PEER_ASSIST_RETRIEVAL__TOP_K`` works too. Command-line flags override the environment.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ingest.errors import SettingsError
from ingest.settings import PROJECT_ROOT, SCHEMA_VERSION, IndexSettings, enforce_offline

__all__ = ["PROJECT_ROOT", "SCHEMA_VERSION", "Settings", "enforce_offline", "get_settings", "load_settings"]

ENV_PREFIX = "PEER_ASSIST_"


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RetrievalSettings(_Group):
    """Dense + BM25 retrieval, fusion, diversity, author boost and enumeration."""

    top_k: int = Field(8, ge=1, le=50, description="Passages an answer draws on.")
    candidates: int = Field(40, ge=5, le=500, description="Candidates each retriever contributes before fusion.")
    rrf_k: int = Field(10, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(1.0, ge=0.0, le=10.0, description="Weight of the dense ranking in the fusion.")
    bm25_weight: float = Field(1.5, ge=0.0, le=10.0, description="Weight of the BM25 ranking in the fusion.")
    max_per_card: int = Field(2, ge=1, le=10, description="Diversity: most passages one card may supply.")
    max_per_named_card: int = Field(3, ge=1, le=20, description="Diversity cap for a card whose authors the question names.")
    strategy_matches: int = Field(5, ge=1, le=50, description="Taxonomy strategies ranked against each question.")
    strategy_word_boost: float = Field(0.05, ge=0.0, le=1.0,
                                       description="Added to a strategy's cosine per IDF unit of a word it shares with the question.")
    strategy_idf_cap: float = Field(3.0, gt=0.0, description="Largest IDF one shared word contributes to that boost.")
    enumeration_margin: float = Field(0.05, ge=0.0, le=1.0,
                                      description="Strategies this close to the best one are listed too by 'which studies...?'.")
    enumeration_max_strategies: int = Field(2, ge=1, le=10, description="Most strategies one enumeration lists.")


class RelevanceSettings(_Group):
    """The relevance gate: which candidates answer the question (see assistant/relevance.py)."""

    relevance_gate: bool = Field(True, description="Cite only passages the relevance model accepts.")
    relevance_floor: float = Field(0.35, ge=0.0, le=1.0,
                                   description="Relevance score a passage needs to be cited (chosen on the tune split).")
    relative_floor: float = Field(0.0, ge=0.0, le=1.0,
                                  description="A passage also needs this share of the best passage's score.")
    strategy_pool: int = Field(3, ge=0, le=20, description="Best-matching strategies whose passages are all candidates.")
    max_cards: int = Field(10, ge=1, le=50, description="Most cards one answer cites.")
    max_passages_per_card: int = Field(2, ge=1, le=10, description="Most passages one card contributes.")
    aspect_floor: float = Field(0.2, ge=0.0, le=1.0,
                                description="Lower relevance floor for a card that speaks to an aspect the question names.")
    aspect_cards: int = Field(2, ge=0, le=10, description="Most cards added for one named aspect.")
    semantic_gaps: bool = Field(True, description="Besides the known gaps' terms, recognise a known gap from the "
                                                  "question's embedding (assistant/gap_model.json).")
    gap_threshold: float | None = Field(None, gt=0.0, lt=1.0,
                                        description="Probability at which the semantic check names a known gap "
                                                    "(default: stored with the model).")


class ScopeSettings(_Group):
    """When a question is outside the evidence base."""

    abstain_threshold: float = Field(0.36, ge=-1.0, le=1.0,
                                     description="Best dense cosine below which a question with a peer-work word is out of scope.")
    no_anchor_threshold: float = Field(0.55, ge=-1.0, le=1.0,
                                       description="The same, for a question with no word tied to peer work.")
    followup_margin: float = Field(0.15, ge=0.0, le=1.0, description="How much lower the bar is for a follow-up.")
    nearest_topics: int = Field(3, ge=0, le=10, description="Covered topics offered when abstaining.")
    semantic_refusal: bool = Field(True, description="Besides the refusal patterns, decide the refusal categories "
                                                     "(diagnosis, legal tests, billing, therapy, medication) from "
                                                     "the question's embedding.")
    refusal_threshold: float | None = Field(None, gt=0.0, lt=1.0,
                                            description="Probability of refusing at which the semantic check declines "
                                                        "(default: stored with the model).")
    refusal_veto: float = Field(0.1, ge=0.0, le=1.0,
                                description="A refusal pattern's match is answered after all when the semantic check "
                                            "puts the probability of refusing below this (a policy question on the topic).")
    max_question_chars: int = Field(2000, ge=50, le=100_000, description="Longer questions are refused.")


class SafetySettings(_Group):
    """The crisis gate: named rules first, then a classifier over the question's embedding."""

    semantic_crisis_check: bool = Field(True, description="After the crisis rules, also run the crisis classifier.")
    crisis_threshold: float | None = Field(None, gt=0.0, lt=1.0,
                                           description="Classifier probability that routes a question (default: stored with the model).")
    min_words_for_classifier: int = Field(4, ge=1, le=50, description="Shorter questions are checked by the rules only.")
    clinical_specialist: bool = Field(True, description="When the classifier (not a rule) routes a question the refusal "
                                                        "check is confident is a clinical request, a specialist classifier "
                                                        "trained on clinical wording decides instead.")
    clinical_refusal_p: float = Field(0.9, gt=0.0, le=1.0,
                                      description="Refusal probability from which a question counts as a clinical request.")
    clinical_categories: tuple[str, ...] = Field(("medication", "diagnose-person", "therapy-for-client"),
                                                 description="Refusal categories the specialist decides for.")
    offtopic_specialist: bool = Field(True, description="When the classifier (not a rule) routes a question with no "
                                                        "word tied to peer work, a specialist classifier that also "
                                                        "learned ordinary off-topic requests decides instead.")


class ComposeSettings(_Group):
    """How an answer is put together from the evidence."""

    composer: Literal["grounded", "llm"] = Field("grounded", description="grounded: offline extractive; llm: an endpoint.")
    max_groups: int = Field(5, ge=1, le=20, description="Most strategies one answer shows.")
    max_per_group: int = Field(6, ge=1, le=20, description="Most passages quoted under one strategy.")
    max_findings: int = Field(2, ge=1, le=10, description="Most study summaries under 'What the studies found'.")
    first_sentence_bonus: float = Field(0.5, ge=0.0, le=10.0,
                                        description="Sentence choice: a section's first sentence usually states the strategy.")
    position_penalty: float = Field(0.01, ge=0.0, le=1.0, description="Sentence choice: ties favour earlier sentences.")


class LLMSettings(_Group):
    """The optional LLM composer: a LangChain ``ChatOpenAI`` for any OpenAI-compatible endpoint, and
    the checks every sentence of its reply must pass before it is shown."""

    llm_base_url: str | None = Field(None, description="For example http://127.0.0.1:11434/v1 (Ollama).")
    llm_model: str = Field("llama3.2", description="Model name sent to the endpoint.")
    llm_api_key: SecretStr | None = Field(None, description="API key for the endpoint, if it needs one.")
    llm_timeout_s: float = Field(30.0, gt=0, description="Seconds before a request to the endpoint gives up.")
    llm_max_retries: int = Field(1, ge=0, le=10, description="Retries of a failed request to the endpoint.")
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature (0: as repeatable as the "
                                                                     "endpoint allows).")
    llm_max_tokens: int = Field(300, ge=16, le=8192, description="Most tokens the model may write for one answer.")
    llm_seed: int | None = Field(0, description="Sampling seed sent to the endpoint (None: none sent).")
    llm_max_passages: int = Field(6, ge=1, le=50, description="Most relevant passages put in the prompt.")
    llm_min_support: float = Field(0.8, ge=0.0, le=1.0,
                                   description="Share of a sentence's content words its cited passages must contain.")
    llm_min_words: int = Field(3, ge=1, le=50, description="Content words a sentence needs to be checked at all.")
    llm_min_sentences: int = Field(2, ge=1, le=20, description="Fewer verified sentences than this: the grounded "
                                                               "answer is used (or appended, if some were shown).")


class UISettings(_Group):
    """The chat UI server."""

    host: str = Field("127.0.0.1", description="Address the chat UI listens on.")
    port: int = Field(7860, gt=0, lt=65536, description="Port the chat UI listens on.")
    auth_user: str | None = Field(None, description="With auth_password, require a login for the UI.")
    auth_password: SecretStr | None = Field(None, description="Password for auth_user.")
    feedback_path: Path | None = Field(None, description="JSON-lines feedback log; default <index_dir>/feedback.jsonl.")
    allow_no_login: bool = Field(False, description="Serve a non-loopback address without a login: the operator "
                                                    "accepts that anyone who reaches it can use it.")
    answer_workers: int = Field(0, ge=0, le=64,
                                description="Worker processes that compute answers for serve (0: threads in the "
                                            "serve process). Each holds its own model and index.")
    concurrency_limit: int = Field(4, ge=1, le=64,
                                   description="Answers computed at once: the chat and Gradio's /ask share one pool of "
                                               "this size, POST /api/ask has its own.")
    queue_max_size: int = Field(64, ge=1, le=10_000,
                                description="Requests waiting for an answer (in Gradio's queue, and again in POST "
                                            "/api/ask's); past it a request is told the server is busy (503).")
    queue_status_every_s: float = Field(2.0, ge=0.0, le=60.0,
                                        description="How often waiting browsers are told their place in the queue "
                                                    "(0: after every answer, which costs throughput under load).")
    rate_limit_per_minute: float = Field(120.0, ge=0.0, le=100_000.0,
                                         description="Sustained /ask and feedback requests per client and minute (0: no limit).")
    rate_limit_burst: int = Field(20, ge=1, le=10_000, description="Requests a client may make at once before the rate applies.")
    trust_proxy_headers: bool = Field(False, description="Rate-limit by X-Real-IP / X-Forwarded-For (only behind "
                                                         "a reverse proxy you run, which sets them).")
    max_feedback_bytes: int = Field(64_000, ge=2_000, le=10_000_000,
                                    description="Largest feedback entry written (longer answers are cut to fit).")
    generation_check_s: float = Field(1.0, ge=0.0, le=3600.0,
                                      description="A long-lived assistant checks for a new index generation at most "
                                                  "this often, and switches to it (0: never).")

    @field_validator("feedback_path", mode="after")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None


class EvalSettings(_Group):
    """The evaluation suite."""

    eval_split: Literal["tune", "test", "all"] = Field("test", description="Split the baseline gate compares.")
    eval_tolerance: float = Field(0.03, ge=0.0, le=1.0, description="Allowed drop of a metric below the baseline.")
    diff_reach: int = Field(20, ge=0, le=500, description="Fused candidates a gold question counts as reached in "
                                                          "the answer diff after ingest.")


GROUPS: dict[str, type[BaseModel]] = {
    "index": IndexSettings, "retrieval": RetrievalSettings, "relevance": RelevanceSettings, "scope": ScopeSettings,
    "safety": SafetySettings,
    "compose": ComposeSettings, "llm": LLMSettings, "ui": UISettings, "evals": EvalSettings,
}
#: flat field name -> its group (names are unique across groups; a test checks it)
FIELD_GROUP: dict[str, str] = {name: group for group, model in GROUPS.items() for name in model.model_fields}


def _hashed_fields(model: type[BaseModel]) -> list[str]:
    """The fields of a group that go into ``settings_hash``: all but secrets and paths."""
    def left_out(annotation: Any) -> bool:
        return any(a in (SecretStr, Path) for a in (annotation, *get_args(annotation)))

    return [name for name, f in model.model_fields.items() if not left_out(f.annotation)]


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Move flat keys (``top_k=5``) into their groups (``retrieval={"top_k": 5}``)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        group = FIELD_GROUP.get(key)
        if group is None:
            out[key] = value
            continue
        target = out.setdefault(group, {})
        if isinstance(target, BaseModel):
            target = out[group] = target.model_dump()
        target[key] = value
    return out


class _FlatEnvSource(PydanticBaseSettingsSource):
    """``PEER_ASSIST_<FIELD>`` for every field of every group."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        env = {k.upper(): v for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}
        flat = {name: env[f"{ENV_PREFIX}{name.upper()}"] for name in FIELD_GROUP if f"{ENV_PREFIX}{name.upper()}" in env}
        return _nest(flat)


class Settings(BaseSettings):
    """All configuration for ingest, retrieval, answers, the UI and evaluation."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid",
                                      validate_assignment=True)

    index: IndexSettings = Field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    relevance: RelevanceSettings = Field(default_factory=RelevanceSettings)
    scope: ScopeSettings = Field(default_factory=ScopeSettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    compose: ComposeSettings = Field(default_factory=ComposeSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    ui: UISettings = Field(default_factory=UISettings)
    evals: EvalSettings = Field(default_factory=EvalSettings)

    @model_validator(mode="before")
    @classmethod
    def _flat_keys(cls, data: Any) -> Any:
        return _nest(data) if isinstance(data, dict) else data

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FlatEnvSource(settings_cls), file_secret_settings

    def replace(self, **flat: Any) -> Settings:
        """A copy with some fields changed, by flat name (validated like the environment)."""
        data = self.model_dump()
        for key, value in flat.items():
            group = FIELD_GROUP.get(key)
            if group is None:
                raise SettingsError(f"Unknown setting '{key}'.")
            data[group][key] = value
        return Settings(**data)

    # --- derived values -------------------------------------------------------------------------
    def settings_hash(self) -> str:
        """A short hash of every setting that can change an answer: all of them but secrets and paths
        (stamped on feedback and eval runs, so two runs with one hash answer alike). Secret and path
        fields are left out by their type, so setting one (from None) does not change the hash."""
        data = {group: {k: getattr(getattr(self, group), k) for k in _hashed_fields(model)}
                for group, model in GROUPS.items()}
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    @property
    def feedback_file(self) -> Path:
        return self.ui.feedback_path or self.index.index_dir / "feedback.jsonl"


def load_settings(**flat: Any) -> Settings:
    """Settings from the environment (and ``flat`` overrides); a bad value raises SettingsError
    naming the environment variable and what it must be."""
    try:
        return Settings(**flat)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            name = loc[-1] if loc and loc[-1] in FIELD_GROUP else ".".join(loc)
            lines.append(f"{ENV_PREFIX}{name.upper()}: {err['msg']} (got {str(err.get('input'))[:60]!r})")
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment (cached); entry points copy it with their flags applied."""
    return load_settings()
