"""How far a second annotator agrees with the shipped ``expected_cards``: the ceiling a system's
card precision and recall can be read against.

A helper who saw no code, no answer, no report and no existing label re-annotated the gold test
split's answerable and risk-adjacent items and the fresh set's answerable items from the cards,
``themes.yaml`` and the known gaps alone, with the instruction the shipped labels follow ("every card
whose text answers the question, and nothing else"): ``evals/annotator2/``. Scored like an answer:
the second annotator's cards are "cited", the shipped ones "expected". Run: ``python -m evals.agreement``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from assistant.settings import PROJECT_ROOT

SETS = {"gold test split": ("evals/gold.jsonl", "evals/annotator2/gold_test.jsonl"),
        "fresh": ("evals/fresh.jsonl", "evals/annotator2/fresh.jsonl")}


def _rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (PROJECT_ROOT / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def agreement(shipped_file: str, second_file: str) -> dict[str, float | int]:
    """Mean card precision and recall of the second annotator against the shipped labels, over the
    items both give cards; and how many items exactly one of them leaves empty."""
    shipped = {r["id"]: set(r.get("expected_cards") or []) for r in _rows(shipped_file)}
    precision, recall, one_empty = [], [], 0
    for row in _rows(second_file):
        a, b = shipped[row["id"]], set(row["cards"])
        if a and b:
            precision.append(len(a & b) / len(b))
            recall.append(len(a & b) / len(a))
        elif a or b:
            one_empty += 1
    return {"items": len(precision), "card_precision": round(sum(precision) / len(precision), 3),
            "card_recall": round(sum(recall) / len(recall), 3), "one_side_empty": one_empty}


def main() -> int:
    for name, (shipped, second) in SETS.items():
        print(name, json.dumps(agreement(shipped, second)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
