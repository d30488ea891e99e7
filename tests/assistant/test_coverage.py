"""Known gaps and aspects: what a question asks that the evidence does not cover."""

from __future__ import annotations

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
