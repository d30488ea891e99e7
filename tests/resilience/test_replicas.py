"""Two ``peer-assist serve`` replicas against one real ``chroma run``: the same question gets the same
answer from both, and a reindex through one of them is picked up by both (each reads the index
generation from the collection's metadata; the second replica has no local index at all).

Real model, four cards (to keep ingest short), real server, real serve processes, plain HTTP.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import ScopeSettings
from tests.resilience.conftest import (
    FIGURES,
    PROJECT_ROOT,
    QUESTION,
    REAL_MODEL,
    ChromaServer,
    bin_path,
    check_answer,
    child_env,
    free_port,
    run_cli,
    settings_env,
    stop_process,
    wait_for_http,
)
from tests.resilience.test_load import ask_http
from tests.resilience.test_server import MINI_CARDS

pytestmark = [pytest.mark.server, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

MARKER = "Replica-reindexed"


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("status", "answer", "citations", "strategies", "not_covered", "retrieved")
    return all(a[k] == b[k] for k in keys)


def test_two_replicas_answer_alike_and_both_pick_up_a_reindex(chroma_server: ChromaServer, tmp_path: Path,
                                                              res_corpus: Path) -> None:
    import httpx

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for data in ("themes.yaml", "vocabulary.yaml"):
        shutil.copy2(res_corpus / data, corpus / data)
    for rel in MINI_CARDS:
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(res_corpus / rel, corpus / rel)
    settings = chroma_server.settings(tmp_path / "a", corpus, "srv_replicas", embedding_model=REAL_MODEL,
                                      abstain_threshold=ScopeSettings.model_fields["abstain_threshold"].default)
    env_a = child_env(**settings_env(settings), PEER_ASSIST_FEEDBACK_PATH=tmp_path / "fa.jsonl")
    first = run_cli(["ingest", "--json", "--no-diff"], env_a)
    assert first.returncode == 0, first.stderr[-3000:]
    # Replica B: its own, empty, index directory; everything it answers from comes from the server.
    env_b = {**env_a, "PEER_ASSIST_INDEX_DIR": str(tmp_path / "b" / "index"),
             "PEER_ASSIST_FEEDBACK_PATH": str(tmp_path / "fb.jsonl")}

    procs: list[subprocess.Popen[Any]] = []
    bases: list[str] = []
    logs: list[Any] = []
    try:
        for env in (env_a, env_b):
            port = free_port()
            log = open(tmp_path / f"serve-{port}.log", "w")  # noqa: SIM115 - closed below
            logs.append(log)
            procs.append(subprocess.Popen([bin_path("peer-assist"), "serve", "--host", "127.0.0.1", "--port",
                                           str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                          cwd=str(PROJECT_ROOT)))
            bases.append(f"http://127.0.0.1:{port}")
        for proc, base in zip(procs, bases):
            wait_for_http(f"{base}/gradio_api/info", proc, 180, "peer-assist serve")
        clients = [httpx.Client(base_url=base, timeout=120) for base in bases]
        a, b = (ask_http(c, QUESTION) for c in clients)
        check_answer(a, settings)
        assert same(a, b), "the two replicas answer the same question identically"
        assert not (tmp_path / "b" / "index" / "manifest.json").exists()  # replica B built no index

        card = a["citations"][0]["card_id"]
        path = next(corpus.rglob(f"{card}.md"))
        anchor = " ".join(a["citations"][0]["quote"].split()[:6])
        text = path.read_text(encoding="utf-8")
        assert anchor in text
        path.write_text(text.replace(anchor, f"{MARKER} {anchor}", 1), encoding="utf-8")
        again = run_cli(["ingest", "--json", "--no-diff"], env_a)  # the reindex, through replica A's settings
        assert again.returncode == 0, again.stderr[-3000:]
        t_done = time.monotonic()

        seen: dict[int, float] = {}
        answers: dict[int, dict[str, Any]] = {}
        deadline = t_done + 90
        while len(seen) < 2 and time.monotonic() < deadline:
            for i, client in enumerate(clients):
                if i not in seen:
                    data = ask_http(client, QUESTION)
                    if MARKER in data["answer"]:
                        seen[i], answers[i] = time.monotonic() - t_done, data
            time.sleep(0.2)
        assert len(seen) == 2, f"replicas that picked up the reindex: {sorted(seen)}"
        check_answer(answers[0], settings)
        assert same(answers[0], answers[1]), "after the reindex too, both answer identically"
        FIGURES.setdefault("replicas", {})["ingest_exit_to_new_answer_s"] = {"a": round(seen[0], 2),
                                                                            "b": round(seen[1], 2)}
        for c in clients:
            c.close()
    finally:
        for proc in procs:
            stop_process(proc, grace=15)
        for log in logs:
            log.close()
