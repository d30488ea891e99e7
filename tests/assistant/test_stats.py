"""`peer-assist stats`: cards behind each strategy and the known-gaps list."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from assistant.cli import main
from tests.conftest import CORPUS

GAPS = """gaps:
  - id: pay-rates
    topic: exact pay rates for peer workers
    terms: [pay rate, salary]
    instead: ask your HR team
    partly_covered_by: [gates-2007]
  - id: client-death
    topic: supporting peer workers after the death of someone they supported
    terms: [death]
    instead: use your organisation's critical incident support
    partly_covered_by: []
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    dest = tmp_path / "corpus"
    shutil.copytree(CORPUS, dest, ignore=shutil.ignore_patterns("known_gaps.yaml"))
    return dest


def test_stats_per_strategy_without_known_gaps(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--corpus", str(corpus), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["known_gaps"] is None and data["known_gaps_problem"] is None
    supervision = next(s for s in data["by_strategy"] if (s["theme"], s["strategy"]) == ("support-development", "supervision"))
    assert supervision["cards"] == len(supervision["card_ids"]) > 0
    assert sum(supervision["by_kind"].values()) == supervision["cards"]
    assert "gates-2007" in next(s for s in data["by_strategy"] if s["strategy"] == "policies")["card_ids"]
    assert main(["stats", "--corpus", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "by strategy (cards backing it, by kind; fewest first" in out
    assert "known gaps: no known_gaps.yaml in the corpus yet" in out
    counts = [int(line.split()[1]) for line in out.split("fewest first")[1].splitlines()[1:] if line.startswith("  ")]
    assert counts == sorted(counts)


def test_stats_lists_known_gaps(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (corpus / "known_gaps.yaml").write_text(GAPS, encoding="utf-8")
    assert main(["stats", "--corpus", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "  pay-rates: exact pay rates for peer workers; partly covered by gates-2007" in out
    assert "  client-death: supporting peer workers after the death of someone they supported\n" in out
    assert main(["stats", "--corpus", str(corpus), "--json"]) == 0
    gaps = json.loads(capsys.readouterr().out)["known_gaps"]
    assert [g["id"] for g in gaps] == ["pay-rates", "client-death"] and gaps[0]["partly_covered_by"] == ["gates-2007"]


def test_unreadable_known_gaps_do_not_break_stats(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (corpus / "known_gaps.yaml").write_text("gaps: [unclosed\n", encoding="utf-8")
    assert main(["stats", "--corpus", str(corpus)]) == 0
    assert "known gaps: known_gaps.yaml cannot be read" in capsys.readouterr().out
