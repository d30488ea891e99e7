"""IR and answer metrics, cross-checked on hand-computed examples."""

from __future__ import annotations

import math

import pytest

from evals import metrics as M
from evals.run import aggregate, compare, diff_rows


def test_recall_and_mrr_by_hand() -> None:
    ranked = ["a", "x", "b", "y", "z", "c"]
    expected = {"a", "b", "c", "d"}
    assert M.recall_at(ranked, expected, 5) == 0.5  # a, b of 4
    assert M.recall_at(ranked, expected, 10) == 0.75  # a, b, c of 4
    assert M.mrr(ranked, expected) == 1.0
    assert M.mrr(["x", "y", "b"], expected) == pytest.approx(1 / 3)
    assert M.mrr(["x"], expected) == 0.0
    with pytest.raises(ValueError):
        M.recall_at(ranked, set(), 5)


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_ndcg_matches_a_hand_computation() -> None:
    # Relevant at ranks 1 and 3; a third relevant item was never retrieved.
    ranked = ["a", "x", "b", "y"]
    expected = {"a", "b", "c"}
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert M.ndcg_at(ranked, expected, 10) == pytest.approx(dcg / idcg)
    assert M.ndcg_at(["a", "b", "c"], expected, 10) == pytest.approx(1.0)
    assert M.ndcg_at(["x", "y"], expected, 10) == 0.0


def test_check_answer_validity_and_grounding() -> None:
    cards = {"c1": "Peer workers valued   supervision.\nIt helped.", "c2": "Other text."}
    answer = {"answer": "Supervision matters [1] and more [2].", "strategies": [{"theme": "t", "citations": [1, 2]}],
              "citations": [{"n": 1, "card_id": "c1", "quote": "Peer workers valued supervision."},
                            {"n": 2, "card_id": "c2", "quote": "Invented sentence."}]}
    check = M.check_answer(answer, cards)
    assert check.valid and check.quotes == 2 and check.quotes_found == 1
    answer["answer"] += " [3]"
    assert not M.check_answer(answer, cards).markers_resolve
    answer["citations"][1]["card_id"] = "missing"
    assert not M.check_answer(answer, cards).cards_exist


def test_precision_recall() -> None:
    assert M.precision_recall([True, True, False, False], [True, False, True, False]) == (0.5, 0.5)
    assert M.precision_recall([False], [False]) == (None, None)


def _row(**kw: object) -> dict:
    base = {"id": "q", "split": "test", "type": "answerable", "question": "q", "status": "answered", "status_ok": True,
            "expected_cards": ["a"], "expected_themes": ["t"], "cited_cards": ["a"], "themes": ["t"],
            "citation_valid": True, "quotes": 1, "quotes_found": 1, "latency_ms": 10.0, "answer": "",
            "retrieval": {}, "expected_card_cited": True, "theme_hit": True, "theme_coverage": 1.0}
    base.update(kw)
    return base


def test_aggregate_and_compare() -> None:
    rows = [_row(), _row(id="o", type="out_of_scope", status="abstained", expected_cards=[]),
            _row(id="c", type="crisis", status="answered", status_ok=False, expected_cards=[])]
    m = aggregate(rows)
    assert m["crisis_recall"] == 0.0 and m["abstention_precision"] == 1.0
    assert m["status_accuracy"] == pytest.approx(2 / 3, abs=1e-3)
    baseline = {"tolerance": 0.05, "metrics": {"status_accuracy": 0.9, "false_crisis_rate": 0.0},
                "floors": {"crisis_recall": 1.0}}
    problems = compare(m, baseline)
    assert any(p.startswith("status_accuracy") for p in problems)
    assert any(p.startswith("crisis_recall") for p in problems)


def test_diff_rows_reports_status_and_citation_changes() -> None:
    before = [_row(id="1", cited_cards=["a", "b"]), _row(id="2"), _row(id="3")]
    after = [_row(id="1", cited_cards=["a", "c"]), _row(id="2", status="abstained"), _row(id="3")]
    changes = {c["id"]: c for c in diff_rows(before, after)}
    assert set(changes) == {"1", "2"}
    assert changes["1"]["cards_added"] == ["c"] and changes["1"]["cards_lost"] == ["b"]
    assert changes["2"]["status"] == ["answered", "abstained"]


def test_claims_are_the_cited_stretches_of_a_strategy_text() -> None:
    from evals.metrics import claims

    text = "Peer workers value supervision. [1] (practice guidance) Managers plan time [2][3]. Uncited tail."
    assert claims(text) == [("Peer workers value supervision", [1]), ("Managers plan time", [2, 3])]


def test_claim_support_checks_each_claim_against_the_passages_it_cites() -> None:
    from evals.metrics import claim_support
    from ingest.text import Tokenizer

    answer = {"citations": [{"n": 1, "passage_id": "p1", "quote": "q"}, {"n": 2, "passage_id": "p2", "quote": "q"}],
              "strategies": [{"text": "Peer workers valued supervision. [1] Bananas grow in plantations. [2]"}]}
    texts = {"p1": "Peer workers valued supervision from peers.", "p2": "Managers planned supervision time."}
    assert claim_support(answer, texts, Tokenizer(), 0.6) == (2, 1)


def test_aggregate_reports_llm_sentences_and_fallback_rate() -> None:
    from evals.run import aggregate

    base = {"type": "answerable", "status": "answered", "status_ok": True, "expected_cards": [], "retrieval": {},
            "citation_valid": True, "quotes": 1, "quotes_found": 1, "latency_ms": 5.0}
    rows = [{**base, "claims": 3, "claims_supported": 3,
             "llm": {"generated": 5, "kept": 3, "dropped": [{}, {}], "fallback": "none"}},
            {**base, "claims": 4, "claims_supported": 4,
             "llm": {"generated": 2, "kept": 0, "dropped": [{}, {}], "fallback": "replaced"}}]
    out = aggregate(rows)
    assert (out["claims"], out["claim_support"], out["fallback_rate"]) == (7, 1.0, 0.5)
    assert (out["llm_sentences_generated"], out["llm_sentences_kept"], out["llm_sentences_dropped"]) == (7, 3, 4)


def test_false_gap_rate_counts_gaps_named_where_none_was_asked_about() -> None:
    from evals.run import aggregate

    def row(kind: str, named: list[str], expected: list[str]) -> dict[str, object]:
        return {"id": kind, "split": "test", "type": kind, "status": "answered", "status_ok": True,
                "gaps_named": named, "not_covered": named, "expected_not_covered": expected, "latency_ms": 1.0,
                "citation_valid": True, "quotes": 0, "quotes_found": 0, "retrieval": {}, "expected_cards": [],
                "cited_cards": [], "themes": []}

    rows = [row("answerable", ["pay rates"], []), row("answerable", [], []), row("risk_adjacent", [], []),
            row("risk_adjacent", ["pay rates"], ["pay rates"]), row("out_of_scope", ["pay rates"], [])]
    out = aggregate(rows)
    assert out["false_gap_rate"] == round(1 / 3, 4)
    assert out["not_covered_named"] == 1.0
