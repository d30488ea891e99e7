"""`peer-assist ask|chat` on a hash-embedder index: text, JSON, batch, theme and friendly errors."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from assistant import cli
from assistant.settings import get_settings


@pytest.fixture
def cli_env(fake_assistant: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    s = fake_assistant.settings
    for key, value in {"PEER_ASSIST_CORPUS_DIR": s.index.corpus_dir, "PEER_ASSIST_INDEX_DIR": s.index.index_dir,
                       "PEER_ASSIST_EMBEDDING_MODEL": s.index.embedding_model,
                       "PEER_ASSIST_ABSTAIN_THRESHOLD": s.scope.abstain_threshold,
                       "PEER_ASSIST_SEMANTIC_CRISIS_CHECK": "false"}.items():
        monkeypatch.setenv(key, str(value))
    get_settings.cache_clear()
    yield s
    get_settings.cache_clear()


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_ask_text_has_sources(cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ask", "How should we recruit peer workers?"]) == 0
    out = capsys.readouterr().out
    assert "Sources:" in out and re.search(r"\[1\] .+ — [a-z]+-\d{4}", out)


def test_ask_json_contract_and_theme(cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ask", "--json", "--theme", "support-development", "What helps peer workers stay?"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "answered"
    assert {s["theme"] for s in data["strategies"]} <= {"support-development", ""}
    numbers = {c["n"] for c in data["citations"]}
    assert {int(n) for n in re.findall(r"\[(\d+)\]", data["answer"])} <= numbers


def test_batch_answers_each_line_with_its_id(cli_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    batch = tmp_path / "q.jsonl"
    batch.write_text("\n".join([
        json.dumps({"id": "q1", "question": "How should we recruit peer workers?"}),
        json.dumps({"id": "q2", "question": "and what about training?", "history": ["How should we recruit peer workers?"]}),
        json.dumps({"id": "q3", "question": "I want to kill myself"}),
        json.dumps({"id": "q4", "question": ""}),
        "not json",
    ]) + "\n")
    code = cli.main(["ask", "--json", "--batch", str(batch)])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 1  # two bad lines
    assert [x["id"] for x in lines] == ["q1", "q2", "q3", "q4", 5]
    assert lines[0]["status"] == "answered" and lines[2]["status"] == "crisis"
    assert "follow-up to" in lines[1]["standalone_question"]
    assert "error" in lines[3] and "error" in lines[4]


def test_empty_question_is_a_friendly_error(cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ask", "   "]) == 1
    err = capsys.readouterr().err
    assert "The question is empty." in err and "Traceback" not in err


def test_unknown_theme_is_a_friendly_error(cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ask", "--theme", "nope", "How do we recruit?"]) == 1
    assert "Unknown theme 'nope'" in capsys.readouterr().err


def test_chat_keeps_context(cli_env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("How should we recruit peer workers?\nand what about training?\n\n"))
    assert cli.main(["chat"]) == 0
    out = capsys.readouterr().out
    assert "(Understood as: What does the evidence say about training? (follow-up to: How should we recruit" in out


def test_missing_index_is_a_friendly_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PEER_ASSIST_INDEX_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("PEER_ASSIST_EMBEDDING_MODEL", "hash-64")
    get_settings.cache_clear()
    try:
        assert cli.main(["ask", "How do we recruit peer workers?"]) == 1
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "peer-assist ingest" in err and "Traceback" not in err


def test_ask_text_says_where_the_strategies_sit_on_the_map(cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ask", "Who should supervise peer workers?"]) == 0
    out = capsys.readouterr().out
    assert "\nOn the evidence map:\n  - " in out
    assert re.search(r"  - .+: \d+ of 1 review, \d+ of \d+ studies, \d+ of \d+ later research, \d+ of \d+ guidance", out)


def test_chat_prints_llm_sentences_as_they_are_verified(cli_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The terminal shows sentence 1 before the model writes its last line (the fake model waits for it)."""
    import threading

    from tests.fakes import first_sentence, make_scripted_chat_model, prompt_passages

    release, lines = threading.Event(), []

    def script(prompt: str) -> str:
        lines[:] = [f"{first_sentence(t)} [{i}]" for i, t in list(prompt_passages(prompt).items())[:3]]
        return "\n".join(lines)

    def start(line: str) -> str:
        return " ".join(line.split("[")[0].split()[:6])

    class Terminal(io.StringIO):
        def write(self, s: str) -> int:
            n = super().write(s)
            if lines and start(lines[0]) in self.getvalue():
                release.set()  # sentence 1 is on the terminal: let the model write its last line
            return n

    model = make_scripted_chat_model(script, before_last_line=release)
    monkeypatch.setattr("assistant.compose.llm.build_chat_model", lambda settings: model)
    monkeypatch.setenv("PEER_ASSIST_COMPOSER", "llm")
    get_settings.cache_clear()
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    monkeypatch.setattr("sys.stdin", io.StringIO("Who should supervise peer workers?\n\n"))
    assert cli.main(["chat"]) == 0
    out = terminal.getvalue()
    positions = [out.find(start(line)) for line in lines]
    assert len(lines) == 3 and all(p >= 0 for p in positions) and positions == sorted(positions), out
    assert out.find("Sources:") > positions[-1] and out.count(start(lines[0])) == 1, "printed once, never again"
