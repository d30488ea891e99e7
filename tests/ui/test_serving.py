"""Serving safely: answers in parallel up to a bound, "busy" past the queue, a per-client rate limit,
a login over everything, and no non-loopback serve without a login unless the operator says so.

Real Gradio servers on 127.0.0.1 (in this process) called with gradio_client and plain HTTP; the
assistant behind them is scripted (no model), so each test takes about a second.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.errors import ExposureError
from assistant.settings import PROJECT_ROOT, Settings
from assistant.types import Answer
from assistant.ui import serve as serve_module
from assistant.ui import texts
from assistant.ui.limits import RateLimiter, client_key
from ingest.cards import Corpus, load_corpus
from tests.conftest import CORPUS, make_settings
from tests.ui.conftest import free_port
from tests.ui.test_app_unit import QUESTION, ScriptedAssistant

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus(CORPUS)


class SlowAssistant(ScriptedAssistant):
    """Holds every answer until ``release`` is set; records how many answers ran at once."""

    def __init__(self, corpus: Corpus) -> None:
        super().__init__(corpus)
        self.release = threading.Event()
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def ask(self, question: str, history: list[str] | None = None, theme: str | None = None) -> Answer:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.release.wait(30)
            return super().ask(question, history, theme)
        finally:
            with self._lock:
                self.running -= 1


def launched(settings: Settings, assistant: Any) -> Iterator[str]:
    from assistant.ui.app import build_app

    demo = build_app(settings, assistant)
    _, url, _ = serve_module.launch_app(demo, settings, host="127.0.0.1", port=free_port(), prevent_thread_lock=True,
                                        quiet=True)
    try:
        yield url
    finally:
        demo.close()


def post_ask(http: httpx.Client, question: str, **headers: str) -> httpx.Response:
    return http.post("gradio_api/call/ask", json={"data": [question, None, None]}, headers=headers)


def result_of(http: httpx.Client, posted: httpx.Response) -> tuple[str, str]:
    """(event, data) of the /ask call's final event."""
    event = ""
    with http.stream("GET", f"gradio_api/call/ask/{posted.json()['event_id']}") as resp:
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                return event, line.split(":", 1)[1].strip()
    raise AssertionError("the event stream ended without a result")


# ------------------------------------------------------------------------------------------------
# concurrency and the bounded queue

@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_answers_run_in_parallel_up_to_the_limit_and_past_the_queue_the_caller_hears_busy(
        tmp_path: Path, corpus: Corpus) -> None:
    from gradio_client import Client
    from gradio_client.utils import QueueError

    slow = SlowAssistant(corpus)
    settings = make_settings(tmp_path, concurrency_limit=3, queue_max_size=2, rate_limit_per_minute=0)
    server = launched(settings, slow)
    url = next(server)
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            posted = [post_ask(http, f"{QUESTION} {i}") for i in range(5)]  # 3 run, 2 wait
            assert [p.status_code for p in posted] == [200] * 5
            deadline = time.monotonic() + 20
            while slow.running < 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert slow.running == 3, "three answers run at once"
            time.sleep(0.3)
            assert slow.most == 3, "never more than the concurrency limit"
            full = post_ask(http, "one too many")  # the queue holds 2: refused at once, not left hanging
            assert full.status_code == 503 and full.json()["detail"] == texts.BUSY
            with pytest.raises(QueueError, match="try again"):
                Client(url, verbose=False).predict("also too many", api_name="/ask")
            slow.release.set()
            finished = [result_of(http, p) for p in posted]
            assert [event for event, _ in finished] == ["complete"] * 5
            assert post_ask(http, "after the burst").status_code == 200  # room again
    finally:
        slow.release.set()
        next(server, None)


# ------------------------------------------------------------------------------------------------
# the rate limit

def test_rate_limiter_buckets_refill_and_stay_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=3, max_clients=2, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # another client has its own bucket
    now[0] += 1.0  # one token a second
    assert limiter.allow("a") and not limiter.allow("a")
    limiter.allow("c")
    assert len(limiter._buckets) == 2  # the least recently seen client was dropped
    assert RateLimiter(0, 1).allow("x") and not RateLimiter(0, 1).enabled


def test_client_key_reads_proxy_headers_only_when_trusted() -> None:
    class Req:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers
            self.client = type("C", (), {"host": "127.0.0.1"})()

    forwarded = Req({"x-forwarded-for": "6.6.6.6, 10.0.0.7"})
    assert client_key(forwarded) == "127.0.0.1"
    assert client_key(forwarded, trust_proxy_headers=True) == "10.0.0.7"  # the hop the proxy appended
    assert client_key(Req({"x-real-ip": "10.0.0.9", "x-forwarded-for": "1.1.1.1"}), True) == "10.0.0.9"
    assert client_key(None) == "in-process"


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_a_flooding_client_is_told_too_many_while_another_is_served(tmp_path: Path, corpus: Corpus) -> None:
    from gradio_client import Client

    settings = make_settings(tmp_path, rate_limit_per_minute=6, rate_limit_burst=3, trust_proxy_headers=True,
                             feedback_path=tmp_path / "fb.jsonl")
    fake = ScriptedAssistant(corpus)
    server = launched(settings, fake)
    url = next(server)
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            flood = [result_of(http, post_ask(http, f"{QUESTION} {i}", **{"X-Real-IP": "10.0.0.1"}))
                     for i in range(6)]
            assert [e for e, _ in flood] == ["complete"] * 3 + ["error"] * 3
            assert all("Too many requests" in data for _, data in flood[3:])
            answered_before = len(fake.calls)
            other = result_of(http, post_ask(http, QUESTION, **{"X-Real-IP": "10.0.0.2"}))
            assert other[0] == "complete" and len(fake.calls) == answered_before + 1
            assert len(fake.calls) == 4, "no answer was computed for a refused request"
        # gradio_client sees the same sentence; its address (no proxy header) has its own bucket
        client = Client(url, verbose=False)
        for _ in range(3):
            assert client.predict(QUESTION, api_name="/ask")["status"] == "answered"
        with pytest.raises(Exception, match="Too many requests"):
            client.predict(QUESTION, api_name="/ask")
    finally:
        next(server, None)


def test_feedback_and_chat_are_rate_limited_too(tmp_path: Path, corpus: Corpus) -> None:
    from assistant.feedback import read_feedback
    from assistant.ui import handlers
    from assistant.ui.handlers import PageContext
    from assistant.ui.state import ChatState

    class Req:
        headers: dict[str, str] = {}
        client = type("C", (), {"host": "10.1.1.1"})()

    settings = make_settings(tmp_path, rate_limit_per_minute=1, rate_limit_burst=2, feedback_path=tmp_path / "fb.jsonl")
    ctx = PageContext.create(settings, ScriptedAssistant(corpus), download_dir=tmp_path / "dl")  # type: ignore[arg-type]
    assert handlers.rate_limited(ctx, ChatState(), QUESTION, Req()) is None
    state = handlers.ask(ctx, ChatState(), QUESTION, texts.ALL_THEMES).state
    assert isinstance(state, ChatState)
    assert handlers.feedback(ctx, state, "up", "", Req()).feedback_status == texts.FEEDBACK_SAVED
    refused = handlers.feedback(ctx, state, "up", "", Req())
    assert "Too many requests" in str(refused.feedback_status)
    chat = handlers.rate_limited(ctx, state, "and training?", Req())
    assert chat is not None and "Too many requests" in chat.messages[-1]["content"]  # type: ignore[index]
    assert len(read_feedback(settings.feedback_file)) == 1


# ------------------------------------------------------------------------------------------------
# login and exposure

@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.3.4.5", True), ("::1", True),
                                                ("localhost", True), ("0.0.0.0", False), ("::", False),
                                                ("192.168.1.20", False), ("peer.example.org", False)])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert serve_module.is_loopback(host) is loopback


def test_non_loopback_without_login_is_refused_unless_allowed(tmp_path: Path, capsys: Any) -> None:
    with pytest.raises(ExposureError, match="0.0.0.0 with no login"):
        serve_module.check_exposure(make_settings(tmp_path, host="0.0.0.0"))
    with pytest.raises(ExposureError):  # a user with an empty password is no login
        serve_module.check_exposure(make_settings(tmp_path, host="0.0.0.0", auth_user="m", auth_password=""))
    serve_module.check_exposure(make_settings(tmp_path, host="0.0.0.0", auth_user="m", auth_password="pw"))
    serve_module.check_exposure(make_settings(tmp_path, host="127.0.0.1"))
    serve_module.check_exposure(make_settings(tmp_path, host="0.0.0.0", allow_no_login=True))
    assert "with no login (--allow-no-login)" in capsys.readouterr().err


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_serve_command_refuses_before_loading_anything(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
           "PEER_ASSIST_INDEX_DIR": str(tmp_path / "no-index"), "PYTHONPATH": str(PROJECT_ROOT)}
    cmd = [sys.executable, "-m", "assistant.cli", "serve", "--host", "0.0.0.0", "--port", str(free_port())]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert result.returncode == 1, result.stderr
    assert "Refusing to serve on 0.0.0.0 with no login" in result.stderr and "--allow-no-login" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "no-index").exists()  # nothing was built


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_login_covers_the_page_the_api_and_feedback(tmp_path: Path, corpus: Corpus) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    settings = make_settings(tmp_path, auth_user="manager", auth_password="s3cret", feedback_path=tmp_path / "fb.jsonl")
    server = launched(settings, ScriptedAssistant(corpus))
    url = next(server)
    try:
        with pytest.raises((AuthenticationError, ValueError), match="Could not login"):
            Client(url, auth=("manager", "wrong"), verbose=False)
        with pytest.raises(AuthenticationError):
            Client(url, verbose=False)
        with httpx.Client(base_url=url, timeout=30) as http:
            # the page's content (its config: layout, texts, cards) and the API's description need the login
            assert "Sources for the latest answer" not in http.get("/").text
            assert http.get("config").status_code == 401 and http.get("gradio_api/info").status_code == 401
            assert http.post("login", data={"username": "manager", "password": "wrong"}).status_code == 400
            assert post_ask(http, QUESTION).status_code == 401
            # every event, the private feedback ones included, goes through queue/join: refused too
            joined = http.post("gradio_api/queue/join", json={"data": ["", None], "fn_index": 0, "session_hash": "x"})
            assert joined.status_code == 401
        client = Client(url, auth=("manager", "s3cret"), verbose=False)
        assert client.predict(QUESTION, api_name="/ask")["status"] == "answered"
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.post("login", data={"username": "manager", "password": "s3cret"}).status_code == 200
            assert "Sources for the latest answer" in http.get("config").text
    finally:
        next(server, None)
