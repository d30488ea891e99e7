"""Live reindex: a running UI switches to the index generation a ``peer-assist ingest`` in another
process writes, between requests, with no failed request and no request that mixes the two.

Real things: the real model, an embedded Chroma copied from the session's real index, the UI in a
child process (``serve_app.py``), clients over plain HTTP, ``peer-assist ingest`` in a subprocess.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import Settings
from tests.resilience.conftest import (
    FIGURES,
    PROJECT_ROOT,
    QUESTION,
    TracedIndex,
    check_answer,
    child_env,
    free_port,
    run_cli,
    settings_env,
    stop_process,
)
from tests.resilience.test_load import ask_http

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CLIENTS = 4
MARKER = "Reindexed-live"
AFTER_SWITCH_S = 4.0


def start_ui(settings: Settings, work: Path, **extra: Any) -> tuple[subprocess.Popen[str], str, Any]:
    """The UI in a child process on a free loopback port; returns (process, base URL, its log file)."""
    port = free_port()
    env = child_env(**{**settings_env(settings), "PEER_ASSIST_RATE_LIMIT_PER_MINUTE": "0",
                       "PEER_ASSIST_FEEDBACK_PATH": str(work / f"feedback-{port}.jsonl"), **extra})
    log = open(work / f"ui-{port}.log", "w")  # noqa: SIM115 - the caller closes it
    proc = subprocess.Popen([sys.executable, "-m", "tests.resilience.serve_app", str(port)], env=env,
                            cwd=str(PROJECT_ROOT), stdout=subprocess.PIPE, stderr=log, text=True)
    line = ""
    while not line.startswith("READY"):
        line = proc.stdout.readline() if proc.stdout else ""
        if not line and proc.poll() is not None:
            log.close()
            raise RuntimeError(f"the UI exited: {(work / f'ui-{port}.log').read_text()[-3000:]}")
    return proc, f"http://127.0.0.1:{port}", log


def copy_index(source: Settings, root: Path) -> Settings:
    """A writable copy of a built index and its corpus (the source is never modified)."""
    shutil.copytree(source.index.corpus_dir, root / "corpus")
    shutil.copytree(source.index.index_dir, root / "index", ignore=shutil.ignore_patterns("ingest.lock"))
    return source.replace(corpus_dir=root / "corpus", index_dir=root / "index")


def edit_first_quote(settings: Settings, answer: dict[str, Any]) -> str:
    """Put MARKER in front of the answer's first quoted sentence, in its card file; returns the card id."""
    first = answer["citations"][0]
    path = next(p for p in settings.index.corpus_dir.rglob(f"{first['card_id']}.md"))
    text = path.read_text(encoding="utf-8")
    quote = " ".join(first["quote"].split())
    head = quote.split(" ", 6)
    anchor = " ".join(head[:6])
    assert anchor in text, (first["card_id"], anchor)
    path.write_text(text.replace(anchor, f"{MARKER} {anchor}", 1), encoding="utf-8")
    return str(first["card_id"])


@pytest.mark.timeout(600)
def test_running_ui_switches_to_a_reindex_with_no_failed_request(real_index_traced: TracedIndex,
                                                                  tmp_path: Path) -> None:
    import httpx

    settings = copy_index(real_index_traced.settings, tmp_path)
    proc, base, log = start_ui(settings, tmp_path)
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            before = ask_http(client, QUESTION)
        check_answer(before, settings)
        assert MARKER not in before["answer"]

        # (started, finished, finished by the wall clock, answer has the marker)
        results: list[tuple[float, float, float, bool]] = []
        errors: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def client_loop() -> None:
            with httpx.Client(base_url=base, timeout=120) as client:
                while not stop.is_set():
                    t0 = time.monotonic()
                    try:
                        data = ask_http(client, QUESTION)
                        assert data["status"] == "answered", data.get("reason")
                    except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                        with lock:
                            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                        continue
                    with lock:
                        results.append((t0, time.monotonic(), time.time(), MARKER in data["answer"]))

        threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        card = edit_first_quote(settings, before)
        t_ingest = time.monotonic()
        env = child_env(**settings_env(settings))
        done = run_cli(["ingest", "--json", "--no-diff"], env, timeout=300)
        t_done = time.monotonic()
        assert done.returncode == 0, done.stderr[-3000:]

        deadline = t_done + 60
        first_new: float | None = None
        while time.monotonic() < deadline and first_new is None:
            with lock:
                first_new = min((end for _, end, _, new in results if new), default=None)
            time.sleep(0.05)
        assert first_new is not None, "no answer from the new index within 60 s of the ingest finishing"
        time.sleep(AFTER_SWITCH_S)
        stop.set()
        for t in threads:
            t.join(timeout=150)
        assert not any(t.is_alive() for t in threads), "a client hung"

        assert errors == [], errors[:5]
        # Once a request has seen the new index, every request that started after it does too.
        late = [new for started, _, _, new in results if started > first_new]
        first_new_wall = min(wall for _, _, wall, new in results if new)
        # the new generation is complete when ingest writes its manifest (the process exits a little later)
        written = (settings.index.index_dir / "manifest.json").stat().st_mtime
        assert late and all(late), f"{late.count(False)} of {len(late)} later answers came from the old index"
        with httpx.Client(base_url=base, timeout=120) as client:
            after = ask_http(client, QUESTION)
        assert MARKER in after["answer"] and card in {c["card_id"] for c in after["citations"]}
        check_answer(after, settings)
        figures = {"clients": CLIENTS, "requests": len(results) + len(errors), "errors": len(errors),
                   "ingest_s": round(t_done - t_ingest, 1),
                   "manifest_written_to_first_new_answer_s": round(first_new_wall - written, 2),
                   "ingest_exit_to_first_new_answer_s": round(first_new - t_done, 2),
                   "old_answers_during_ingest": sum(1 for s, _, _, new in results if t_ingest <= s <= t_done and not new)}
        FIGURES.setdefault("live_reindex", {}).update(figures)
        print(f"\nlive reindex: {figures}")
    finally:
        stop_process(proc, grace=15)
        if proc.stdout:
            proc.stdout.close()
        log.close()
