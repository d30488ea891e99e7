"""Bounded load: the chat UI's ``/ask`` endpoint under concurrent clients, and the Python API from threads.

The UI runs in a child process (``serve_app.py``: ``build_app(settings)`` on 127.0.0.1 at a free
port) over the real-model index, so the client threads here do not compete with it for the GIL. The
clients speak plain HTTP to loopback only: ``POST /gradio_api/call/ask`` then ``GET`` the event
stream. Bounded in time (``LOAD_SECONDS``) and in count (``MAX_REQUESTS``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from tests.resilience.conftest import (
    BLAS_THREADS,
    FIGURES,
    PROJECT_ROOT,
    TracedIndex,
    check_answer,
    child_env,
    free_port,
    percentile,
    settings_env,
    stop_process,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CLIENTS = 20
LOAD_SECONDS = 60.0
MAX_REQUESTS = 5000
REQUEST_TIMEOUT_S = 120.0
API_THREADS = 8
API_ASKS_PER_THREAD = 12

QUESTIONS = (
    ("Who should supervise peer workers?", "answered"),
    ("What training do peer workers need?", "answered"),
    ("How can leaders show they support peer work?", "answered"),
    ("What should we do before our first peer worker starts?", "answered"),
    ("How do services stop peer roles drifting into clinical tasks?", "answered"),
    ("Write me a poem about cats", "abstained"),
    ("I want to kill myself", "crisis"),
)


def ask_http(client: Any, question: str) -> dict[str, Any]:
    """One call of the /ask endpoint over plain HTTP; raises on any error."""
    r = client.post("/gradio_api/call/ask", json={"data": [question, None, None]})
    r.raise_for_status()
    event_id = r.json()["event_id"]
    event = None
    with client.stream("GET", f"/gradio_api/call/ask/{event_id}") as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = line.split(":", 1)[1].strip()
                if event == "error":
                    raise RuntimeError(f"/ask returned an error event: {payload[:300]}")
                return json.loads(payload)[0]
    raise RuntimeError(f"the event stream ended without a result (last event {event!r})")


@pytest.fixture(scope="module")
def ui_server(real_index_traced: TracedIndex, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The UI in a child process; yields (base URL, the child's network log)."""
    work = tmp_path_factory.mktemp("load-ui")
    net_log = work / "ui.netlog"
    settings = real_index_traced.settings
    port = free_port()
    # 20 clients on one loopback address: the per-client rate limit is off for this test
    env = child_env(**settings_env(settings), PEER_ASSIST_FEEDBACK_PATH=work / "feedback.jsonl",
                    RESILIENCE_NET_LOG=net_log, PEER_ASSIST_RATE_LIMIT_PER_MINUTE=0)
    t0 = time.monotonic()
    log = open(work / "ui.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "tests.resilience.serve_app", str(port)], env=env,
                            cwd=str(PROJECT_ROOT), stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = ""
        while not line.startswith("READY"):
            line = proc.stdout.readline() if proc.stdout else ""
            if not line and proc.poll() is not None:
                raise RuntimeError(f"the UI exited: {(work / 'ui.log').read_text()[-3000:]}")
        FIGURES.setdefault("load", {})["ui_start_s"] = round(time.monotonic() - t0, 1)
        yield f"http://127.0.0.1:{port}", net_log, settings
    finally:
        stop_process(proc, grace=15)
        if proc.stdout:
            proc.stdout.close()
        log.close()


@pytest.mark.timeout(400)
def test_ask_endpoint_under_concurrent_clients(ui_server: Any) -> None:
    import httpx

    base, net_log, settings = ui_server
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S) as client:
        reference = {q: ask_http(client, q) for q, _ in QUESTIONS}
    for (q, status) in QUESTIONS:
        check_answer(reference[q], settings, status=status)

    latencies: list[float] = []
    errors: list[str] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    started = [0]
    deadline = time.monotonic() + LOAD_SECONDS

    def client_loop(n: int) -> None:
        with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S) as client:
            i = n
            while time.monotonic() < deadline:
                with lock:
                    if started[0] >= MAX_REQUESTS:
                        return
                    started[0] += 1
                question, status = QUESTIONS[i % len(QUESTIONS)]
                i += 1
                t0 = time.perf_counter()
                try:
                    data = ask_http(client, question)
                    check_answer(data, settings, status=status)
                    assert data["answer"] == reference[question]["answer"], "same question, same answer"
                except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                    with lock:
                        errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                    continue
                finally:
                    elapsed = time.perf_counter() - t0
                with lock:
                    latencies.append(elapsed)
                    statuses[data["status"]] = statuses.get(data["status"], 0) + 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=client_loop, args=(n,), daemon=True) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=LOAD_SECONDS + REQUEST_TIMEOUT_S + 30)
    wall = time.monotonic() - t0
    assert not any(t.is_alive() for t in threads), "a client hung"

    figures = {"clients": CLIENTS, "duration_s": round(wall, 1), "requests": len(latencies) + len(errors),
               "ok": len(latencies), "errors": len(errors), "statuses": statuses,
               "throughput_rps": round(len(latencies) / wall, 2),
               "p50_ms": round(percentile(latencies, 50) * 1000), "p95_ms": round(percentile(latencies, 95) * 1000),
               "max_ms": round(max(latencies, default=0) * 1000), "blas_threads": BLAS_THREADS,
               "index": "real model (all-MiniLM-L6-v2), whole corpus, embedded Chroma"}
    FIGURES.setdefault("load", {})["ui_ask_endpoint"] = figures
    print(f"\n/ask under load: {figures}")
    assert not errors, errors[:5]
    assert figures["requests"] >= CLIENTS

    refused = [line for line in net_log.read_text(encoding="utf-8").splitlines() if "REFUSED" in line] \
        if net_log.exists() else []
    assert refused == [], f"the UI tried to reach the network: {refused[:5]}"


@pytest.mark.timeout(300)
def test_python_api_from_eight_threads(real_index_traced: TracedIndex) -> None:
    """Assistant.ask from 8 threads at once: no errors, and each answer is the one a lone caller gets."""
    from assistant.chat import Assistant

    settings = real_index_traced.settings
    assistant = Assistant(settings)
    assistant.warm_up()
    assistant.ask(QUESTIONS[0][0])  # every lazily loaded part (and its BLAS library) is loaded now
    limits: Any = None
    if BLAS_THREADS != "default":
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(limits=int(BLAS_THREADS), user_api="blas")
    try:
        reference = {q: assistant.ask(q).to_dict() for q, _ in QUESTIONS}
        for q, status in QUESTIONS:
            check_answer(reference[q], settings, status=status)
        t0 = time.monotonic()
        for i in range(API_ASKS_PER_THREAD * 2):
            assistant.ask(QUESTIONS[i % len(QUESTIONS)][0])
        sequential_per_s = API_ASKS_PER_THREAD * 2 / (time.monotonic() - t0)
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            for i in range(API_ASKS_PER_THREAD):
                question, _ = QUESTIONS[(n + i) % len(QUESTIONS)]
                t0 = time.perf_counter()
                try:
                    data = assistant.ask(question).to_dict()
                    assert data["answer"] == reference[question]["answer"]
                    assert data["citations"] == reference[question]["citations"]
                except Exception as exc:  # noqa: BLE001
                    with lock:
                        errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                    continue
                with lock:
                    latencies.append(time.perf_counter() - t0)

        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(API_THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        wall = time.monotonic() - t0
        assert not any(t.is_alive() for t in threads), "a thread hung"
    finally:
        if limits is not None:
            limits.restore_original_limits()

    figures = {"threads": API_THREADS, "asks": len(latencies) + len(errors), "errors": len(errors),
               "duration_s": round(wall, 1), "throughput_per_s": round(len(latencies) / wall, 1),
               "sequential_per_s": round(sequential_per_s, 1),
               "p50_ms": round(percentile(latencies, 50) * 1000), "p95_ms": round(percentile(latencies, 95) * 1000),
               "blas_threads": BLAS_THREADS}
    FIGURES.setdefault("load", {})["python_api_threads"] = figures
    print(f"\nAssistant.ask from {API_THREADS} threads: {figures}")
    assert not errors, errors[:5]
    assert figures["asks"] == API_THREADS * API_ASKS_PER_THREAD
