"""The evidence-map benchmark: synthetic cards map like real ones, and `peer-assist bench --only map` reports it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant import evidence_map as em
from assistant.cli import main
from evals.bench import bench_map, synthetic_cards
from ingest.cards import load_corpus
from tests.conftest import CORPUS, make_settings


def test_synthetic_cards_fill_the_map() -> None:
    taxonomy = load_corpus(CORPUS).taxonomy
    cards = synthetic_cards(500, taxonomy)
    m = em.build_map(cards, taxonomy, "kind")
    assert sum(m.column_totals.values()) == 500
    sections = sum(len(c.sections) for c in cards)
    assert sum(len(ids) for ids in m.cells.values()) == sections  # one strategy per section, no duplicates


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_bench_map_figures(tmp_path: Path) -> None:
    r = bench_map(make_settings(tmp_path), synthetic=300, repeats=1)
    assert r["map_real_cards"] == len(load_corpus(CORPUS).cards) and r["map_synthetic_cards"] == 300
    assert set(r["map_real_ms"]) == set(em.BY_CHOICES) and r["map_real_png_ms"] > 0


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_cli_bench_only_map(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import evals.bench

    monkeypatch.setattr(evals.bench, "bench_map", lambda settings: bench_map(settings, synthetic=200, repeats=1))
    assert main(["bench", "--only", "map", "--json", "--corpus", str(CORPUS), "--out", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "map_synthetic_ms" in data and "ingest_passages_per_s" not in data and "scale" not in data
    assert "## Evidence map" in (tmp_path / "bench.md").read_text(encoding="utf-8")
