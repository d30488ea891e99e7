"""``POST /api/ask`` (assistant/ui/http_api.py) in-process: its pure pieces, and the route on a bare
Starlette app over a scripted assistant (no model, no Gradio, no server). The real-server tests are
tests/resilience/test_http_api.py."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.ui import http_api, texts
from assistant.ui.handlers import PageContext, RequestError, api_check
from ingest.cards import Corpus, load_corpus
from tests.conftest import CORPUS, make_settings
from tests.ui.test_app_unit import QUESTION, ScriptedAssistant
from tests.ui.test_serving import SlowAssistant

LOGIN = ("manager", "s3cret")


def run_in_fresh_loop(coro: Any) -> Any:
    """``asyncio.run`` in a thread of its own: in the whole suite an earlier test (Playwright's sync
    API) may leave an event loop running in the main thread, where ``asyncio.run`` refuses."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")


def corpus() -> Corpus:
    return load_corpus(CORPUS)


def context(tmp_path: Path, assistant: Any, **overrides: Any) -> PageContext:
    settings = make_settings(tmp_path, **{"rate_limit_per_minute": 0, **overrides})
    return PageContext.create(settings, assistant, download_dir=tmp_path / "dl")


def app_of(ctx: PageContext, login: tuple[str, str] | None = None) -> Any:
    from starlette.applications import Starlette

    return Starlette(routes=http_api.routes(ctx, login))


def call(app: Any, *requests: dict[str, Any]) -> list[httpx.Response]:
    """Send ``requests`` (httpx.Client.post keyword arguments) to ``app`` at once; their responses in order."""
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("10.9.9.9", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return list(await asyncio.gather(*(client.post("/api/ask", **r) for r in requests)))

    return run_in_fresh_loop(run())


def test_admission_counts_running_and_waiting() -> None:
    admission = http_api.Admission(running=2, waiting=1)
    assert [admission.enter() for _ in range(4)] == [True, True, True, False]
    admission.leave()
    assert admission.enter() and admission.in_flight == 3
    for _ in range(5):
        admission.leave()
    assert admission.in_flight == 0
    with pytest.raises(ValueError, match="running must be >= 1"):
        http_api.Admission(0, 1)


def test_basic_credentials_and_authorized() -> None:
    def basic(text: str) -> str:
        return "Basic " + base64.b64encode(text.encode()).decode()

    assert http_api.basic_credentials(basic("manager:s3:cret")) == ("manager", "s3:cret")
    assert http_api.basic_credentials("Bearer abc") is None
    assert http_api.basic_credentials("Basic %%%") is None and http_api.basic_credentials(basic("nocolon")) is None

    class Req:
        def __init__(self, headers: dict[str, str], cookies: dict[str, str] | None = None, app: Any = None) -> None:
            self.headers, self.cookies, self.scope = headers, cookies or {}, {"app": app}

    gradio_app = type("App", (), {"cookie_id": "cid", "tokens": {"tok": "manager"}})()
    assert http_api.authorized(Req({}), None)  # no login configured
    assert http_api.authorized(Req({"authorization": basic("manager:s3cret")}), LOGIN)
    assert not http_api.authorized(Req({"authorization": basic("manager:wrong")}), LOGIN)
    assert not http_api.authorized(Req({}), LOGIN)
    assert http_api.authorized(Req({}, {"access-token-cid": "tok"}, gradio_app), LOGIN)
    assert http_api.authorized(Req({}, {"access-token-unsecure-cid": "tok"}, gradio_app), LOGIN)
    assert not http_api.authorized(Req({}, {"access-token-cid": "forged"}, gradio_app), LOGIN)
    assert not http_api.authorized(Req({}, {"access-token-cid": "tok"}, None), LOGIN)


def test_parse_body() -> None:
    assert http_api.parse_body(b'{"question": "q", "history": ["a"], "theme": "leadership"}') == ("q", ["a"], "leadership")
    assert http_api.parse_body(b'{"question": "q"}') == ("q", None, None)
    for bad in (b"", b"[1]", b'{"q": 1}', b"\xff", b"{nope"):
        with pytest.raises(RequestError, match="JSON object"):
            http_api.parse_body(bad)
    with pytest.raises(RequestError, match="theme must be"):
        http_api.parse_body(b'{"question": "q", "theme": 3}')


def test_api_check_statuses(tmp_path: Path, corpus: Corpus) -> None:
    ctx = context(tmp_path, ScriptedAssistant(corpus), rate_limit_per_minute=60, rate_limit_burst=2)
    with pytest.raises(RequestError, match="The question is empty") as empty:
        api_check(ctx, "   ")
    assert empty.value.status == 400
    with pytest.raises(RequestError, match="the limit is 2,000"):
        api_check(ctx, "x" * 2001)
    with pytest.raises(RequestError, match="Too many requests") as flood:
        api_check(ctx, QUESTION)
    assert flood.value.status == 429 and flood.value.retry_after_s == 1.0


def test_route_answers_and_refuses_with_status_codes(tmp_path: Path, corpus: Corpus) -> None:
    fake = ScriptedAssistant(corpus)
    app = app_of(context(tmp_path, fake), LOGIN)
    ok, anonymous, wrong, form, empty, boom, theme, big = call(
        app, {"json": {"question": QUESTION, "history": [], "theme": "all"}, "auth": LOGIN},
        {"json": {"question": QUESTION}}, {"json": {"question": QUESTION}, "auth": ("manager", "x")},
        {"data": {"question": QUESTION}, "auth": LOGIN}, {"json": {"question": ""}, "auth": LOGIN},
        {"json": {"question": "boom"}, "auth": LOGIN}, {"json": {"question": "bad theme"}, "auth": LOGIN},
        {"content": b"x" * (http_api.MAX_BODY_BYTES + 1), "auth": LOGIN, "headers": {"content-type": "application/json"}})
    assert ok.status_code == 200 and ok.json() == fake.ask(QUESTION).to_dict()
    assert anonymous.status_code == wrong.status_code == 401 and "WWW-Authenticate" in anonymous.headers
    assert form.status_code == 415
    assert empty.status_code == 400 and empty.json()["error"] == "invalid_request"
    assert boom.status_code == 500 and boom.json()["detail"] == texts.API_FAILED and "internal detail" not in boom.text
    assert theme.status_code == 400 and "Unknown theme" in theme.json()["detail"]
    assert big.status_code == 413


def test_route_runs_at_most_the_limit_and_refuses_past_the_queue(tmp_path: Path, corpus: Corpus) -> None:
    held = SlowAssistant(corpus)  # holds every answer until release is set; records how many ran at once
    app = app_of(context(tmp_path, held, concurrency_limit=2, queue_max_size=1))

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            admitted = [asyncio.create_task(client.post("/api/ask", json={"question": f"{QUESTION} {i}"}))
                        for i in range(3)]
            while held.running < 2:
                await asyncio.sleep(0.01)
            busy = await client.post("/api/ask", json={"question": QUESTION})  # 2 running + 1 waiting: full
            held.release.set()
            return [busy, *await asyncio.gather(*admitted)]

    busy, *answered = run_in_fresh_loop(run())
    assert busy.status_code == 503 and busy.json() == {"error": "busy", "detail": texts.BUSY}
    assert busy.headers["retry-after"] == str(http_api.BUSY_RETRY_S)
    assert [r.status_code for r in answered] == [200] * 3 and held.most == 2


def test_failed_logins_take_rate_limit_tokens(tmp_path: Path, corpus: Corpus) -> None:
    app = app_of(context(tmp_path, ScriptedAssistant(corpus), rate_limit_per_minute=1, rate_limit_burst=2), LOGIN)
    guesses = call(app, *({"json": {"question": QUESTION}, "auth": ("manager", f"guess{i}")} for i in range(3)))
    assert [r.status_code for r in guesses] == [401, 401, 429]
    assert guesses[-1].json()["error"] == "too_many_requests" and "retry-after" in guesses[-1].headers
