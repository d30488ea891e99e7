"""Composition stages on hand-made passages: sentence choice (assistant/compose/sentences.py) and the
grounded composer (assistant/compose/grounded.py), with no index and no model."""

from __future__ import annotations

import re

import pytest

from assistant.compose.grounded import GroundedComposer
from assistant.compose.sentences import best_sentences
from assistant.retrieval import RetrievalResult
from assistant.settings import ComposeSettings
from ingest.taxonomy import load_taxonomy
from ingest.text import Tokenizer
from ingest.types import ScoredPassage
from ingest.vocabulary import load_vocabulary
from tests.assistant.passages import passage, scored
from tests.conftest import CORPUS

TOKENIZE = Tokenizer()
TEXT = "Supervisors met peer workers monthly.  This kept the role clear.\n\nFunding came from the trust."


def best(text: str, question: str, n: int = 1) -> list[str]:
    return best_sentences(text, set(TOKENIZE(question)), lambda t: 1.0, TOKENIZE, n)


# ---- best_sentences -----------------------------------------------------------------------------

def test_the_sentence_sharing_most_words_is_quoted_exactly() -> None:
    assert best(TEXT, "Where did the funding come from, the trust?") == ["Funding came from the trust."]


def test_an_anaphor_brings_the_sentence_before_it() -> None:
    (quote,) = best(TEXT, "How was the role kept clear?")
    assert quote == "Supervisors met peer workers monthly.  This kept the role clear."
    assert quote in TEXT  # the exact span, odd spacing included


def test_no_pull_when_the_previous_sentence_is_quoted_anyway() -> None:
    quotes = best(TEXT, "supervisors monthly role clear", n=2)
    assert quotes == ["Supervisors met peer workers monthly.", "This kept the role clear."]


def test_ties_favour_the_first_sentence_and_short_texts_come_whole() -> None:
    assert best(TEXT, "nothing in common") == ["Supervisors met peer workers monthly."]
    assert best("One sentence only.", "anything", n=2) == ["One sentence only."]


@pytest.mark.parametrize("question", ["role", "trust funding", "monthly supervisors", "clear this"])
def test_every_quote_is_a_substring(question: str) -> None:
    for n in (1, 2, 3):
        assert all(q in TEXT for q in best(TEXT, question, n))


# ---- GroundedComposer ---------------------------------------------------------------------------

SUP = {"theme": "support-development", "strategy": "supervision"}
ALPHA = passage("alpha-2020", 0, "Supervisors with lived experience understood the peer role. They met monthly.", **SUP)
GAMMA = passage("gamma-2021", 0, "Supervision by a senior peer helped new staff settle.", **SUP,
                country="Australia", design_type="mixed methods")
BETA = passage("beta-2019", 0, "Leaders spoke up for peer roles in every meeting.", theme="leadership",
               strategy="leader-commitment")
DELTA = passage("delta-2018", 0, "The study interviewed managers about supervising peer staff.", section="summary")


@pytest.fixture(scope="module")
def composer() -> GroundedComposer:
    return GroundedComposer(ComposeSettings(), load_taxonomy(CORPUS / "themes.yaml"),
                            load_vocabulary(CORPUS / "vocabulary.yaml"), lambda t: 1.0)


def result(*passages: ScoredPassage, enumerated: list[str] | None = None) -> RetrievalResult:
    return RetrievalResult(list(passages), best_dense=0.5, query_vector=[], enumerated_cards=enumerated or [])


def check_grounded(comp, passages: list[ScoredPassage]) -> None:  # type: ignore[no-untyped-def]
    texts = {sp.passage.id: sp.passage.text for sp in passages}
    numbers = [c.n for c in comp.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    assert {int(n) for n in re.findall(r"\[(\d+)\]", comp.answer)} == set(numbers)
    for c in comp.citations:
        assert c.quote in texts[c.passage_id], c
        assert f"{c.quote} [{c.n}]" in comp.answer


def test_strategies_are_grouped_in_the_reviews_theme_order(composer: GroundedComposer) -> None:
    ranked = [scored(ALPHA, 0.9), scored(GAMMA, 0.8), scored(BETA, 0.7), scored(DELTA, 0.6)]
    comp = composer.compose("Who should supervise peer workers?", result(*ranked))
    check_grounded(comp, ranked)
    # Strategies in the review's order (leadership first); a summary is not quoted beside strategies
    # unless the question asks what studies found.
    assert [(s.theme, s.title) for s in comp.strategies] == [
        ("leadership", "Visible commitment and championing by leaders"),
        ("support-development", "Supervision that understands the peer role")]
    assert [c.card_id for c in comp.citations] == ["beta-2019", "alpha-2020", "gamma-2021"]
    assert comp.answer.startswith("**Bottom line.** The evidence here (3 studies) points to 2 strategies")
    assert comp.answer.index("#### Leadership championing") < comp.answer.index("#### Support and development")
    assert "*Evidence: 2 research sources (1 qualitative, 1 mixed methods); UK, Australia.*" in comp.answer
    assert comp.evidence["n_sources"] == 3


def test_a_findings_question_quotes_the_top_summaries_first(composer: GroundedComposer) -> None:
    ranked = [scored(DELTA, 0.9), scored(ALPHA, 0.8)]
    comp = composer.compose("What did the studies find about supervision?", result(*ranked))
    check_grounded(comp, ranked)
    assert comp.strategies[0].title == "What the studies found" and comp.citations[0].card_id == "delta-2018"


def test_one_source_is_thin_and_says_so(composer: GroundedComposer) -> None:
    comp = composer.compose("Who should supervise peer workers?", result(scored(ALPHA, 0.9)))
    assert comp.thin and any(n.startswith("Only one research source") for n in comp.notes)
    assert "**How strong the evidence is.** Only one research source" in comp.answer


def test_only_summaries_are_reported_as_findings(composer: GroundedComposer) -> None:
    comp = composer.compose("Who should supervise peer workers?", result(scored(DELTA, 0.9)))
    assert "points to these findings" in comp.answer and "#### What the studies found" in comp.answer
    assert [c.card_id for c in comp.citations] == ["delta-2018"]


def test_enumeration_lists_every_card_newest_first(composer: GroundedComposer) -> None:
    ranked = [scored(ALPHA, 0.9), scored(GAMMA, 0.1)]
    comp = composer.compose("Which studies looked at supervision?", result(*ranked, enumerated=["alpha-2020", "gamma-2021"]))
    check_grounded(comp, ranked)
    assert comp.answer.startswith("2 sources in the evidence base report a strategy on this:")
    assert "Supervision that understands the peer role (Support and development): 2 sources" in comp.answer
    lines = [line for line in comp.answer.splitlines() if line.startswith("- **")]
    assert lines[0].startswith("- **Gamma (2021)**, Australia, mixed methods: ") and lines[1].startswith("- **Alpha (2020)**")


def test_composition_is_deterministic(composer: GroundedComposer) -> None:
    ranked = [scored(ALPHA, 0.9), scored(GAMMA, 0.8), scored(BETA, 0.7)]
    first = composer.compose("Who should supervise peer workers?", result(*ranked))
    assert composer.compose("Who should supervise peer workers?", result(*ranked)) == first
