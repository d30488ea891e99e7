"""Careful refusals in the domain's own vocabulary, and the policy questions beside them that are
still answered. Examples written for this test (not taken from any evaluation set)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from assistant.scope import RefusalModel, ScopeCheck
from assistant.settings import PROJECT_ROOT, ScopeSettings, Settings
from ingest.vocabulary import VOCABULARY_FILE, load_vocabulary
from tests.conftest import CORPUS

SCOPE = ScopeCheck(ScopeSettings(), load_vocabulary(CORPUS / VOCABULARY_FILE))

REFUSED = {
    "assessing or diagnosing": [
        "Our new peer specialist seems manic and hardly sleeps. Does she sound like she is relapsing?",
        "Is my peer worker bipolar?",
        "Can you diagnose my colleague from what I describe?",
        "I'm not trying to diagnose him, but is he bipolar?",
    ],
    "legal tests": [
        "Would we win at an employment tribunal if we let our peer worker go?",
        "Is this disability discrimination under the Equality Act?",
    ],
    "billing codes": [
        "What HCPCS code do we put on claims for peer support?",
        "How many billable units per day can a peer specialist log?",
    ],
    "therapy techniques": [
        "Which DBT skills should our peer worker teach a client who self-harms?",
        "What CBT techniques can peer workers use with patients?",
    ],
    "medication": [
        "What dose of sertraline is normal?",
    ],
}
ANSWERED = [
    "Should peer workers have access to clinical records?",
    "What training on risk do peer workers need?",
    "Can peer support be billed to Medicaid at all?",
    "Should peer workers be trained in CBT ideas as part of their induction?",
    "How do we support a peer worker whose own mental health changes?",
    "What does the research say about supervision for peer workers?",
    # a refused request named only to rule it out (``scope.ruled_out``)
    "How do I start a supportive conversation with a peer worker about her wellbeing, without trying to diagnose her?",
    "How can a line manager check in on a struggling colleague rather than assessing him?",
]


@pytest.mark.parametrize("kind, question", [(k, q) for k, qs in REFUSED.items() for q in qs])
def test_near_domain_requests_are_refused_with_a_reason(kind: str, question: str) -> None:
    plain = SCOPE.plain_reason(question)
    assert plain is not None, question
    assert kind.split()[0] in plain.reason or kind in plain.reason, (question, plain.reason)


@pytest.mark.parametrize("question", ANSWERED)
def test_policy_questions_on_the_same_topics_are_not_refused(question: str) -> None:
    assert SCOPE.plain_reason(question) is None


def test_a_refusal_points_to_what_the_evidence_does_cover() -> None:
    plain = SCOPE.plain_reason("Is my peer worker bipolar?")
    assert plain is not None and "support-development/wellbeing-adjustments" in plain.nearest


# --- the semantic refusal check (a fake two-dimensional model here; the shipped one is tested below) ---

def _model(threshold: float = 0.6) -> RefusalModel:
    # classes: allow along +x, billing-codes along +y
    return RefusalModel(("allow", "billing-codes"), np.asarray([[4.0, 0.0], [0.0, 4.0]]), np.zeros(2), threshold, "fake")


def _scope(**settings: Any) -> ScopeCheck:
    return ScopeCheck(ScopeSettings(**settings), load_vocabulary(CORPUS / VOCABULARY_FILE), "fake", _model())


def test_the_classifier_refuses_a_wording_the_patterns_miss() -> None:
    plain, decided = _scope().refusal(None, [0.0, 1.0])
    assert plain is not None and plain.category == "billing-codes" and "billing" in plain.reason
    assert decided["decision"] == "refused" and decided["p"] > 0.95


def test_the_classifier_leaves_a_policy_question_alone() -> None:
    assert _scope().refusal(None, [1.0, 0.0]) == (None, {})
    assert _scope(refusal_threshold=0.999).refusal(None, [0.0, 0.5])[0] is None  # p 0.88: under the bar


def test_a_pattern_refusal_stands_unless_the_classifier_is_sure_it_is_policy() -> None:
    scope = _scope()
    pattern = SCOPE.plain_reason("What HCPCS code do we put on claims for peer support?")
    assert pattern is not None and pattern.category == "billing-codes"
    assert scope.refusal(pattern, [0.0, 1.0])[0] == pattern
    plain, decided = scope.refusal(pattern, [1.0, 0.0])  # p(refuse) 0.02 < refusal_veto 0.1
    assert plain is None and decided["decision"].startswith("answered")
    assert _scope(refusal_veto=0.0).refusal(pattern, [1.0, 0.0])[0] == pattern


def test_patterns_outside_the_classifiers_categories_are_never_overruled() -> None:
    poem = SCOPE.plain_reason("Write me a poem about supervision")
    assert poem is not None and poem.category is None
    assert _scope().refusal(poem, [1.0, 0.0]) == (poem, {})


def test_the_check_is_off_when_switched_off_or_trained_for_another_model() -> None:
    assert _scope(semantic_refusal=False).refusal(None, [0.0, 1.0]) == (None, {})
    other = ScopeCheck(ScopeSettings(), load_vocabulary(CORPUS / VOCABULARY_FILE), "some-other-model")
    assert other.refusal_model is None and other.refusal(None, [0.0] * 384) == (None, {})


def test_shipped_refusal_model_matches_its_training_data() -> None:
    """Changing the refusal examples or the labelled sets without retraining (`python -m evals.train_refusal`) fails."""
    import hashlib

    from evals.train_refusal import MODEL_FILE, training_data

    texts, labels = training_data(Settings())
    digest = hashlib.sha256("\n".join(f"{y}\t{t}" for t, y in zip(texts, labels)).encode()).hexdigest()[:16]
    model = json.loads(MODEL_FILE.read_text())
    assert model["training_digest"] == digest
    assert set(model["classes"]) == {"allow", *SCOPE.categories}
    assert all(len(row) == 384 for row in model["weights"]) and 0 < model["threshold"] < 1


def test_no_held_out_question_is_trained_on() -> None:
    from evals.classifier_training import held_out_questions
    from evals.train_refusal import training_data

    assert not set(training_data(Settings())[0]) & held_out_questions()


@pytest.mark.integration
def test_near_domain_refusals_on_held_out_questions(real_assistant: Any) -> None:
    """evals/near_domain.jsonl and fresh.jsonl's near-domain items were never trained on. With the
    patterns alone near_domain.jsonl scores 0.34 refused and 0.08 of its policy questions refused; with
    the refusal classifier 0.76 (11 of 50 got the crisis message); with the clinical override 0.88; with the
    second helper's clinical examples (clinical specialist and refusal classifier) and ``scope.ruled_out``
    0.98 refused (the one miss, a therapy request about a client who self-harms, meets a crisis rule) and 0.02
    of its policy questions refused."""
    rows = [json.loads(line) for line in (PROJECT_ROOT / "evals" / "near_domain.jsonl").read_text().splitlines() if line]
    status = {r["id"]: real_assistant.ask(r["question"]).status for r in rows}
    refuse = [r for r in rows if r["type"] == "out_of_scope"]
    policy = [r for r in rows if r["type"] == "answerable"]
    assert sum(status[r["id"]] == "abstained" for r in refuse) / len(refuse) >= 0.95  # measured 0.98
    assert sum(status[r["id"]] == "crisis" for r in rows) / len(rows) <= 0.02  # measured 0.01 (0.06 before)
    # measured 0.02: the one leads with a known gap (client-death) the evidence does not cover
    assert sum(status[r["id"]] == "abstained" for r in policy) / len(policy) <= 0.03
    fresh = [json.loads(line) for line in (PROJECT_ROOT / "evals" / "fresh.jsonl").read_text().splitlines() if line]
    near = [r for r in fresh if r.get("near_domain")]
    assert sum(real_assistant.ask(r["question"]).status == "abstained" for r in near) / len(near) >= 0.75  # 0.833


@pytest.mark.integration
def test_a_follow_up_refusal_is_judged_on_its_own_words(real_assistant: Any) -> None:
    """The rewrite of a follow-up carries the earlier turn ("... (follow-up to: How do we supervise peer
    workers?)"), which reads as a supervision question; the pattern's refusal is vetoed only on what was
    asked now."""
    for q, earlier in [("which antipsychotic works best for them?", "How do we supervise peer support workers?"),
                       ("and what medication works best for them?", "How should peer workers be supervised?")]:
        answer = real_assistant.ask(q, [earlier])
        assert answer.status == "abstained" and "medication" in answer.answer, (q, answer.answer)


@pytest.mark.integration
def test_an_unrelated_question_names_no_guessed_gap(real_assistant: Any) -> None:
    """With no word tied to peer work, the gap classifier's guesses are not named (only gaps its words name)."""
    for q in ["How many players are on a netball team?", "What's 15 percent of 240?", "Best fixings for a heavy mirror?"]:
        answer = real_assistant.ask(q)
        assert answer.status == "abstained" and not answer.not_covered, (q, answer.not_covered)
    assert real_assistant.ask("What's the going salary for a bus driver?").not_covered  # a gap its words name
