"""The UI's handlers, escaping and rendering, `serve()` and login, with a scripted assistant (no model)."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import given, settings as hsettings, strategies as st
from markdown_it import MarkdownIt

from assistant import app as app_module
from assistant.app import (ALL_THEMES, CRISIS_BANNER, card_markdown, chat_markdown, escape_user_text,
                           sources_markdown)
from assistant.errors import InvalidQuestionError
from assistant.feedback import read_feedback
from assistant.safety import CRISIS_MESSAGE
from assistant.settings import Settings
from assistant.types import Answer, Citation, StrategyItem
from ingest.cards import Corpus, load_corpus
from tests.conftest import CORPUS, make_settings

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")

HOSTILE = "<script>window.__xss=1</script><b>bold</b> <img src=x onerror=alert(1)> **not bold** [x](javascript:1)"


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus(CORPUS)


def answered(question: str, corpus: Corpus, standalone: str | None = None) -> Answer:
    a, b = corpus.cards[0], corpus.cards[1]
    cites = [Citation(n=i + 1, card_id=c.id, doi=c.doi, title=c.title, year=c.year, section="summary",
                      quote=c.sections[0].text[:120], authors="; ".join(c.authors), country=c.country,
                      design=c.design, link=c.link) for i, c in enumerate((a, b))]
    text = "#### Leadership championing\n**Do X.** One [1]. Two [2]."
    return Answer(question=question, status="answered", answer=text,
                  strategies=[StrategyItem("leadership", "Do X", "One [1]. Two [2].", [1, 2])], citations=cites,
                  evidence={"n_sources": 2, "designs": {"qualitative": 2}, "countries": {"USA": 2}},
                  standalone_question=standalone or question)


class ScriptedAssistant:
    """Stands in for assistant.chat.Assistant: records calls, answers by keyword."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self.calls: list[tuple[str, list[str], str | None]] = []
        self.warmed = False

    def warm_up(self) -> None:
        self.warmed = True

    def ask(self, question: str, history: list[str] | None = None, theme: str | None = None) -> Answer:
        self.calls.append((question, list(history or []), theme))
        if "boom" in question:
            raise RuntimeError("internal detail that must not reach the user")
        if "bad theme" in question:
            raise InvalidQuestionError("Unknown theme 'x'.", "Use one of: leadership.")
        if "kill myself" in question:
            return Answer(question=question, status="crisis", answer=CRISIS_MESSAGE, reason="crisis language")
        if "poem" in question:
            return Answer(question=question, status="abstained", answer="The evidence does not cover that.",
                          reason="creative writing", nearest_topics=["Clear role definition and job descriptions"])
        standalone = f"{question} (follow-up to: {history[-1]})" if history else question
        return answered(question, self.corpus, standalone)


@pytest.fixture
def ui(tmp_path: Path, corpus: Corpus) -> Iterator[tuple[Any, ScriptedAssistant, Settings]]:
    settings = make_settings(tmp_path, feedback_path=tmp_path / "fb.jsonl")
    fake = ScriptedAssistant(corpus)
    demo = app_module.build_app(settings, fake)  # type: ignore[arg-type]
    yield demo, fake, settings


def handler(demo: Any, name: str) -> Any:
    return next(f.fn for f in demo.fns.values() if f.fn is not None and f.fn.__name__ == name)


def run(demo: Any, question: str, state: dict[str, Any], theme: str = ALL_THEMES) -> tuple[Any, ...]:
    *_, last = list(handler(demo, "respond")(question, theme, state))
    return last


def fresh() -> dict[str, Any]:
    return {"messages": [], "questions": [], "last": None}


# ------------------------------------------------------------------------------------------------
# escaping and rendering

def _render_inline(md: str) -> str:
    out = MarkdownIt("commonmark").render(md).strip()
    assert out.startswith("<p>") and out.endswith("</p>"), out
    return out[3:-4]


def test_escape_user_text_is_inert() -> None:
    escaped = escape_user_text(HOSTILE)
    assert "<" not in escaped and ">" not in escaped
    rendered = _render_inline(escaped)
    assert not re.search(r"<(?!br)", rendered)  # no tag at all in the output
    assert html.unescape(rendered) == HOSTILE


@hsettings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=60))
def test_escaped_text_renders_as_itself(text: str) -> None:
    rendered = _render_inline(escape_user_text(text))
    assert "<" not in rendered.replace("&lt;", "")
    assert html.unescape(rendered) == text


def test_chat_markdown_escapes_the_rewritten_question(corpus: Corpus) -> None:
    text = chat_markdown(answered("and <b>it</b>?", corpus, standalone="And <b>it</b>? (follow-up to: Q)"))
    assert "<b>" not in text and "&lt;b&gt;" in text
    assert "Follow-up, read as" in text
    assert "**Sources**" in text and "[2] " in text


def test_sources_and_cards_escape_their_text(corpus: Corpus) -> None:
    answer = answered("q", corpus)
    answer.citations[0].quote = HOSTILE
    md = sources_markdown(answer, {})
    assert "<script" not in md and "&lt;script&gt;" in md
    assert "https://doi.org/" in md or "http" in md
    titles = {t.id: t.title for t in corpus.taxonomy.themes.values()}
    for card in corpus.cards:
        text = card_markdown(card, titles)
        assert card.title[:30] in html.unescape(text)
        assert "<script" not in text.lower()
        assert text.count("#### ") == len(card.sections)


# ------------------------------------------------------------------------------------------------
# handlers

def test_answer_then_follow_up_passes_history(ui: Any) -> None:
    demo, fake, _ = ui
    out = run(demo, "Who should supervise peer workers?", fresh())
    messages, box, state, sources, picker, crisis, abstain, download, status = out
    assert messages[-1]["role"] == "assistant" and "[1]" in messages[-1]["content"]
    assert box == {"__type__": "update"} or box == ""
    assert "[1] " in sources and "[2] " in sources
    assert picker["choices"][0][0].startswith("[1] ")
    assert crisis["visible"] is False and abstain["visible"] is False
    assert Path(download["value"]).read_text(encoding="utf-8").count("## References") == 1
    out2 = run(demo, "and training?", state, theme="support-development")
    assert fake.calls[-1] == ("and training?", ["Who should supervise peer workers?"], "support-development")
    assert escape_user_text("follow-up to: Who should supervise peer workers?") in out2[0][-1]["content"]
    assert fake.calls[0][2] is None  # "all" means no filter
    assert len(out2[2]["messages"]) == 4


def test_first_yield_shows_the_question_at_once(ui: Any) -> None:
    demo, _, _ = ui
    first = next(iter(handler(demo, "respond")("Who?", ALL_THEMES, fresh())))
    assert first[0][-2] == {"role": "user", "content": "Who?"}
    assert "Searching the evidence" in first[0][-1]["content"]


def test_user_message_is_escaped(ui: Any) -> None:
    demo, fake, _ = ui
    messages = run(demo, HOSTILE, fresh())[0]
    assert messages[0]["content"] == escape_user_text(HOSTILE)
    assert fake.calls[-1][0] == HOSTILE  # the assistant gets the raw text


def test_crisis_shows_banner_and_is_not_context(ui: Any) -> None:
    demo, fake, _ = ui
    out = run(demo, "I want to kill myself", fresh())
    assert out[5]["visible"] is True and out[6]["visible"] is False
    assert "emergency number" in out[0][-1]["content"]
    assert out[2]["questions"] == []
    assert "crisis" in out[3]
    assert "Please read this first" in CRISIS_BANNER


def test_abstain_shows_banner(ui: Any) -> None:
    demo, _, _ = ui
    out = run(demo, "Write me a poem", fresh())
    assert out[6]["visible"] is True and "Not covered" in out[6]["value"]
    assert "Clear role definition" in out[6]["value"]


def test_errors_are_friendly_never_a_traceback(ui: Any) -> None:
    demo, _, _ = ui
    friendly = run(demo, "bad theme please", fresh())[0][-1]["content"]
    assert "Unknown theme" in friendly and "Use one of" in friendly
    generic = run(demo, "boom", fresh())[0][-1]["content"]
    assert "went wrong" in generic and "internal detail" not in generic and "Traceback" not in generic


def test_too_long_and_empty_input(ui: Any) -> None:
    demo, fake, settings = ui
    out = run(demo, "x" * (settings.scope.max_question_chars + 1), fresh())
    assert f"the limit is {settings.scope.max_question_chars:,}" in out[0][-1]["content"]
    assert len(out[0][0]["content"]) < 400  # only a preview is echoed
    assert fake.calls == []
    assert all(v == {"__type__": "update"} for v in run(demo, "   ", fresh()))


def test_feedback_handler_writes_the_latest_answer(ui: Any) -> None:
    demo, _, settings = ui
    comment, status = handler(demo, "thumbs_up")("great", fresh())
    assert "Ask a question first" in status and not settings.feedback_file.exists()
    state = run(demo, "Who should supervise peer workers?", fresh())[2]
    comment, status = handler(demo, "thumbs_up")("great", state)
    assert comment == "" and "saved" in status
    handler(demo, "thumbs_down")("", state)
    first, second = read_feedback(settings.feedback_file)
    assert (first["rating"], first["comment"], second["rating"]) == ("up", "great", "down")
    assert first["question"] == "Who should supervise peer workers?" and first["status"] == "answered"
    assert [c["n"] for c in first["citations"]] == [1, 2] and first["settings_hash"] == settings.settings_hash()


def test_card_viewer_and_clear(ui: Any, corpus: Corpus) -> None:
    demo, _, _ = ui
    card = corpus.cards[3]
    text, accordion = handler(demo, "open_card")(card.id)
    assert card.id in text and accordion["open"] is True
    assert handler(demo, "open_card")(None) == ({"__type__": "update"}, {"__type__": "update"})
    cleared = handler(demo, "clear")()
    assert cleared[0] == [] and cleared[2] == fresh()


def test_api_function(ui: Any) -> None:
    import gradio as gr

    demo, fake, _ = ui
    ask = handler(demo, "ask")
    data = ask("Who should supervise peer workers?", None, "")
    assert data["status"] == "answered" and data["citations"][0]["n"] == 1
    assert fake.calls[-1][2] is None
    with pytest.raises(gr.Error, match="Unknown theme"):
        ask("bad theme please")
    with pytest.raises(gr.Error, match="history"):
        ask("q", "not a list")  # type: ignore[arg-type]


def test_importing_the_app_module_has_no_side_effects() -> None:
    import subprocess
    import sys

    code = "import sys, assistant.app; print('gradio' in sys.modules, 'chromadb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(app_module.__file__).parents[1]).stdout
    assert out.split() == ["False", "False"]


# ------------------------------------------------------------------------------------------------
# serve() and login

def test_serve_builds_a_missing_index_then_launches(monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path,
                                                    corpus: Corpus) -> None:
    import assistant.chat
    import ingest.pipeline

    settings = make_settings(tmp_path, auth_user="manager", auth_password="s3cret")
    calls: dict[str, Any] = {}
    fake = ScriptedAssistant(corpus)

    class Report:
        def summary(self) -> str:
            return "Indexed 3 cards"

    def fake_ingest(s: Settings, progress: Any = None, **_: Any) -> Report:
        for done in range(0, 101, 5):
            progress(done, 100)
        calls["ingest"] = s
        return Report()

    class FakeDemo:
        def block_thread(self) -> None:
            calls["blocked"] = True

        def close(self) -> None:
            calls["closed"] = True

    def fake_launch(demo: Any, s: Settings, **kw: Any) -> tuple[None, str, None]:
        calls["launch"] = kw
        return None, f"http://{s.ui.host}:{s.ui.port}/", None

    monkeypatch.setattr(ingest.pipeline, "index_is_built", lambda s: False)
    monkeypatch.setattr(ingest.pipeline, "run_ingest", fake_ingest)
    monkeypatch.setattr(assistant.chat, "Assistant", lambda s: fake)
    monkeypatch.setattr(app_module, "build_app", lambda s, a: FakeDemo())
    monkeypatch.setattr(app_module, "launch_app", fake_launch)
    monkeypatch.setattr(app_module, "_stop_on_sigterm", lambda: None)
    app_module.serve(settings)
    out = capsys.readouterr().out
    assert calls["ingest"] is settings and fake.warmed and calls["blocked"] and calls["closed"]
    assert "building it" in out and "embedded 100/100 passages" in out and "Indexed 3 cards" in out
    assert out.count("embedded") <= 12
    assert "is running at http://127.0.0.1:7860/ (login required)" in out


def test_login_is_required_when_configured(tmp_path: Path, corpus: Corpus) -> None:
    import httpx
    from gradio_client import Client

    from tests.ui.conftest import free_port

    settings = make_settings(tmp_path, auth_user="manager", auth_password="s3cret")
    demo = app_module.build_app(settings, ScriptedAssistant(corpus))  # type: ignore[arg-type]
    _, url, _ = app_module.launch_app(demo, settings, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        assert httpx.get(url + "config").status_code == 401
        assert httpx.post(url + "gradio_api/call/ask", json={"data": ["q", None, None]}).status_code == 401
        with pytest.raises(Exception):
            Client(url, verbose=False)
        client = Client(url, auth=("manager", "s3cret"), verbose=False)
        assert client.predict("Who should supervise peer workers?", api_name="/ask")["status"] == "answered"
        with httpx.Client(base_url=url, timeout=30) as http:  # the curl recipe in docs/API.md
            assert http.post("login", data={"username": "manager", "password": "wrong"}).status_code == 400
            assert http.post("login", data={"username": "manager", "password": "s3cret"}).status_code == 200
            posted = http.post("gradio_api/call/ask", json={"data": ["Who supervises peers?", None, None]})
            event_id = posted.json()["event_id"]
            assert "event: complete" in http.get(f"gradio_api/call/ask/{event_id}").text
    finally:
        demo.close()


def test_old_answer_files_are_pruned(tmp_path: Path) -> None:
    for i in range(7):
        (tmp_path / f"{1000 + i}-answer.md").write_text("x")
    app_module._prune(tmp_path, keep=3)
    assert sorted(p.name for p in tmp_path.glob("*.md")) == ["1004-answer.md", "1005-answer.md", "1006-answer.md"]
