"""The one settings object: flat and nested environment names, errors that name the variable,
unique field names, and a settings hash that follows every answer-shaping field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from assistant.settings import ENV_PREFIX, FIELD_GROUP, GROUPS, Settings, load_settings
from ingest.errors import SettingsError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(key)


def test_flat_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PEER_ASSIST_TOP_K", "5")
    monkeypatch.setenv("PEER_ASSIST_INDEX_DIR", str(tmp_path / "idx"))
    monkeypatch.setenv("PEER_ASSIST_CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("PEER_ASSIST_COMPOSER", "llm")
    s = load_settings()
    assert s.retrieval.top_k == 5 and s.index.index_dir == (tmp_path / "idx").resolve()
    assert s.index.chroma_host == "127.0.0.1" and s.compose.composer == "llm"


def test_nested_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEER_ASSIST_RETRIEVAL__TOP_K", "6")
    monkeypatch.setenv("PEER_ASSIST_SCOPE__NEAREST_TOPICS", "2")
    s = load_settings()
    assert (s.retrieval.top_k, s.scope.nearest_topics) == (6, 2)


def test_flat_keyword_arguments_and_replace() -> None:
    s = Settings(top_k=4, max_groups=2)
    assert (s.retrieval.top_k, s.compose.max_groups) == (4, 2)
    assert s.replace(top_k=9).retrieval.top_k == 9 and s.retrieval.top_k == 4
    with pytest.raises(SettingsError, match="Unknown setting 'top_kk'"):
        s.replace(top_kk=1)


@pytest.mark.parametrize("name, value, says", [
    ("PEER_ASSIST_TOP_K", "lots", "integer"),
    ("PEER_ASSIST_TOP_K", "0", "greater than or equal to 1"),
    ("PEER_ASSIST_RETRIEVAL__TOP_K", "500", "less than or equal to 50"),
    ("PEER_ASSIST_COMPOSER", "gpt", "'grounded' or 'llm'"),
    ("PEER_ASSIST_PORT", "70000", "less than 65536"),
])
def test_a_bad_value_is_a_settings_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch, name: str,
                                                             value: str, says: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    flat = ENV_PREFIX + name.split("__")[-1].removeprefix(ENV_PREFIX)
    assert flat in str(err.value) and says in str(err.value) and repr(value) in str(err.value)
    assert err.value.help_message


def test_field_names_are_unique_across_groups() -> None:
    names = [name for model in GROUPS.values() for name in model.model_fields]
    assert len(names) == len(set(names)) == len(FIELD_GROUP)
    assert not set(names) & set(GROUPS), "a field may not share a name with a group"


#: A different valid value for every field that can change an answer (every field but secrets and paths).
CHANGED: dict[str, Any] = {
    "collection_prefix": "other_prefix", "max_card_bytes": 32_000, "embedding_model": "hash-32",
    "query_encoder": "sentence-transformers", "snapshots": False, "index_batch_size": 256, "embedding_batch_size": 32, "chunk_size": 900,
    "chunk_overlap": 120, "chroma_host": "127.0.0.1", "chroma_port": 8001,
    "top_k": 9, "candidates": 41, "rrf_k": 11, "dense_weight": 1.1, "bm25_weight": 1.6, "max_per_card": 3,
    "max_per_named_card": 4, "strategy_matches": 6, "strategy_word_boost": 0.06, "strategy_idf_cap": 3.5,
    "enumeration_margin": 0.06, "enumeration_max_strategies": 3,
    "relevance_gate": False, "relevance_floor": 0.6, "strategy_pool": 4, "max_cards": 9, "max_passages_per_card": 3,
    "aspect_floor": 0.3, "aspect_cards": 3, "relative_floor": 0.6, "diff_reach": 7, "semantic_gaps": False, "gap_threshold": 0.7,
    "abstain_threshold": 0.37, "no_anchor_threshold": 0.56, "followup_margin": 0.16, "nearest_topics": 2,
    "max_question_chars": 2001, "semantic_refusal": False, "refusal_threshold": 0.7, "refusal_veto": 0.2,
    "semantic_crisis_check": False, "crisis_threshold": 0.5, "min_words_for_classifier": 5, "clinical_specialist": False, "offtopic_specialist": False,
    "clinical_refusal_p": 0.8, "clinical_categories": ("medication",),
    "composer": "llm", "max_groups": 4, "max_per_group": 2, "max_findings": 1, "first_sentence_bonus": 0.6,
    "position_penalty": 0.02,
    "llm_base_url": "http://127.0.0.1:11434/v1", "llm_model": "other", "llm_timeout_s": 31.0,
    "llm_max_retries": 2, "llm_temperature": 0.5, "llm_max_tokens": 200, "llm_seed": 7, "llm_max_passages": 4,
    "llm_min_support": 0.7, "llm_min_words": 4, "llm_min_sentences": 3,
    "host": "0.0.0.0", "port": 7861, "auth_user": "manager",
    "allow_no_login": True, "concurrency_limit": 2, "queue_max_size": 10, "rate_limit_per_minute": 30.0,
    "rate_limit_burst": 5, "trust_proxy_headers": True, "max_feedback_bytes": 4_000, "generation_check_s": 2.0,
    "queue_status_every_s": 5.0, "answer_workers": 2,
    "eval_split": "tune", "eval_tolerance": 0.04,
}
LEFT_OUT: dict[str, Any] = {
    "corpus_dir": Path("/tmp/other-corpus"), "index_dir": Path("/tmp/other-index"), "feedback_path": Path("/tmp/fb.jsonl"),
    "chroma_token": SecretStr("t"), "llm_api_key": SecretStr("k"), "auth_password": SecretStr("p"),
}


def test_every_field_is_listed_here_once() -> None:
    """A new setting must be added to CHANGED (or LEFT_OUT), so the hash tests cover it."""
    assert set(CHANGED) | set(LEFT_OUT) == set(FIELD_GROUP) and not set(CHANGED) & set(LEFT_OUT)


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_settings_hash_follows_every_answer_shaping_field(name: str) -> None:
    base = Settings()
    changed = base.replace(**{name: CHANGED[name]})
    assert getattr(getattr(changed, FIELD_GROUP[name]), name) != getattr(getattr(base, FIELD_GROUP[name]), name)
    assert changed.settings_hash() != base.settings_hash()


@pytest.mark.parametrize("name", sorted(LEFT_OUT))
def test_settings_hash_ignores_secrets_and_paths(name: str) -> None:
    base = Settings()
    assert base.replace(**{name: LEFT_OUT[name]}).settings_hash() == base.settings_hash()


def test_secrets_never_appear_in_the_repr() -> None:
    s = Settings(llm_api_key="sk-very-secret", auth_password="hunter2")
    assert "sk-very-secret" not in repr(s) and "hunter2" not in repr(s)
