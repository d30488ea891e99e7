"""`peer-assist bench --only ui-load`, run briefly (2 clients, 3 s) against a real serve over the
real index: the report has every key and no request failed. The full figures (20 clients, 60 s)
come from the benchmark itself, never from a timed test."""

from __future__ import annotations

import pytest

from assistant.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

ROUTE_KEYS = {"route", "clients", "duration_s", "requests", "errors", "hung_clients", "ui_rps", "p50_ms", "p95_ms",
              "server_cpu_ms_per_request", "client_cpu_ms_per_request", "ui_vs_api", "load_avg_1m_before",
              "load_avg_1m_after", "first_errors"}
KEYS = ROUTE_KEYS | {"api_sequential_rps", "api_sequential_rps_before", "api_sequential_rps_after", "target_ratio",
                     "concurrency_limit", "answer_workers", "queue_max_size", "queue_status_every_s", "gradio_queue"}


def test_ui_load_bench_reports_its_figures(real_index: Settings) -> None:
    from evals.bench_ui import bench_ui_load, markdown

    result = bench_ui_load(real_index, clients=2, seconds=3.0, api_seconds=2.0)
    r = result["ui_load"]
    assert set(r) == KEYS
    assert r["clients"] == 2 and r["requests"] > 2 and r["errors"] == 0 and r["hung_clients"] == 0
    assert r["ui_rps"] > 0 and r["api_sequential_rps"] > 0 and 0 < r["p50_ms"] <= r["p95_ms"]
    assert r["ui_vs_api"] == round(r["ui_rps"] / r["api_sequential_rps"], 3)
    assert r["route"] == "POST /api/ask"
    assert r["api_sequential_rps"] == max(r["api_sequential_rps_before"], r["api_sequential_rps_after"])
    g = r["gradio_queue"]
    assert set(g) == ROUTE_KEYS and g["requests"] > 2 and g["errors"] == 0 and g["hung_clients"] == 0
    text = "\n".join(markdown(result))
    assert "## UI under load" in text and f"| {r['requests']} | 0 |" in text and f"| {g['requests']} | 0 |" in text
