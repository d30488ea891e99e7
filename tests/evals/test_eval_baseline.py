"""The evaluation suite against the committed baseline: the current engine passes, and a
deliberately broken retriever (returning the worst passages) fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.retrieval import HybridRetriever
from evals.run import BASELINE, GOLD, main


@pytest.fixture(scope="module")
def test_split_gold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Only the test split: the baseline gate compares test-split metrics."""
    path = tmp_path_factory.mktemp("gold") / "gold-test.jsonl"
    rows = [line for line in GOLD.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["split"] == "test"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.integration
def test_current_engine_meets_the_baseline(real_assistant: Any, test_split_gold: Path, tmp_path: Path) -> None:
    code = main(real_assistant.settings, gold=test_split_gold, out=tmp_path, baseline=BASELINE,
                assistant=real_assistant)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["regressions"] == [], report["regressions"]
    assert code == 0
    assert (tmp_path / "report.md").exists() and (tmp_path / "metrics.png").stat().st_size > 1000
    metrics = report["metrics"]["test"]
    assert metrics["citation_validity"] == 1.0 and metrics["grounding"] == 1.0 and metrics["crisis_recall"] == 1.0


@pytest.mark.integration
def test_broken_retrieval_fails_against_the_baseline(real_assistant: Any, test_split_gold: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    original = HybridRetriever.retrieve

    def worst_first(self: HybridRetriever, query: str, **kwargs: Any) -> Any:
        kwargs["k"] = 200
        result = original(self, query, **kwargs)
        result.passages = list(reversed(result.passages))[: self.settings.top_k]
        result.candidates = list(reversed(result.candidates))  # what the relevance gate judges
        result.enumerated_cards = []
        return result

    monkeypatch.setattr(HybridRetriever, "retrieve", worst_first)
    code = main(real_assistant.settings, gold=test_split_gold, out=tmp_path, baseline=BASELINE,
                assistant=real_assistant)
    report = json.loads((tmp_path / "report.json").read_text())
    assert code == 1
    assert any(p.startswith("hybrid.") for p in report["regressions"])
    assert any(p.startswith(("card_precision", "card_recall")) for p in report["regressions"])
