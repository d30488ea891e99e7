"""The relevance gate: selection rules (unit) and the shipped model's provenance (integration)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.adapter import MODEL_FILE as ADAPTER_FILE
from assistant.adapter import QueryAdapter
from assistant.relevance import FEATURES, MODEL_FILE, Judgement, RelevanceGate, RelevanceModel
from assistant.settings import RelevanceSettings, Settings
from ingest.types import Passage, ScoredPassage
from tests.conftest import CORPUS


def judged(card: str, relevance: float, ordinal: int = 0) -> Judgement:
    p = Passage(id=f"{card}-{ordinal}", card_id=card, section="strategy", heading="x", text="t", theme="leadership",
                strategy="leader-commitment", strategy_title="T", ordinal=ordinal)
    return Judgement(ScoredPassage(p, 0.0), relevance, ())


MODEL = RelevanceModel(tuple(0.0 for _ in FEATURES), 0.0, FEATURES, "m")
ADAPTER = QueryAdapter(np.eye(4, dtype="float32"), "m")


def test_select_keeps_only_what_clears_the_floor_and_never_pads() -> None:
    gate = RelevanceGate(RelevanceSettings(relevance_floor=0.5), MODEL)
    kept = gate.select([judged("a", 0.9), judged("b", 0.6), judged("c", 0.49), judged("d", 0.2)])
    assert [j.passage.passage.card_id for j in kept] == ["a", "b"]
    assert gate.select([judged("a", 0.3)]) == []


def test_select_caps_passages_per_card_and_cards_per_answer() -> None:
    gate = RelevanceGate(RelevanceSettings(relevance_floor=0.1, max_cards=2, max_passages_per_card=1), MODEL)
    kept = gate.select([judged("a", 0.9, 0), judged("a", 0.8, 1), judged("b", 0.7), judged("c", 0.6)])
    assert [(j.passage.passage.card_id, j.passage.passage.ordinal) for j in kept] == [("a", 0), ("b", 0)]


def test_the_gate_stands_aside_for_another_embedding_model() -> None:
    gate = RelevanceGate(RelevanceSettings(), MODEL, adapter=ADAPTER)
    assert gate.applies_to("m") and not gate.applies_to("hash-64")
    # The question adapter must fit the same model as the weights.
    other = RelevanceGate(RelevanceSettings(), MODEL, adapter=QueryAdapter(np.eye(4, dtype="float32"), "other"))
    assert not other.applies_to("m")


def test_the_adapter_round_trips_and_returns_a_unit_vector(tmp_path: Path) -> None:
    matrix = np.asarray([[2.0, 0.0], [1.0, 1.0]], dtype="float32")
    path = tmp_path / "adapter.npz"
    QueryAdapter(matrix, "m", "abc").save(path)
    loaded = QueryAdapter.load(path)
    assert (loaded.embedding_model, loaded.training_digest) == ("m", "abc")
    assert np.array_equal(loaded.matrix, matrix)
    v = loaded.apply([1.0, 0.0])
    assert np.allclose(v, np.asarray([2.0, 1.0]) / np.sqrt(5.0)) and v.dtype == np.float32


def test_shipped_adapter_matches_its_training_data() -> None:
    """Changing the curated card questions, the cards or the adapter's settings without retraining
    (`python -m evals.train_adapter`, then `python -m evals.train_relevance`) fails here; no
    held-out question is trained on."""
    from evals.classifier_training import held_out_questions
    from evals.train_adapter import training_digest, training_pairs

    questions, texts, targets, weights = training_pairs(Settings(corpus_dir=CORPUS))
    assert len(questions) > 500 and not set(questions) & held_out_questions()
    assert QueryAdapter.load(ADAPTER_FILE).training_digest == training_digest(questions, texts, targets, weights)


def test_the_adapters_labelled_questions_are_training_sets_only() -> None:
    """The labelled manager questions weigh in (``LABELLED_WEIGHT``) and none is from the gold tune split, which
    ``train_adapter --cv`` scores."""
    import json

    from evals.train_adapter import LABELLED_WEIGHT, training_pairs

    questions, _, _, weights = training_pairs(Settings(corpus_dir=CORPUS))
    labelled = {q for q, w in zip(questions, weights, strict=True) if w == LABELLED_WEIGHT}
    tune = {json.loads(line)["question"] for line in (CORPUS.parent / "evals" / "gold.jsonl").read_text().splitlines()
            if line.strip() and json.loads(line).get("split") == "tune"}
    assert len(labelled) > 100 and not labelled & tune


@pytest.mark.integration
def test_the_adapter_ranks_the_tune_splits_expected_cards_better() -> None:
    """What the adapter is for: with the real model, on the gold tune split (which it never trains
    on), ranking cards by the adapted cosine alone reaches a clearly better best-cut F1 and MAP (measured
    0.547 -> 0.775 and 0.476 -> 0.753)."""
    from evals.train_adapter import ranking_quality, tune_inputs

    settings = Settings(corpus_dir=CORPUS)
    tune = tune_inputs(settings)
    raw = ranking_quality(settings, None, tune)
    adapted = ranking_quality(settings, QueryAdapter.load(ADAPTER_FILE).matrix, tune)
    assert adapted["best_cut_f1"] >= raw["best_cut_f1"] + 0.15 and adapted["map"] >= raw["map"] + 0.15


def test_a_model_trained_on_other_features_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"features": ["cosine"], "weights": [1.0], "bias": 0.0}))
    with pytest.raises(ValueError, match="retrain"):
        RelevanceModel.load(path)


def test_shipped_relevance_model_matches_its_training_data() -> None:
    """Changing the gold tune split, the cards or the gate's features without retraining
    (`python -m evals.train_relevance`) fails here."""
    from evals.train_relevance import training_digest, training_items

    shipped = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    assert shipped["features"] == list(FEATURES) and len(shipped["weights"]) == len(FEATURES)
    assert shipped["questions"] == len(training_items())
    settings = Settings(corpus_dir=CORPUS)
    assert shipped["training_digest"] == training_digest(settings), "retrain: python -m evals.train_relevance"
