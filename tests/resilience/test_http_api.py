"""``POST /api/ask`` against a real ``peer-assist serve`` process (hash embedder, the whole corpus), once
with answers in threads and once with an answer worker process (``answer_workers=1``):

- the same answer as Gradio's ``/ask`` for the same question;
- the login: 401 without or with wrong credentials, 200 with HTTP Basic or Gradio's login cookie;
- the rate limit: a flooding client gets 429 while another client is still answered;
- bounded admission: one answer running and one waiting (the server's limits), the next request gets
  503 "busy" at once (answers are held by the ``RESILIENCE_SLOW_ASK_S`` hook of the child);
- friendly 4xx for an empty question, a huge paste, a body over the size cap, a non-JSON body;
- a live reindex (``peer-assist ingest`` in another process) reaches the route's answers.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.settings import Settings
from assistant.ui import texts
from tests.resilience.conftest import (
    QUESTION,
    bin_path,
    child_env,
    copy_hash_index,
    free_port,
    run_cli,
    settings_env,
    stop_process,
)
from tests.ui.test_serving import result_of

pytestmark = [pytest.mark.server, pytest.mark.slow, pytest.mark.timeout(300)]

USER, PASSWORD = "manager", "s3cret"
SLOW_S = 3.0
MARKER = "Reindexed-over-http"


@dataclass
class Served:
    url: str
    settings: Settings
    env: dict[str, str]


@pytest.fixture(scope="module", params=[0, 1], ids=["threads", "answer-workers-1"])
def served(request: pytest.FixtureRequest, hash_template: Settings,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real ``peer-assist serve`` with a login, a small rate limit (per X-Real-IP), one answer at a time
    and one waiting, on a writable copy of the hash index."""
    root = tmp_path_factory.mktemp(f"http-api-{request.param}")
    settings = copy_hash_index(hash_template, root)
    port = free_port()
    env = child_env(**settings_env(settings), PEER_ASSIST_AUTH_USER=USER, PEER_ASSIST_AUTH_PASSWORD=PASSWORD,
                    PEER_ASSIST_TRUST_PROXY_HEADERS="true", PEER_ASSIST_RATE_LIMIT_BURST="3",
                    PEER_ASSIST_RATE_LIMIT_PER_MINUTE="6", PEER_ASSIST_CONCURRENCY_LIMIT="1",
                    PEER_ASSIST_QUEUE_MAX_SIZE="1", PEER_ASSIST_ANSWER_WORKERS=str(request.param),
                    PEER_ASSIST_FEEDBACK_PATH=str(root / "feedback.jsonl"), RESILIENCE_SLOW_ASK_S=str(SLOW_S))
    log = open(root / "serve.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([bin_path("peer-assist"), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=log, text=True, cwd=str(root))
    try:
        deadline = time.monotonic() + 180
        line = ""
        while "is running at" not in line:
            line = proc.stdout.readline() if proc.stdout else ""
            if (not line and proc.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {(root / 'serve.log').read_text()[-3000:]}")
        yield Served(f"http://127.0.0.1:{port}", settings, env)
    finally:
        stop_process(proc)
        log.close()


def api_ask(http: httpx.Client, question: Any, ip: str, auth: Any = (USER, PASSWORD), **body: Any) -> httpx.Response:
    return http.post("/api/ask", json={"question": question, **body}, headers={"X-Real-IP": ip}, auth=auth)


def gradio_ask(http: httpx.Client, question: str, ip: str) -> dict[str, Any]:
    """Gradio's /ask over plain HTTP with the login cookie already in ``http``."""
    posted = http.post("/gradio_api/call/ask", json={"data": [question, None, None]}, headers={"X-Real-IP": ip})
    posted.raise_for_status()
    event, data = result_of(http, posted)
    assert event == "complete", data
    return dict(json.loads(data)[0])


def without_timings(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "timings_ms"}


def test_same_answer_as_the_gradio_ask_api(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=60) as http:
        assert http.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 200
        ours = api_ask(http, QUESTION, "10.0.1.1")
        assert ours.status_code == 200 and ours.headers["content-type"] == "application/json"
        theirs = gradio_ask(http, QUESTION, "10.0.1.1")
    data = ours.json()
    assert data["status"] == "answered" and data["citations"]
    assert without_timings(data) == without_timings(theirs)
    assert set(data["timings_ms"]) == set(theirs["timings_ms"])


def test_login_is_required(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=60) as http:
        for auth in (None, (USER, "wrong"), ("someone", PASSWORD)):
            refused = api_ask(http, QUESTION, "10.0.2.1", auth=auth)
            assert refused.status_code == 401, auth
            assert refused.json()["error"] == "unauthorized" and refused.headers["www-authenticate"].startswith("Basic")
        garbled = http.post("/api/ask", json={"question": QUESTION}, headers={"Authorization": "Basic %%%"})
        assert garbled.status_code == 401
        assert api_ask(http, QUESTION, "10.0.2.2").status_code == 200  # HTTP Basic
    with httpx.Client(base_url=served.url, timeout=60) as http:  # Gradio's login cookie
        assert http.post("/login", data={"username": USER, "password": "wrong"}).status_code == 400
        assert api_ask(http, QUESTION, "10.0.2.3", auth=None).status_code == 401
        assert http.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 200
        assert api_ask(http, QUESTION, "10.0.2.3", auth=None).status_code == 200


def test_a_flooding_client_gets_429_while_another_is_answered(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=60) as http:
        flood = [api_ask(http, QUESTION, "10.0.3.1") for _ in range(6)]
        assert [r.status_code for r in flood] == [200] * 3 + [429] * 3
        refused = flood[-1]
        assert refused.json()["error"] == "too_many_requests"
        assert refused.json()["detail"].startswith("Too many requests from your address")
        assert int(refused.headers["retry-after"]) >= 1
        other = api_ask(http, QUESTION, "10.0.3.2")
        assert other.status_code == 200 and other.json()["status"] == "answered"


def test_past_the_queue_bound_a_request_is_told_busy_at_once(served: Served) -> None:
    """concurrency_limit 1 and queue_max_size 1: one slow answer runs, one waits, the third is refused."""
    results: dict[str, httpx.Response] = {}

    def slow(name: str, ip: str) -> None:
        with httpx.Client(base_url=served.url, timeout=60) as own:
            results[name] = api_ask(own, f"[slow] {QUESTION}", ip)

    threads = [threading.Thread(target=slow, args=(f"s{i}", f"10.0.4.{i}")) for i in (1, 2)]
    for t in threads:
        t.start()
        time.sleep(0.3)
    time.sleep(0.5)
    with httpx.Client(base_url=served.url, timeout=60) as http:
        t0 = time.monotonic()
        busy = api_ask(http, QUESTION, "10.0.4.3")
        took = time.monotonic() - t0
    assert busy.status_code == 503, busy.text
    assert busy.json() == {"error": "busy", "detail": texts.BUSY}
    assert int(busy.headers["retry-after"]) >= 1
    assert took < SLOW_S / 2, f"refused at once, not after waiting ({took:.2f} s)"
    for t in threads:
        t.join(timeout=60)
    assert [results[n].status_code for n in ("s1", "s2")] == [200, 200]  # the admitted ones were answered
    with httpx.Client(base_url=served.url, timeout=60) as http:
        assert api_ask(http, QUESTION, "10.0.4.4").status_code == 200  # room again


def test_bad_input_gets_a_friendly_4xx(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=60) as http:
        empty = api_ask(http, "   ", "10.0.5.1")
        assert empty.status_code == 400 and empty.json()["error"] == "invalid_request"
        assert empty.json()["detail"].startswith("The question is empty.")
        paste = api_ask(http, "x" * 5000, "10.0.5.2")
        assert paste.status_code == 400 and "the limit is 2,000" in paste.json()["detail"]
        theme = api_ask(http, QUESTION, "10.0.5.3", theme="no-such-theme")
        assert theme.status_code == 400 and "Unknown theme" in theme.json()["detail"]
        huge = http.post("/api/ask", content=b'{"question": "' + b"y" * 100_000 + b'"}', auth=(USER, PASSWORD),
                         headers={"content-type": "application/json", "X-Real-IP": "10.0.5.4"})
        assert huge.status_code == 413 and huge.json()["error"] == "too_large"
        form = http.post("/api/ask", data={"question": QUESTION}, auth=(USER, PASSWORD))
        assert form.status_code == 415
        not_json = http.post("/api/ask", content=b"{nope", auth=(USER, PASSWORD),
                             headers={"content-type": "application/json", "X-Real-IP": "10.0.5.5"})
        assert not_json.status_code == 400 and "JSON object" in not_json.json()["detail"]
        assert "Traceback" not in empty.text + paste.text + theme.text + huge.text + not_json.text


def test_a_live_reindex_reaches_the_route(served: Served, tmp_path: Path) -> None:
    """A card edited and ``peer-assist ingest`` run in another process: the route's answers switch."""
    with httpx.Client(base_url=served.url, timeout=60) as http:
        first = api_ask(http, QUESTION, "10.0.6.1").json()
        cited = first["citations"][0]
        path = next(served.settings.index.corpus_dir.rglob(f"{cited['card_id']}.md"))
        text = path.read_text(encoding="utf-8")
        anchor = " ".join(" ".join(cited["quote"].split()).split(" ")[:6])
        assert anchor in text, anchor
        path.write_text(text.replace(anchor, f"{MARKER} {anchor}", 1), encoding="utf-8")
        result = run_cli(["ingest"], {k: v for k, v in served.env.items() if not k.startswith("RESILIENCE_")})
        assert result.returncode == 0, result.stderr[-2000:]
        deadline, seen, n = time.monotonic() + 30, False, 0
        while time.monotonic() < deadline and not seen:
            n += 1
            reply = api_ask(http, QUESTION, f"10.0.7.{n % 250}")
            assert reply.status_code == 200, reply.text
            seen = MARKER in json.dumps(reply.json())
            time.sleep(0.3)
    assert seen, "the route kept answering from the old index generation"
