"""Evaluation metrics. IR metrics use scikit-learn's ``ndcg_score``; the rest are simple shares."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant.compose.base import MARKER_RE as _MARKER


def ranked_cards(card_ids: Iterable[str]) -> list[str]:
    """Card ids in order of first appearance (a passage ranking becomes a card ranking)."""
    return list(dict.fromkeys(card_ids))


def recall_at(ranked: Sequence[str], expected: set[str], k: int) -> float:
    if not expected:
        raise ValueError("recall needs at least one expected item")
    return len(set(ranked[:k]) & expected) / len(expected)


def mrr(ranked: Sequence[str], expected: set[str]) -> float:
    for i, item in enumerate(ranked, 1):
        if item in expected:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence[str], expected: set[str], k: int = 10) -> float:
    """Binary-relevance nDCG@k via scikit-learn; expected items never retrieved count as misses."""
    from sklearn.metrics import ndcg_score

    items = list(ranked)
    missing = [e for e in sorted(expected) if e not in items]
    # Expected items never retrieved count in the ideal ranking but earn nothing: they sit below k
    # non-relevant fillers, past the cut-off.
    fillers = [f"__filler{i}__" for i in range(k)] if missing else []
    items += fillers + missing
    if len(items) < 2:
        items.append("__none__")
    y_true = np.asarray([[1.0 if it in expected else 0.0 for it in items]])
    y_score = np.asarray([[float(len(items) - i) for i in range(len(items))]])
    return float(ndcg_score(y_true, y_score, k=k))


def _ws(text: str) -> str:
    return " ".join(text.split())


@dataclass
class AnswerCheck:
    """What one answer shows about citation validity and grounding."""

    markers_resolve: bool
    cards_exist: bool
    quotes: int
    quotes_found: int
    cited_cards: list[str] = field(default_factory=list)
    themes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.markers_resolve and self.cards_exist


def check_answer(answer: dict[str, Any], card_texts: dict[str, str]) -> AnswerCheck:
    numbers = {c["n"] for c in answer["citations"]}
    used = {int(n) for n in _MARKER.findall(answer["answer"])}
    for s in answer["strategies"]:
        used |= set(s["citations"])
    cards_exist = all(c["card_id"] in card_texts for c in answer["citations"])
    found = sum(1 for c in answer["citations"]
                if c["card_id"] in card_texts and _ws(c["quote"]) in _ws(card_texts[c["card_id"]]))
    return AnswerCheck(
        markers_resolve=used <= numbers, cards_exist=cards_exist, quotes=len(answer["citations"]),
        quotes_found=found, cited_cards=ranked_cards(c["card_id"] for c in answer["citations"]),
        themes=sorted({s["theme"] for s in answer["strategies"] if s["theme"]}),
    )


def card_precision(cited: Sequence[str], expected: set[str]) -> float | None:
    """Share of the cited cards that are expected (None when nothing is cited)."""
    cited_set = set(cited)
    return round(len(cited_set & expected) / len(cited_set), 4) if cited_set else None


def card_recall(cited: Sequence[str], expected: set[str]) -> float:
    """Share of the expected cards that are cited (0 when the answer cites nothing)."""
    if not expected:
        raise ValueError("recall needs at least one expected card")
    return round(len(set(cited) & expected) / len(expected), 4)


def expected_strategies(item: dict[str, Any]) -> set[str]:
    """The strategies a gold item expects (``expected_strategies``, or the "strategies: a/b, c/d" note)."""
    if item.get("expected_strategies"):
        return set(item["expected_strategies"])
    note = str(item.get("notes") or "")
    if "strategies:" not in note:
        return set()
    return {s.strip() for s in note.split("strategies:", 1)[1].split(";")[0].split(",") if "/" in s}


def quote_relevant(citation: dict[str, Any], expected_cards: set[str], strategies: set[str]) -> bool:
    """A relevance judgement for one quoted sentence: it comes from an expected card and, when the
    item names its strategies, from a section on one of them (or on the theme of one, for a
    theme-level heading) or from the card's summary."""
    if citation["card_id"] not in expected_cards:
        return False
    if not strategies:
        return True
    section = str(citation.get("section") or "")
    head = section.split(":", 1)[0].strip()
    if ":" not in section or head.lower() in ("summary", "caveats"):
        return True
    return head in strategies or any(head == s.split("/")[0] for s in strategies)


def share(values: Iterable[bool | float]) -> float | None:
    vals = [float(v) for v in values]
    return round(sum(vals) / len(vals), 4) if vals else None


def precision_recall(predicted: Sequence[bool], actual: Sequence[bool]) -> tuple[float | None, float | None]:
    tp = sum(1 for p, a in zip(predicted, actual) if p and a)
    pp = sum(predicted)
    ap = sum(actual)
    return (round(tp / pp, 4) if pp else None), (round(tp / ap, 4) if ap else None)


#: A claim in an answer's strategy text: words, then the markers that cite them.
_CLAIM = re.compile(r"([^\[\]]*?[^\s\[\]][^\[\]]*?)\s*((?:\[\d+\])+)")


def claims(text: str) -> list[tuple[str, list[int]]]:
    """The cited claims of a strategy text: each stretch of words with the markers that follow it."""
    out = []
    for m in _CLAIM.finditer(text):
        # a label after the previous marker ("(practice guidance)") belongs to that claim, not this one
        claim = re.sub(r"^\s*\([^)]*\)", "", m.group(1)).strip(" .;").strip()
        if claim and re.search(r"\w", claim):
            out.append((claim, [int(n) for n in _MARKER.findall(m.group(2))]))
    return out


def claim_support(answer: dict[str, Any], passage_texts: dict[str, str], tokenize: Callable[[str], list[str]],
                  threshold: float) -> tuple[int, int]:
    """(claims, supported claims) of one answer: a claim is supported when at least ``threshold`` of
    its content words are in the passages its markers cite (a quoted card sentence always is)."""
    by_n = {c["n"]: c for c in answer["citations"]}
    total = supported = 0
    for s in answer["strategies"]:
        for claim, nums in claims(s["text"]):
            words = set(tokenize(claim))
            if not words:
                continue
            cited = " ".join(passage_texts.get(by_n[n].get("passage_id", ""), by_n[n]["quote"])
                             for n in nums if n in by_n)
            total += 1
            supported += len(words & set(tokenize(cited))) / len(words) >= threshold
    return total, supported
