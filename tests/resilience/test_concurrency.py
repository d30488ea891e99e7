"""One writer at a time, and readers that keep answering while a reindex runs in another process."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import Settings
from tests.resilience.conftest import (
    FIGURES,
    QUESTION,
    assert_converged,
    check_answer,
    child_env,
    expected_ids,
    last_study,
    percentile,
    retitle_cards,
    settings_env,
    start_cli,
)

# Two processes and a real reindex each: the slow tier (make test), not the fast gate (make check).
pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

QUESTIONS = (QUESTION, "What training do peer workers need?", "How can leaders show they support peer work?",
             "What should we do before our first peer worker starts?")


def _wait_for_trace(trace: Path, proc: subprocess.Popen[str], event: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if trace.exists() and event in trace.read_text(encoding="utf-8"):
            return
        assert proc.poll() is None, f"the writer exited early: {proc.communicate()[1][-2000:]}"
        time.sleep(0.02)
    raise TimeoutError(event)


class Readers:
    """Asks questions in this process while other processes write, and keeps the score."""

    def __init__(self, assistant: Any, validate_with: Settings) -> None:
        self.assistant = assistant
        self.settings = validate_with
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.statuses: dict[str, int] = {}
        self.i = 0

    def ask_one(self) -> None:
        question = QUESTIONS[self.i % len(QUESTIONS)]
        self.i += 1
        t0 = time.perf_counter()
        try:
            data = self.assistant.ask(question).to_dict()
            check_answer(data, self.settings)
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            return
        finally:
            self.latencies.append(time.perf_counter() - t0)
        self.statuses[data["status"]] = self.statuses.get(data["status"], 0) + 1

    def summary(self) -> dict[str, Any]:
        return {"answers": sum(self.statuses.values()), "errors": len(self.errors), "statuses": self.statuses,
                "p50_ms": round(percentile(self.latencies, 50) * 1000, 1),
                "p95_ms": round(percentile(self.latencies, 95) * 1000, 1)}


def test_one_writer_at_a_time_and_readers_keep_answering(hash_index: Settings, tmp_path: Path) -> None:
    """Writer A (``ingest --full``, slowed down) holds the lock; B (no --wait) exits 1 at once with a
    clear message; C (``--wait 120``) waits for A and then finds nothing to do. An Assistant opened
    before A started keeps answering all along."""
    from assistant.chat import Assistant

    settings = hash_index
    readers = Readers(Assistant(settings), settings)
    readers.ask_one()
    assert not readers.errors, readers.errors

    env = child_env(**settings_env(settings))
    trace = tmp_path / "writer.trace"
    a = start_cli(["ingest", "--full", "--json"],
                  {**env, "RESILIENCE_TRACE": str(trace), "RESILIENCE_SLOW_EMBED_S": "1.5"})
    _wait_for_trace(trace, a, "manifest writing")
    b = start_cli(["ingest", "--json"], env)
    c = start_cli(["ingest", "--json", "--wait", "120"], env)
    ended: dict[str, float] = {}
    procs = {"A": a, "B": b, "C": c}
    deadline = time.monotonic() + 240
    while len(ended) < 3 and time.monotonic() < deadline:
        readers.ask_one()
        for name, proc in procs.items():
            if name not in ended and proc.poll() is not None:
                ended[name] = time.time()
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
    outs = {name: proc.communicate(timeout=30) for name, proc in procs.items()}

    assert a.returncode == 0, outs["A"][1][-2000:]
    assert b.returncode == 1, outs["B"]
    b_err = outs["B"][1]
    assert "being rebuilt by another process" in b_err and str(settings.index.index_dir) in b_err, b_err
    assert "Traceback" not in b_err and outs["B"][0] == ""
    a_done = next(float(line.split()[0]) for line in trace.read_text(encoding="utf-8").splitlines()
                  if line.endswith("manifest complete"))
    assert ended["B"] < a_done, "B was refused while A still held the lock"
    assert c.returncode == 0, outs["C"][1][-2000:]
    assert ended["C"] > a_done, "C waited until A had finished"
    c_report = json.loads(outs["C"][0])
    assert (c_report["added"], c_report["deleted"]) == (0, 0), "A had already done the work"
    assert_converged(settings)

    figures = readers.summary()
    figures["note"] = "embedded store; --full rebuild in another process (slowed to ~5 s)"
    FIGURES.setdefault("concurrency", {})["readers_during_full_reindex"] = figures
    print(f"\nreaders during a --full reindex in another process: {figures}")
    assert not readers.errors, readers.errors[:5]
    assert figures["answers"] >= 10 and set(readers.statuses) == {"answered"}


def test_readers_keep_answering_during_an_incremental_reindex(hash_index: Settings, hash_template: Settings,
                                                            tmp_path: Path) -> None:
    """30 cards retitled and one deleted, reindexed by a subprocess while this process answers.

    Until it reloads, a long-lived reader answers from the index as it loaded it (so its answers are
    checked against the corpus as it was); after ``reload()`` its passages and citations come from the
    new index, and the deleted card is gone."""
    from assistant.chat import Assistant

    settings = hash_index
    assistant = Assistant(settings)
    readers = Readers(assistant, hash_template)  # the corpus as the reader loaded it
    readers.ask_one()
    retitle_cards(settings.index.corpus_dir, 30)
    deleted = last_study(settings.index.corpus_dir)
    deleted.unlink()

    env = child_env(**settings_env(settings), RESILIENCE_SLOW_EMBED_S="0.5")
    writer = start_cli(["ingest", "--json"], env)
    while writer.poll() is None:
        readers.ask_one()
    out, err = writer.communicate(timeout=30)
    assert writer.returncode == 0, err[-2000:]
    report = json.loads(out)
    assert report["changes"]["deleted"] == [deleted.stem] and len(report["changes"]["updated"]) == 30
    assert_converged(settings)

    figures = readers.summary()
    FIGURES.setdefault("concurrency", {})["readers_during_incremental_reindex"] = figures
    print(f"\nreaders during an incremental reindex in another process: {figures}")
    assert not readers.errors, readers.errors[:5]
    assert figures["answers"] >= 5

    assistant.reload()
    expected = expected_ids(settings)
    for question in QUESTIONS:
        data = assistant.ask(question).to_dict()
        check_answer(data, settings)
        assert all(c["card_id"] != deleted.stem for c in data["citations"])
        assert {r["chunk_id"] for r in data["retrieved"]} <= expected
