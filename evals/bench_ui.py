"""`peer-assist bench --only ui-load`: the UI server's answer routes under concurrent clients, against the
Python API's sequential throughput measured in the same run.

Both sides run in their own child process with the same environment (one BLAS thread, as
docs/OPERATIONS.md recommends for ``serve``) and the same question mix (answerable, out of scope,
crisis). The UI is a real ``peer-assist serve`` on 127.0.0.1; the clients are threads in this process,
each with its own keep-alive ``httpx.Client``. Two routes of the same server are measured one after
the other, each for the full duration:

- ``POST /api/ask`` (``assistant.ui.http_api``): one JSON request, one JSON answer; the headline row;
- ``POST /gradio_api/call/ask`` then its event stream (Gradio's queue): the second row.

The Python API is measured before the server starts and again after it stopped; the ratio is taken
against the higher of the two (the stricter one). The rate limit is turned off for the run (every
client comes from 127.0.0.1); the concurrency limit and queue are the settings' own. Targets
(issue 16): 0 errors, UI throughput >= 0.8x the API's.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from assistant.settings import Settings

QUESTIONS = (
    "Who should supervise peer workers?",
    "What training do peer workers need?",
    "How can leaders show they support peer work?",
    "What should we do before our first peer worker starts?",
    "How do services stop peer roles drifting into clinical tasks?",
    "Write me a poem about cats",
    "I want to kill myself",
)
TARGET_RATIO = 0.8


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEER_ASSIST_")}
    env.update({"PEER_ASSIST_INDEX_DIR": str(settings.index.index_dir),
                "PEER_ASSIST_CORPUS_DIR": str(settings.index.corpus_dir),
                "PEER_ASSIST_EMBEDDING_MODEL": settings.index.embedding_model,
                "PEER_ASSIST_RATE_LIMIT_PER_MINUTE": "0", "OPENBLAS_NUM_THREADS": "1",
                "PEER_ASSIST_CONCURRENCY_LIMIT": str(settings.ui.concurrency_limit),
                "PEER_ASSIST_ANSWER_WORKERS": str(settings.ui.answer_workers),
                "PEER_ASSIST_QUEUE_MAX_SIZE": str(settings.ui.queue_max_size),
                "PEER_ASSIST_QUEUE_STATUS_EVERY_S": str(settings.ui.queue_status_every_s),
                "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"})
    if settings.index.chroma_host:
        env.update({"PEER_ASSIST_CHROMA_HOST": settings.index.chroma_host,
                    "PEER_ASSIST_CHROMA_PORT": str(settings.index.chroma_port)})
    return env


def api_sequential(seconds: float) -> dict[str, Any]:
    """In this process: warm up, then ``Assistant.ask`` over QUESTIONS one after another for ``seconds``."""
    from assistant.chat import Assistant

    assistant = Assistant()
    assistant.warm_up()
    for q in QUESTIONS:
        assistant.ask(q)
    asks, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        assistant.ask(QUESTIONS[asks % len(QUESTIONS)])
        asks += 1
    wall = time.perf_counter() - t0
    return {"asks": asks, "seconds": round(wall, 2), "rps": round(asks / wall, 2)}


def _ask_http(client: Any, question: str) -> dict[str, Any]:
    """One answer from ``POST /api/ask``."""
    r = client.post("/api/ask", json={"question": question})
    r.raise_for_status()
    data = r.json()
    if not isinstance(data, dict) or "status" not in data:
        raise RuntimeError(f"not an answer: {str(data)[:200]}")
    return data


def _ask(client: Any, question: str) -> dict[str, Any]:
    """One answer through Gradio's queue: ``POST /gradio_api/call/ask``, then its event stream."""
    r = client.post("/gradio_api/call/ask", json={"data": [question, None, None]})
    r.raise_for_status()
    event = None
    with client.stream("GET", f"/gradio_api/call/ask/{r.json()['event_id']}") as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = line.split(":", 1)[1].strip()
                if event == "error":
                    raise RuntimeError(payload[:200])
                return dict(json.loads(payload)[0])
    raise RuntimeError(f"the event stream ended without a result (last event {event!r})")


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process and its descendants (answer workers) have used (Linux
    /proc; 0 elsewhere)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
        except (OSError, ValueError, IndexError):
            continue
    tree, total = {pid}, 0.0
    for _ in range(3):  # children and grandchildren
        tree |= {p for p, (ppid, _) in stats.items() if ppid in tree}
    for p in tree:
        total += stats.get(p, (0, 0.0))[1]
    return total


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_serve(settings: Settings, port: int, timeout: float = 180.0) -> subprocess.Popen[str]:
    import httpx

    exe = Path(sys.executable).with_name("peer-assist")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "assistant.cli"]
    proc = subprocess.Popen([*cmd, "serve", "--host", "127.0.0.1", "--port", str(port)], env=_env(settings),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited: {(proc.stderr.read() if proc.stderr else '')[-800:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/gradio_api/info", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("serve did not start in time")


def _api_rps(settings: Settings, seconds: float) -> float:
    """The Python API's sequential asks/s, in its own process with the serve's environment."""
    api = subprocess.run([sys.executable, "-m", "evals.bench_ui", "api", str(seconds)], env=_env(settings),
                         capture_output=True, text=True, check=True, timeout=seconds + 300)
    return float(json.loads(api.stdout.strip().splitlines()[-1])["rps"])


def _load_phase(base: str, ask: Any, clients: int, seconds: float, pid: int) -> dict[str, Any]:
    """``clients`` threads, each with its own keep-alive client, asking through ``ask`` for ``seconds``."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(n: int) -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            i = n
            while time.monotonic() < deadline:
                t = time.perf_counter()
                try:
                    ask(client, QUESTIONS[i % len(QUESTIONS)])
                except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}"[:200])
                else:
                    with lock:
                        latencies.append(time.perf_counter() - t)
                i += 1

    load_before = os.getloadavg()[0]
    t0 = time.monotonic()
    cpu0, own0 = _cpu_s(pid), time.process_time()
    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 180)
    wall = time.monotonic() - t0
    server_cpu, client_cpu = _cpu_s(pid) - cpu0, time.process_time() - own0
    done = max(1, len(latencies))
    return {
        "clients": clients, "duration_s": round(wall, 1), "requests": len(latencies) + len(errors),
        "errors": len(errors), "hung_clients": sum(t.is_alive() for t in threads),
        "ui_rps": round(len(latencies) / wall, 2),
        "p50_ms": round(_pct(latencies, 0.5) * 1000, 1), "p95_ms": round(_pct(latencies, 0.95) * 1000, 1),
        "server_cpu_ms_per_request": round(server_cpu * 1000 / done, 1),
        "client_cpu_ms_per_request": round(client_cpu * 1000 / done, 1),
        "load_avg_1m_before": round(load_before, 2), "load_avg_1m_after": round(os.getloadavg()[0], 2),
        "first_errors": errors[:3],
    }


def bench_ui_load(settings: Settings, *, clients: int = 20, seconds: float = 60.0, api_seconds: float = 20.0,
                  quick: bool = False) -> dict[str, Any]:
    """Figures for ``POST /api/ask`` and for Gradio's queue route, each under ``clients`` concurrent clients
    for ``seconds`` (quick: 5 clients, 10 s), against the Python API's sequential throughput."""
    import httpx

    from ingest.pipeline import index_is_built, run_ingest

    if quick:
        clients, seconds, api_seconds = min(clients, 5), min(seconds, 10.0), min(api_seconds, 5.0)
    if not index_is_built(settings):
        run_ingest(settings)
    api_before = _api_rps(settings, api_seconds)

    port = _free_port()
    proc = _start_serve(settings, port)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            for q in QUESTIONS:  # the server's lazily loaded parts are warm before the clock starts
                _ask_http(client, q)
                _ask(client, q)
        http = _load_phase(base, _ask_http, clients, seconds, proc.pid)
        gradio = _load_phase(base, _ask, clients, seconds, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    api_after = _api_rps(settings, api_seconds)
    api_rps = max(api_before, api_after)
    for row in (http, gradio):
        row["ui_vs_api"] = round(row["ui_rps"] / api_rps, 3) if api_rps else None
    return {"ui_load": {
        "route": "POST /api/ask", **http,
        "api_sequential_rps": api_rps, "api_sequential_rps_before": api_before,
        "api_sequential_rps_after": api_after,
        "target_ratio": TARGET_RATIO, "concurrency_limit": settings.ui.concurrency_limit,
        "answer_workers": settings.ui.answer_workers,
        "queue_max_size": settings.ui.queue_max_size, "queue_status_every_s": settings.ui.queue_status_every_s,
        "gradio_queue": {"route": "POST /gradio_api/call/ask + GET its event stream", **gradio},
    }}


def markdown(results: dict[str, Any]) -> list[str]:
    """The ui-load lines of bench.md (none when it did not run)."""
    r = results.get("ui_load")
    if not r:
        return []
    ok = r["errors"] == 0 and (r["ui_vs_api"] or 0) >= r["target_ratio"]
    api = r["api_sequential_rps"]
    before, after = r.get("api_sequential_rps_before", api), r.get("api_sequential_rps_after", api)
    lines = ["", "## UI under load", "",
             (f"`peer-assist serve` with concurrency limit {r['concurrency_limit']}, answer workers "
              f"{r.get('answer_workers', 0)}, queue {r['queue_max_size']}; {r['clients']} clients, each with a "
              f"keep-alive HTTP client. Python API alone, sequential: {before} asks/s before and {after} after "
              f"the server ran; the ratios use {api}."), "",
             ("| route | duration | requests | errors | req/s | p50 | p95 | server CPU / request | UI / API | "
             "load average (1 min) before, after |"),
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in (r, r.get("gradio_queue")):
        if row:
            lines.append(f"| {row.get('route', 'POST /gradio_api/call/ask')} | {row['duration_s']} s | "
                         f"{row['requests']} | {row['errors']} | {row['ui_rps']} | {row['p50_ms']} ms | "
                         f"{row['p95_ms']} ms | {row.get('server_cpu_ms_per_request')} ms | {row.get('ui_vs_api')} | "
                         f"{row.get('load_avg_1m_before')}, {row.get('load_avg_1m_after')} |")
    lines += ["", (f"Target for `POST /api/ask` (issue 16): 0 errors and UI/API >= {r['target_ratio']}: "
                  f"{'met' if ok else 'NOT met'}.")]
    return lines


if __name__ == "__main__":  # pragma: no cover - the API side of bench_ui_load, in its own process
    if len(sys.argv) == 3 and sys.argv[1] == "api":
        print(json.dumps(api_sequential(float(sys.argv[2]))))
        sys.exit(0)
    sys.exit("usage: python -m evals.bench_ui api SECONDS")
