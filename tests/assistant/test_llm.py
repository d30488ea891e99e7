"""The optional LLM composer against a small local OpenAI-compatible server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from assistant.chat import Assistant
from assistant.compose.llm import build_prompt, support, verify_reply
from ingest.text import Tokenizer

TOKENIZE = Tokenizer()
from tests.assistant.test_chat import check_contract


class FakeOpenAI:
    """Serves POST /v1/chat/completions with a scripted reply; records the requests."""

    def __init__(self) -> None:
        self.reply = ""
        self.status = 200
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": outer.reply}}]})
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def llm_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.server.shutdown()


@pytest.fixture
def llm_assistant(fake_assistant: Assistant, llm_server: FakeOpenAI) -> Assistant:
    settings = fake_assistant.settings.replace(**{"composer": "llm", "llm_base_url": llm_server.url,
                                                          "llm_model": "test-model", "llm_timeout_s": 5.0})
    return Assistant(settings)


def test_verify_reply_drops_unsupported_sentences() -> None:
    kept, dropped = verify_reply("Supervise peers well [1]. Invent a study [9]. No citation here. Both [1][2].", 2)
    assert [k[0] for k in kept] == ["Supervise peers well.", "Both."]
    assert [k[1] for k in kept] == [[1], [1, 2]]
    assert dropped == 2


def test_support_measures_claim_words_in_passage() -> None:
    assert support("supervision helps peer workers", "Peer workers valued supervision.", TOKENIZE) > 0.6
    assert support("bananas are yellow", "Peer workers valued supervision.", TOKENIZE) == 0.0


def test_llm_answer_keeps_only_verified_citations(llm_assistant: Assistant, llm_server: FakeOpenAI) -> None:
    llm_server.status = 200
    llm_server.reply = ("Peer workers benefit from supervision by someone who understands the role [1]. "
                        "A made-up trial proved this works [42]. Managers should plan supervision time [2][1]. "
                        "This sentence cites nothing.")
    answer = llm_assistant.ask("Who should supervise peer workers?")
    assert answer.status == "answered"
    assert "[42]" not in answer.answer and "made-up" not in answer.answer
    assert "cites nothing" not in answer.answer
    check_contract(answer, llm_assistant.settings.index.corpus_dir)
    request = llm_server.requests[-1]
    assert request["path"] == "/v1/chat/completions" and request["body"]["model"] == "test-model"
    prompt = request["body"]["messages"][1]["content"]
    assert "[1]" in prompt and "Who should supervise peer workers?" in prompt


@pytest.mark.parametrize("reply, status", [("", 200), ("nothing cited at all", 200), ("x [1].", 500)])
def test_llm_failures_fall_back_to_grounded(llm_assistant: Assistant, llm_server: FakeOpenAI, reply: str,
                                            status: int) -> None:
    llm_server.reply, llm_server.status = reply, status
    answer = llm_assistant.ask("Who should supervise peer workers?")
    grounded = Assistant(llm_assistant.settings.replace(**{"composer": "grounded"}))
    assert answer.answer == grounded.ask("Who should supervise peer workers?").answer


def test_unreachable_endpoint_falls_back(fake_assistant: Assistant) -> None:
    settings = fake_assistant.settings.replace(**{"composer": "llm", "llm_base_url": "http://127.0.0.1:9/v1",
                                                          "llm_timeout_s": 1.0})
    answer = Assistant(settings).ask("How do we recruit peer workers?")
    assert answer.status == "answered" and answer.citations


def test_prompt_numbers_passages(fake_assistant: Assistant) -> None:
    result = fake_assistant.retriever.retrieve("recruitment", k=3)
    prompt = build_prompt("recruitment?", result.passages)
    assert "[1]" in prompt and "[3]" in prompt and "[4]" not in prompt
