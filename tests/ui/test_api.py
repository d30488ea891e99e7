"""The named endpoint ``/ask`` of the running app, through gradio_client and plain HTTP (docs/API.md)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from assistant.settings import Settings
from ingest.cards import load_corpus

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")]

CONTRACT_KEYS = {"question", "status", "answer", "strategies", "citations", "evidence", "retrieved", "timings_ms"}


@pytest.fixture(scope="module")
def client(ui_server: str) -> Any:
    from gradio_client import Client

    return Client(ui_server, verbose=False)


def check_contract(data: dict[str, Any], settings: Settings) -> None:
    assert CONTRACT_KEYS <= set(data)
    assert data["status"] in ("answered", "abstained", "crisis")
    numbers = [c["n"] for c in data["citations"]]
    assert numbers == list(range(1, len(numbers) + 1))
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", data["answer"])}
    assert markers <= set(numbers), "every [n] in the answer resolves to a citation"
    cards = load_corpus(settings.index.corpus_dir).by_id()
    for c in data["citations"]:
        assert c["card_id"] in cards
        assert {"n", "card_id", "doi", "title", "year", "section", "quote"} <= set(c)
    json.dumps(data)


def test_only_ask_is_public(client: Any) -> None:
    info = client.view_api(print_info=False, return_format="dict")
    assert list(info["named_endpoints"]) == ["/ask"]
    params = [p["parameter_name"] for p in info["named_endpoints"]["/ask"]["parameters"]]
    assert params == ["question", "history", "theme"]


def test_ask_returns_the_answer_contract(client: Any, ui_settings: Settings) -> None:
    data = client.predict("Who should supervise peer workers?", api_name="/ask")
    check_contract(data, ui_settings)
    assert data["status"] == "answered"
    assert re.search(r"\[1\]", data["answer"]) and data["citations"]


def test_ask_follow_up_with_history_and_theme(client: Any, ui_settings: Settings) -> None:
    data = client.predict(question="and what about training?", history=["Who should supervise peer workers?"],
                          theme="support-development", api_name="/ask")
    check_contract(data, ui_settings)
    assert "follow-up to: Who should supervise peer workers?" in data.get("standalone_question", "")
    assert data["strategies"] and all(s["theme"] == "support-development" for s in data["strategies"])


def test_ask_crisis_and_abstain(client: Any, ui_settings: Settings) -> None:
    crisis = client.predict("I want to kill myself", api_name="/ask")
    check_contract(crisis, ui_settings)
    assert crisis["status"] == "crisis" and crisis["citations"] == []
    out = client.predict("Write me a poem about cats", api_name="/ask")
    check_contract(out, ui_settings)
    assert out["status"] == "abstained"


def test_ask_errors_are_friendly(client: Any, ui_settings: Settings) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="The question is empty"):
        client.predict("   ", api_name="/ask")
    with pytest.raises(AppError, match="the limit is"):
        client.predict("x" * (ui_settings.scope.max_question_chars + 1), api_name="/ask")
    with pytest.raises(AppError) as err:
        client.predict("Who supervises peers?", None, "no-such-theme", api_name="/ask")
    assert "Traceback" not in str(err.value)


def test_plain_http_call_as_documented(ui_server: str, ui_settings: Settings) -> None:
    """POST /gradio_api/call/ask, then GET the event stream (the recipe in docs/API.md)."""
    base = ui_server.rstrip("/")
    with httpx.Client(timeout=60) as http:
        r = http.post(f"{base}/gradio_api/call/ask",
                      json={"data": ["Who should supervise peer workers?", None, "all"]})
        r.raise_for_status()
        event_id = r.json()["event_id"]
        events = http.get(f"{base}/gradio_api/call/ask/{event_id}").text
    lines = events.splitlines()
    assert "event: complete" in lines, events[:500]
    payload = lines[lines.index("event: complete") + 1]
    assert payload.startswith("data: ")
    (data,) = json.loads(payload[len("data: "):])
    check_contract(data, ui_settings)
    assert data["status"] == "answered"
