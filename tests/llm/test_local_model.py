"""The LLM composer against a real local model (SmolLM2-135M-Instruct served by llama.cpp): gold
questions through the composer, every citation valid, every shown sentence grounded in the passages
it cites, the fallback, the gates, and the server stopped by PID afterwards."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from assistant.chat import Assistant
from assistant.types import Answer
from evals.metrics import claim_support, claims, share
from evals.run import GOLD, load_gold
from tests.assistant.test_chat import check_contract
from tests.llm.conftest import LocalModelServer, pid_alive, require_llm_venv

pytestmark = [pytest.mark.llm, pytest.mark.integration, pytest.mark.slow]

#: Gold questions run through the model: the answerable ones of the test split without a history, all of
#: them (56; about 3 minutes on an idle 2-core machine) unless PEER_ASSIST_LLM_GOLD sets a smaller number.
N_GOLD = int(os.environ.get("PEER_ASSIST_LLM_GOLD", "0"))


def llm_assistant(real_assistant: Any, server: LocalModelServer, **overrides: Any) -> Assistant:
    """The real index, embedder and store, with the LLM composer pointed at the local server."""
    settings = real_assistant.settings.replace(composer="llm", llm_base_url=server.url, llm_model="smollm2",
                                               llm_timeout_s=120.0, llm_max_retries=0, llm_max_tokens=150, llm_max_passages=3,
                                               llm_temperature=0.0, llm_seed=0, **overrides)
    return Assistant(settings, embedder=real_assistant.embedder, store=real_assistant.store)


def stream(assistant: Assistant, question: str) -> tuple[list[str], Answer, float]:
    t0 = time.perf_counter()
    *pieces, answer = list(assistant.ask_stream(question))
    assert isinstance(answer, Answer)
    assert answer.answer.startswith("".join(p for p in pieces if isinstance(p, str))), "nothing shown is retracted"
    return [str(p) for p in pieces], answer, (time.perf_counter() - t0) * 1000


@pytest.mark.timeout(1500)  # 56 answers: about 3 minutes idle, far longer on a busy machine
def test_gold_questions_through_the_local_model(real_assistant: Any, local_model: LocalModelServer) -> None:
    assistant = llm_assistant(real_assistant, local_model)
    gold = [g for g in load_gold(GOLD) if g["type"] == "answerable" and g.get("split") == "test"
            and not g.get("history")][:N_GOLD or None]
    passages = {p.id: p.text for p in assistant.retriever.passages}
    tokenize, floor = assistant.vocabulary.tokenizer, assistant.settings.llm.llm_min_support
    rows, latencies = [], []
    for item in gold:
        pieces, answer, ms = stream(assistant, item["question"])
        check_contract(answer, assistant.settings.index.corpus_dir)  # every marker resolves, every quote is card text
        latencies.append(ms)
        llm = answer.trace.get("llm")
        if answer.status != "answered" or llm is None:
            continue
        data = {**answer.to_dict(), "citations": [vars(c) for c in answer.citations]}
        n_claims, n_supported = claim_support(data, passages, tokenize, floor)
        assert n_supported == n_claims, f"an ungrounded sentence was shown for {item['id']}"
        if llm["fallback"] != "replaced":
            llm_claims = claims(answer.strategies[0].text)
            assert len(llm_claims) == llm["kept"] and all(nums for _, nums in llm_claims)
        rows.append({"id": item["id"], **{k: llm[k] for k in ("generated", "kept", "fallback")},
                     "dropped": len(llm["dropped"]), "pieces": len(pieces), "ms": round(ms)})
    latencies.sort()
    summary = {
        "questions": len(gold), "answered_by_composer": len(rows),
        "generated": sum(r["generated"] for r in rows), "kept": sum(r["kept"] for r in rows),
        "dropped": sum(r["dropped"] for r in rows), "fallback_replaced": sum(r["fallback"] == "replaced" for r in rows),
        "fallback_appended": sum(r["fallback"] == "appended" for r in rows), "citation_validity": 1.0,
        "p50_ms": round(latencies[len(latencies) // 2]), "p95_ms": round(latencies[min(len(latencies) - 1,
                                                                                        int(len(latencies) * 0.95))]),
        "fallback_rate": share(r["fallback"] != "none" for r in rows), "server_startup_s": round(local_model.startup_s, 2),
    }
    print("\nLLM tier:", json.dumps(summary), "\n" + "\n".join(json.dumps(r) for r in rows))
    assert len(rows) >= len(gold) // 2, "most answerable gold questions reach the composer"
    assert summary["generated"] > 0, "the model wrote something"


def test_fallback_with_the_real_model_keeps_what_was_shown(real_assistant: Any, local_model: LocalModelServer) -> None:
    """A minimum no reply can reach: the grounded answer replaces (nothing shown) or follows what was shown."""
    assistant = llm_assistant(real_assistant, local_model, llm_min_sentences=20)
    pieces, answer, _ = stream(assistant, "Who should supervise peer workers?")
    grounded = real_assistant.ask("Who should supervise peer workers?")
    llm = answer.trace["llm"]
    check_contract(answer, assistant.settings.index.corpus_dir)
    if llm["kept"] == 0:
        assert llm["fallback"] == "replaced" and pieces == [] and answer.answer == grounded.answer
    else:
        assert llm["fallback"] == "appended" and len(pieces) == llm["kept"] + 1
        assert {c.quote for c in grounded.citations} <= {c.quote for c in answer.citations}


@pytest.mark.parametrize("question, status", [("I want to end my life", "crisis"),
                                              ("What is the capital of France?", "abstained")])
def test_gates_decide_before_the_model(real_assistant: Any, local_model: LocalModelServer, question: str,
                                       status: str) -> None:
    answer = llm_assistant(real_assistant, local_model).ask(question)
    assert answer.status == status and "llm" not in answer.trace


def test_the_server_stops_by_pid(tmp_path: Any) -> None:
    require_llm_venv()
    server = LocalModelServer(tmp_path / "server.log").start()
    pid = server.pid
    assert pid_alive(pid)
    server.stop()
    assert not pid_alive(pid)
