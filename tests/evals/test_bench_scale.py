"""The scale benchmark at a tiny size: `peer-assist bench --only scale --scale N --json` prints just
its rows, measured in a fresh process answering from snapshot files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cli import main
from tests.conftest import CORPUS

KEYS = {"passages", "query_p50_ms", "query_p95_ms", "startup_s", "rss_mb"}


@pytest.mark.slow
def test_cli_bench_only_scale_prints_its_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--only", "scale", "--scale", "1000,2000", "--json", "--corpus", str(CORPUS),
                 "--out", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["passages"] for r in rows] == [1000, 2000]
    for r in rows:
        assert KEYS <= set(r)
        assert r["from_snapshot"] is True  # the fresh process answered from the snapshot files
        assert 0 < r["query_p50_ms"] <= r["query_p95_ms"] and r["startup_s"] > 0 and r["rss_mb"] > 0
    assert "## Scale run" in (tmp_path / "bench.md").read_text(encoding="utf-8")
