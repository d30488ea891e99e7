"""Careful refusals in the domain's own vocabulary, and the policy questions beside them that are
still answered. Examples written for this test (not taken from any evaluation set)."""

from __future__ import annotations

import pytest

from assistant.scope import ScopeCheck
from assistant.settings import ScopeSettings
from ingest.vocabulary import VOCABULARY_FILE, load_vocabulary
from tests.conftest import CORPUS

SCOPE = ScopeCheck(ScopeSettings(), load_vocabulary(CORPUS / VOCABULARY_FILE))

REFUSED = {
    "assessing or diagnosing": [
        "Our new peer specialist seems manic and hardly sleeps. Does she sound like she is relapsing?",
        "Is my peer worker bipolar?",
        "Can you diagnose my colleague from what I describe?",
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
