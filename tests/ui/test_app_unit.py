"""The chat page's handlers as plain functions over ``ChatState`` (a scripted assistant, no model, no
Gradio), the one Reply → Gradio mapping, `serve()` and login."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import InvalidQuestionError
from assistant.feedback import read_feedback
from assistant.render import escape_user_text
from assistant.safety import CRISIS_MESSAGE
from assistant.settings import PROJECT_ROOT, Settings
from assistant.types import Answer, Citation, StrategyItem
from assistant.ui import handlers
from assistant.ui import serve as serve_module
from assistant.ui.app import (ANSWER_FIELDS, CARD_FIELDS, CLEAR_FIELDS, FEEDBACK_FIELDS, MAP_CARD_FIELDS, MAP_CELL_FIELDS,
                              MAP_FIELDS)
from assistant.ui.handlers import PageContext, RequestError
from assistant.ui.state import KEEP, Banner, ChatState, Reply
from assistant.ui.texts import ALL_THEMES, CARD_EMPTY, CRISIS_BANNER, SEARCHING, SOURCES_EMPTY
from ingest.cards import Corpus, load_corpus
from tests.conftest import CORPUS, make_settings

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")

HOSTILE = "<script>window.__xss=1</script><b>bold</b> <img src=x onerror=alert(1)> **not bold** [x](javascript:1)"
QUESTION = "Who should supervise peer workers?"


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus(CORPUS)


def answered(question: str, corpus: Corpus, standalone: str | None = None) -> Answer:
    a, b = corpus.cards[0], corpus.cards[1]
    cites = [Citation(n=i + 1, card_id=c.id, doi=c.doi, title=c.title, year=c.year, section="summary",
                      quote=c.sections[0].text[:120], authors="; ".join(c.authors), country=c.country,
                      design=c.design, short_cite=c.short_cite, link=c.link) for i, c in enumerate((a, b))]
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
def fake(corpus: Corpus) -> ScriptedAssistant:
    return ScriptedAssistant(corpus)


@pytest.fixture
def ctx(tmp_path: Path, fake: ScriptedAssistant) -> PageContext:
    settings = make_settings(tmp_path, feedback_path=tmp_path / "fb.jsonl")
    return PageContext.create(settings, fake, download_dir=tmp_path / "downloads")  # type: ignore[arg-type]


def ask(ctx: PageContext, message: str, state: ChatState | None = None, theme: str = ALL_THEMES) -> Reply:
    return handlers.ask(ctx, state or ChatState(), message, theme)


# ------------------------------------------------------------------------------------------------
# asking

def test_answer_then_follow_up_passes_history(ctx: PageContext, fake: ScriptedAssistant) -> None:
    reply = ask(ctx, QUESTION)
    assert isinstance(reply.messages, list) and isinstance(reply.state, ChatState)
    assert reply.messages[-1]["role"] == "assistant" and "[1]" in reply.messages[-1]["content"]
    assert reply.question_box is KEEP  # cleared by echo(); the user may be typing the next one
    assert "[1] " in reply.sources and "[2] " in reply.sources  # type: ignore[operator]
    assert reply.card_choices[0][0].startswith("[1] ")  # type: ignore[index]
    assert reply.banner is None and reply.feedback_status == ""
    assert isinstance(reply.download, Path)
    assert reply.download.read_text(encoding="utf-8").count("## References") == 1
    assert reply.state.questions == (QUESTION,) and reply.state.last is not None
    assert fake.calls[-1][2] is None  # "all" means no filter

    again = ask(ctx, "and training?", reply.state, theme="support-development")
    assert fake.calls[-1] == ("and training?", [QUESTION], "support-development")
    assert isinstance(again.state, ChatState) and isinstance(again.messages, list)
    assert escape_user_text(f"follow-up to: {QUESTION}") in again.messages[-1]["content"]
    assert len(again.state.messages) == 4 and again.messages == list(again.state.messages)
    assert again.state.questions == (QUESTION, "and training?")


def test_echo_shows_the_question_at_once(ctx: PageContext) -> None:
    state = ask(ctx, QUESTION).state
    assert isinstance(state, ChatState)
    reply = handlers.echo(ctx, state, "Who?")
    assert reply is not None and isinstance(reply.messages, list)
    assert reply.messages[-2:] == [{"role": "user", "content": "Who?"}, {"role": "assistant", "content": SEARCHING}]
    assert reply.messages[:2] == list(state.messages)
    assert reply.question_box == "" and reply.banner is None
    assert reply.state is KEEP  # the conversation changes only with the answer
    assert handlers.echo(ctx, state, "   ") is None
    assert handlers.echo(ctx, state, "x" * (ctx.max_chars + 1)) is None  # refused at once by ask()


def test_user_message_is_escaped(ctx: PageContext, fake: ScriptedAssistant) -> None:
    reply = ask(ctx, HOSTILE)
    assert isinstance(reply.messages, list)
    assert reply.messages[0]["content"] == escape_user_text(HOSTILE)
    assert fake.calls[-1][0] == HOSTILE  # the assistant gets the raw text


def test_crisis_shows_banner_and_is_not_context(ctx: PageContext) -> None:
    reply = ask(ctx, "I want to kill myself")
    assert reply.banner == Banner("crisis", CRISIS_BANNER)
    assert isinstance(reply.messages, list) and "emergency number" in reply.messages[-1]["content"]
    assert isinstance(reply.state, ChatState) and reply.state.questions == ()
    assert reply.state.last is not None and reply.state.last.status == "crisis"  # feedback can rate it
    assert "crisis" in reply.sources  # type: ignore[operator]
    assert "Please read this first" in CRISIS_BANNER


def test_abstain_shows_banner(ctx: PageContext) -> None:
    reply = ask(ctx, "Write me a poem")
    assert isinstance(reply.banner, Banner) and reply.banner.kind == "abstained"
    assert "Not covered" in reply.banner.text and "Clear role definition" in reply.banner.text


def test_errors_are_friendly_never_a_traceback(ctx: PageContext) -> None:
    before = ask(ctx, QUESTION).state
    assert isinstance(before, ChatState)
    friendly = handlers.ask(ctx, before, "bad theme please", ALL_THEMES)
    assert isinstance(friendly.messages, list) and isinstance(friendly.state, ChatState)
    assert "Unknown theme" in friendly.messages[-1]["content"] and "Use one of" in friendly.messages[-1]["content"]
    # the failed turn is shown but is no context, and the last answer (feedback, download) stays
    assert friendly.state.questions == before.questions and friendly.state.last is before.last
    assert friendly.sources is KEEP and friendly.download is KEEP and friendly.card_choices is KEEP
    generic = ask(ctx, "boom")
    assert isinstance(generic.messages, list)
    text = generic.messages[-1]["content"]
    assert "went wrong" in text and "internal detail" not in text and "Traceback" not in text


def test_too_long_and_empty_input(ctx: PageContext, fake: ScriptedAssistant) -> None:
    reply = ask(ctx, "x" * (ctx.max_chars + 1))
    assert isinstance(reply.messages, list)
    assert f"the limit is {ctx.max_chars:,}" in reply.messages[-1]["content"]
    assert len(reply.messages[0]["content"]) < 400  # only a preview is echoed
    assert reply.question_box == "" and fake.calls == []
    assert ask(ctx, "   ") == Reply() and ask(ctx, "   ").changed == ()
    assert handlers.ask(ctx, ChatState(), None, ALL_THEMES) == Reply()  # type: ignore[arg-type]


def test_example_text_and_theme_filter() -> None:
    assert handlers.example_text({"text": QUESTION}) == QUESTION
    assert handlers.example_text(None) == "" and handlers.example_text("Q") == "Q"
    assert [handlers.theme_filter(v) for v in (None, "", ALL_THEMES, "leadership")] == [None, None, None,
                                                                                         "leadership"]


# ------------------------------------------------------------------------------------------------
# feedback, cards, a new conversation

def test_feedback_writes_the_latest_answer(ctx: PageContext) -> None:
    settings = ctx.settings
    first = handlers.feedback(ctx, ChatState(), "up", "great")
    assert "Ask a question first" in first.feedback_status and first.comment is KEEP  # type: ignore[operator]
    assert not settings.feedback_file.exists()
    state = ask(ctx, QUESTION).state
    assert isinstance(state, ChatState)
    saved = handlers.feedback(ctx, state, "up", "great")
    assert saved.comment == "" and "saved" in saved.feedback_status  # type: ignore[operator]
    handlers.feedback(ctx, state, "down", None)
    up, down = read_feedback(settings.feedback_file)
    assert (up["rating"], up["comment"], down["rating"], down["comment"]) == ("up", "great", "down", "")
    assert up["question"] == QUESTION and up["status"] == "answered"
    assert [c["n"] for c in up["citations"]] == [1, 2] and up["settings_hash"] == settings.settings_hash()


def test_feedback_that_cannot_be_saved_says_so(tmp_path: Path, fake: ScriptedAssistant) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings = make_settings(tmp_path, feedback_path=blocker / "fb.jsonl")
    ctx = PageContext.create(settings, fake, download_dir=tmp_path / "dl")  # type: ignore[arg-type]
    state = ask(ctx, QUESTION).state
    reply = handlers.feedback(ctx, state, "up", "kept")  # type: ignore[arg-type]
    assert "could not be saved" in reply.feedback_status and reply.comment is KEEP  # type: ignore[operator]


def test_card_viewer_and_clear(ctx: PageContext, corpus: Corpus) -> None:
    card = corpus.cards[3]
    shown = handlers.open_card(ctx, card.id)
    assert card.id in shown.card_view and shown.card_open is True  # type: ignore[operator]
    assert handlers.open_card(ctx, None) == Reply() == handlers.open_card(ctx, "no-such-card")
    cleared = handlers.clear(ctx)
    assert cleared.state == ChatState() and cleared.messages == [] and cleared.question_box == ""
    assert cleared.sources == SOURCES_EMPTY and cleared.card_view == CARD_EMPTY
    assert cleared.banner is None and cleared.download is None
    assert cleared.card_choices == ctx.card_choices() and len(ctx.card_choices()) == len(corpus.cards)


def test_card_choices_put_cited_cards_first(ctx: PageContext, corpus: Corpus) -> None:
    answer = answered("q", corpus)
    choices = ctx.card_choices(answer)
    first, second = corpus.cards[0], corpus.cards[1]
    assert choices[:2] == [(f"[1] {first.short_cite} — {first.title}", first.id),
                           (f"[2] {second.short_cite} — {second.title}", second.id)]
    assert sorted(cid for _, cid in choices) == sorted(c.id for c in corpus.cards)  # each card once


def test_every_handler_changes_only_what_its_event_outputs(ctx: PageContext) -> None:
    assert {f.name for f in fields(Reply)} == set(CLEAR_FIELDS + CARD_FIELDS + FEEDBACK_FIELDS + MAP_FIELDS
                                                  + MAP_CARD_FIELDS)
    state = ask(ctx, QUESTION).state
    assert isinstance(state, ChatState)
    for message in (QUESTION, "Write me a poem", "I want to kill myself", "boom", "x" * (ctx.max_chars + 1)):
        assert set(ask(ctx, message, state).changed) <= set(ANSWER_FIELDS), message
    echoed = handlers.echo(ctx, state, QUESTION)
    assert echoed is not None and set(echoed.changed) <= set(ANSWER_FIELDS)
    assert set(handlers.clear(ctx).changed) == set(CLEAR_FIELDS)
    assert set(handlers.open_card(ctx, next(iter(ctx.cards))).changed) == set(CARD_FIELDS)
    assert set(handlers.feedback(ctx, state, "up", "").changed) <= set(FEEDBACK_FIELDS)
    assert set(handlers.map_view(ctx, "kind").changed) == set(MAP_FIELDS)
    assert set(handlers.map_cell(ctx, "kind", "support-development/supervision|study").changed) == set(MAP_CELL_FIELDS)
    assert set(handlers.map_open_card(ctx, next(iter(ctx.cards))).changed) == set(MAP_CARD_FIELDS)


def test_old_answer_files_are_pruned(tmp_path: Path) -> None:
    for i in range(7):
        (tmp_path / f"{1000 + i}-answer.md").write_text("x")
    handlers.prune(tmp_path, keep=3)
    assert sorted(p.name for p in tmp_path.glob("*.md")) == ["1004-answer.md", "1005-answer.md", "1006-answer.md"]
    assert handlers.slug("Who should supervise <b>peer</b> workers?") == "who-should-supervise-b-peer-b-workers"
    assert handlers.slug("???") == "answer"


# ------------------------------------------------------------------------------------------------
# the API handler

def test_api_ask(ctx: PageContext, fake: ScriptedAssistant) -> None:
    data = handlers.api_ask(ctx, QUESTION, None, "")
    assert data["status"] == "answered" and data["citations"][0]["n"] == 1
    assert fake.calls[-1] == (QUESTION, [], None)
    handlers.api_ask(ctx, "and training?", [QUESTION], "leadership")
    assert fake.calls[-1] == ("and training?", [QUESTION], "leadership")
    with pytest.raises(RequestError, match="Unknown theme"):
        handlers.api_ask(ctx, "bad theme please")
    with pytest.raises(RequestError, match="history"):
        handlers.api_ask(ctx, "q", "not a list")
    with pytest.raises(RequestError, match="must be text"):
        handlers.api_ask(ctx, 42)
    with pytest.raises(RequestError) as err:
        handlers.api_ask(ctx, "boom")
    assert "went wrong" in str(err.value) and "internal detail" not in str(err.value)


# ------------------------------------------------------------------------------------------------
# the Reply → Gradio mapping

def test_to_gradio_maps_each_changed_field_once() -> None:
    from assistant.ui.app import Page, to_gradio

    page = Page(**{f.name: f"<{f.name}>" for f in fields(Page)})
    assert to_gradio(Reply(), page) == {}
    out = to_gradio(Reply(messages=[], question_box="", banner=Banner("crisis", CRISIS_BANNER),
                          download=None, card_choices=[("label", "id")], card_open=True), page)
    assert set(out) == {"<chatbot>", "<box>", "<crisis>", "<abstained>", "<download>", "<card_pick>", "<card_box>"}
    assert out["<chatbot>"] == [] and out["<box>"] == ""
    assert out["<crisis>"]["visible"] is True and out["<crisis>"]["value"] == CRISIS_BANNER
    assert out["<abstained>"] == {"__type__": "update", "visible": False}
    assert out["<download>"]["value"] is None and out["<download>"]["interactive"] is False
    assert out["<card_pick>"]["choices"] == [("label", "id")] and out["<card_pick>"]["value"] is None
    assert out["<card_box>"]["open"] is True
    abstained = to_gradio(Reply(banner=Banner("abstained", "Not covered."), download=Path("/tmp/a.md")), page)
    assert abstained["<abstained>"]["value"] == "Not covered." and abstained["<abstained>"]["visible"] is True
    assert abstained["<crisis>"]["visible"] is False
    hidden = to_gradio(Reply(banner=None), page)
    assert hidden["<crisis>"]["visible"] is False and hidden["<abstained>"]["visible"] is False
    assert abstained["<download>"]["value"] == "/tmp/a.md" and abstained["<download>"]["interactive"] is True
    assert page.outputs(("banner", "state")) == ["<crisis>", "<abstained>", "<state>"]


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_importing_the_ui_has_no_side_effects() -> None:
    code = ("import sys, assistant.app, assistant.ui.app, assistant.ui.handlers, assistant.ui.serve; "
            "print('gradio' in sys.modules, 'chromadb' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PROJECT_ROOT).stdout
    assert out.split() == ["False", "False"]


# ------------------------------------------------------------------------------------------------
# serve() and login

def test_serve_builds_a_missing_index_then_launches(monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path,
                                                    fake: ScriptedAssistant) -> None:
    import assistant.chat
    import ingest.pipeline

    settings = make_settings(tmp_path, auth_user="manager", auth_password="s3cret")
    calls: dict[str, Any] = {}

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
    monkeypatch.setattr(serve_module, "build_app", lambda s, a: FakeDemo())
    monkeypatch.setattr(serve_module, "launch_app", fake_launch)
    monkeypatch.setattr(serve_module, "_stop_on_sigterm", lambda: None)
    serve_module.serve(settings)
    out = capsys.readouterr().out
    assert calls["ingest"] is settings and fake.warmed and calls["blocked"] and calls["closed"]
    assert "building it" in out and "embedded 100/100 passages" in out and "Indexed 3 cards" in out
    assert out.count("embedded") <= 12
    assert "is running at http://127.0.0.1:7860/ (login required)" in out


def test_the_old_import_path_still_works() -> None:
    import assistant.app
    from assistant.ui.app import build_app

    assert assistant.app.build_app is build_app and assistant.app.serve is serve_module.serve
    assert assistant.app.launch_app is serve_module.launch_app


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_login_is_required_when_configured(tmp_path: Path, fake: ScriptedAssistant) -> None:
    import httpx
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    from assistant.ui.app import build_app
    from tests.ui.conftest import free_port

    settings = make_settings(tmp_path, auth_user="manager", auth_password="s3cret")
    demo = build_app(settings, fake)  # type: ignore[arg-type]
    _, url, _ = serve_module.launch_app(demo, settings, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        assert httpx.get(url + "config").status_code == 401
        assert httpx.post(url + "gradio_api/call/ask", json={"data": ["q", None, None]}).status_code == 401
        with pytest.raises(AuthenticationError):
            Client(url, verbose=False)
        client = Client(url, auth=("manager", "s3cret"), verbose=False)
        assert client.predict(QUESTION, api_name="/ask")["status"] == "answered"
        with httpx.Client(base_url=url, timeout=30) as http:  # the curl recipe in docs/API.md
            assert http.post("login", data={"username": "manager", "password": "wrong"}).status_code == 400
            assert http.post("login", data={"username": "manager", "password": "s3cret"}).status_code == 200
            posted = http.post("gradio_api/call/ask", json={"data": ["Who supervises peers?", None, None]})
            event_id = posted.json()["event_id"]
            assert "event: complete" in http.get(f"gradio_api/call/ask/{event_id}").text
    finally:
        demo.close()


class StreamingAssistant(ScriptedAssistant):
    """Streams two verified sentences before its answer, as the LLM composer does."""

    PIECES = ("Peer workers value supervision by an experienced peer [1].", " Managers plan supervision time [2].")

    def ask_stream(self, question: str, history: list[str] | None = None, theme: str | None = None) -> Any:
        answer = self.ask(question, history, theme)
        yield from self.PIECES
        answer.answer = "".join(self.PIECES) + "\n\n" + answer.answer
        yield answer


def test_a_streamed_answer_shows_sentence_by_sentence_and_keeps_them(tmp_path: Path, corpus: Corpus) -> None:
    settings = make_settings(tmp_path, feedback_path=tmp_path / "fb.jsonl")
    ctx = PageContext.create(settings, StreamingAssistant(corpus), download_dir=tmp_path / "d")  # type: ignore[arg-type]
    replies = list(handlers.ask_stream(ctx, ChatState(), QUESTION, ALL_THEMES))
    assert len(replies) == 3
    partial = [r.messages[-1]["content"] for r in replies[:2]]  # type: ignore[index]
    assert partial == [StreamingAssistant.PIECES[0], "".join(StreamingAssistant.PIECES)]
    assert all(r.state is KEEP and r.sources is KEEP for r in replies[:2]), "the conversation changes only at the end"
    final = replies[-1]
    assert isinstance(final.state, ChatState) and final.state.last is not None
    assert final.messages[-1]["content"].startswith(partial[-1]), "nothing shown is retracted"  # type: ignore[index]
    assert handlers.ask(ctx, ChatState(), QUESTION, ALL_THEMES).messages == final.messages
