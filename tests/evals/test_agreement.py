"""The second annotator's labels (``evals/annotator2/``) cover the sets they claim to, and the
agreement figures quoted in ``evals/GOLD.md`` are what ``evals.agreement`` computes from them."""

from __future__ import annotations

import json

from assistant.settings import PROJECT_ROOT
from evals.agreement import SETS, agreement


def _ids(name: str, split_test: bool) -> list[str]:
    rows = [json.loads(line) for line in (PROJECT_ROOT / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["id"] for r in rows if (not split_test or r.get("split") == "test")
            and r["type"] in ("answerable", "risk_adjacent")]


def test_the_second_annotation_covers_every_item_once_and_names_real_cards() -> None:
    cards = {p.stem for folder in ("review", "studies", "related", "guidance") for p in (PROJECT_ROOT / "corpus" / folder).glob("*.md")}
    for shipped, second in SETS.values():
        rows = [json.loads(line) for line in (PROJECT_ROOT / second).read_text(encoding="utf-8").splitlines() if line.strip()]
        assert [r["id"] for r in rows] == _ids(shipped, split_test=True)
        assert all(set(r["cards"]) <= cards for r in rows)


def test_agreement_matches_the_figures_in_gold_md() -> None:
    text = (PROJECT_ROOT / "evals" / "GOLD.md").read_text(encoding="utf-8")
    gold = agreement(*SETS["gold test split"])
    fresh = agreement(*SETS["fresh"])
    assert (gold["card_precision"], gold["card_recall"]) == (0.805, 0.991)
    assert (fresh["card_precision"], fresh["card_recall"]) == (0.79, 0.973)
    assert "precision 0.805, recall 0.991" in text and "precision 0.790, recall 0.973" in text
