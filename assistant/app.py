"""The managers' chat UI (Gradio) and the named API endpoint ``/ask``.

``build_app(settings)`` builds the page inside the function (importing this module has no side
effects); ``serve(settings)`` is ``peer-assist serve``: it builds the index when there is none,
warms the assistant up and launches the server.

User text is never rendered as active HTML: user messages are escaped (HTML and Markdown) before
they reach the Chatbot, and every component renders with ``sanitize_html=True``.
"""

from __future__ import annotations

import html
import logging
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import AssistantError
from assistant.settings import Settings, enforce_offline, get_settings

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

    from assistant.chat import Assistant
    from assistant.types import Answer
    from ingest.types import Card
    from ingest.cards import Corpus

log = logging.getLogger(__name__)

TITLE = "Peer Provision Assistant"
ALL_THEMES = "all"
EXAMPLE_QUESTIONS = (
    "What should we do before our first peer worker starts?",
    "Who should supervise peer workers?",
    "How can leaders show they support peer work?",
    "What training do peer workers need?",
)
#: How much of a refused (over-long) question is echoed back in the chat.
PREVIEW_CHARS = 300

INTRO = (
    f"## {TITLE}\n"
    "Evidence on introducing and supporting **peer workers** in mental health services. Ask an implementation "
    "question: the answer lists the strategies the research reports, grouped by theme, each sentence quoted from a "
    "study and marked with a citation such as [1]. The sources are listed on the right."
)
PLACEHOLDER = (
    "**Ask about introducing or supporting peer workers.**\n\n"
    "Every answer is made of sentences quoted from evidence cards, with citation markers [1], [2] that point to "
    "the sources panel. Follow-up questions keep the context of the conversation. Pick an example to start."
)
SOURCES_EMPTY = "_Sources appear here after you ask a question: each [n] in the answer points to a numbered source._"
CARD_EMPTY = "_Choose a card above to read it in full._"
CRISIS_BANNER = (
    "**Please read this first.** Your message may be about someone's safety. If anyone is in immediate danger, "
    "call your local emergency number now. Crisis lines and next steps are in the reply below."
)
FOOTER = (
    "Research summaries for service managers, not clinical or crisis advice. "
    "Answers quote the evidence cards in this assistant; check the cited studies before acting on them."
)

CSS = """
.block.banner { border-radius: 10px; padding: 14px 18px !important; }
.block.banner p { margin: 0; font-size: 1.05rem; line-height: 1.5; }
.block.banner-crisis { background: #e8f0fb !important; border: 2px solid #2b5c9e !important; }
.block.banner-crisis p, .block.banner-crisis strong { color: #12305a !important; }
.block.banner-abstained { background: #fbf6e6 !important; border: 1px solid #c9a43a !important; }
.block.banner-abstained p, .block.banner-abstained strong { color: #4d3b05 !important; }
#sources-panel { font-size: 0.93rem; }
#sources-panel blockquote { margin: 4px 0 12px 0; padding-left: 10px; border-left: 3px solid #9ab; }
#card-viewer { font-size: 0.93rem; }
.feedback-status p { margin: 0; }
footer { visibility: hidden; }
"""


# ------------------------------------------------------------------------------------------------
# Escaping and rendering (pure functions: unit tested without a browser)

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~=$:])")


def escape_user_text(text: str) -> str:
    """User text as inert Markdown: Markdown punctuation backslash-escaped, then HTML-escaped.

    ``<script>x</script>`` shows as that literal text; ``**bold**`` shows with its asterisks.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return html.escape(text, quote=True)


def _esc(text: Any) -> str:
    """Card or citation metadata inside Markdown: no raw HTML."""
    return html.escape(str(text or ""), quote=False)


def _section_label(section: str, theme_titles: dict[str, str]) -> str:
    """``leadership/peer-leadership-positions: Create ...`` → ``Leadership championing: Create ...``."""
    m = re.match(r"^([a-z-]+)/[a-z0-9-]+:\s*(.+)$", section or "")
    if m and m.group(1) in theme_titles:
        return f"{theme_titles[m.group(1)]}: {m.group(2)}"
    return section or ""


def sources_markdown(answer: Answer, theme_titles: dict[str, str]) -> str:
    """The sources panel for one answer: each citation with its card details and quoted passage."""
    if answer.status == "crisis":
        return "_No evidence was searched for this message: it was routed to crisis information._"
    if not answer.citations:
        if answer.status == "abstained" and answer.nearest_topics:
            topics = "\n".join(f"- {_esc(t)}" for t in answer.nearest_topics)
            return f"_No sources: the evidence base does not cover this question._\n\nClosest covered topics:\n{topics}"
        return "_No sources for this answer._"
    ev = answer.evidence or {}
    designs = ", ".join(f"{n} {_esc(d)}" for d, n in (ev.get("designs") or {}).items())
    out = [f"**{len(answer.citations)} citation(s) from {ev.get('n_sources', '?')} source(s)**"
           + (f" ({designs})" if designs else "")]
    for c in answer.citations:
        link = f"https://doi.org/{c.doi}" if c.doi else c.link
        meta = " · ".join(x for x in (f"{_esc(c.authors or c.card_id)} ({c.year})", _esc(c.country),
                                       _esc(c.design)) if x)
        lines = [f"**[{c.n}] {_esc(c.title)}**  ", f"{meta}  "]
        if link:
            label = f"doi:{_esc(c.doi)}" if c.doi else _esc(link)
            lines.append(f"[{label}]({link})  ")
        lines.append(f"_Card `{_esc(c.card_id)}`, section: {_esc(_section_label(c.section, theme_titles))}_")
        lines.append("")
        lines.append(f"> {_esc(c.quote)}")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def card_markdown(card: Card, theme_titles: dict[str, str]) -> str:
    """A whole evidence card as Markdown."""
    authors = "; ".join(card.authors)
    lines = [f"### {_esc(card.title)}", "", f"**{_esc(authors)}** ({card.year}). *{_esc(card.venue)}*.  "]
    if card.link:
        lines.append(f"**Link:** [{_esc(card.link)}]({card.link})  ")
    lines.append(f"**Design:** {_esc(card.design)}  ")
    lines.append(f"**Country:** {_esc(card.country)} · **Setting:** {_esc(card.setting)}  ")
    if card.participants:
        lines.append(f"**Participants:** {_esc(card.participants)}  ")
    themes = ", ".join(_esc(theme_titles.get(t, t)) for t in card.themes)
    lines.append(f"**Themes:** {themes}  ")
    lines.append(f"**Kind:** {_esc(card.kind)} · **In Zeng & McNamara (2021):** {_esc(card.review_inclusion)} "
                 f"· **Card id:** `{_esc(card.id)}`")
    for s in card.sections:
        if s.name == "strategy" and s.theme:
            heading = f"{theme_titles.get(s.theme, s.theme)}: {s.title or s.heading}"
        else:
            heading = s.heading.lstrip("#").strip() or s.name.title()
        lines += ["", f"#### {_esc(heading)}", "", _esc(s.text)]
    return "\n".join(lines)


def chat_markdown(answer: Answer) -> str:
    """The assistant's chat message: the answer, a note when a follow-up was rewritten, a short reference list
    (so the Chatbot's copy button copies a self-contained answer)."""
    parts = []
    if answer.standalone_question and answer.standalone_question != answer.question:
        parts.append(f"_Follow-up, read as: “{escape_user_text(answer.standalone_question)}”_")
    parts.append(answer.answer)
    if answer.citations:
        refs = []
        for c in answer.citations:
            who = (c.authors.split(";")[0].split(",")[0].strip() if c.authors else c.card_id)
            etal = " et al." if c.authors and c.authors.count(";") >= 1 else ""
            refs.append(f"[{c.n}] {_esc(who)}{etal} ({c.year}), *{_esc(c.title)}*")
        parts.append("**Sources**  \n" + "  \n".join(refs))
    return "\n\n".join(parts)


def abstain_banner(answer: Answer) -> str:
    text = "**Not covered by the evidence base.** The research in this assistant does not answer that question"
    if answer.nearest_topics:
        text += "; it does cover, for example: " + "; ".join(_esc(t) for t in answer.nearest_topics[:3])
    return text + "."


def _prune(folder: Path, keep: int = 500) -> None:
    """Keep only the newest ``keep`` answer files (Gradio serves its own copies of them)."""
    files = sorted(folder.glob("*.md"))
    for old in files[: max(0, len(files) - keep)]:
        old.unlink(missing_ok=True)


def _slug(text: str, limit: int = 40) -> str:
    return (re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")) or "answer"


# ------------------------------------------------------------------------------------------------
# The app


def _new_state() -> dict[str, Any]:
    return {"messages": [], "questions": [], "last": None}


def build_app(settings: Settings | None = None, assistant: Assistant | None = None) -> gr.Blocks:
    """Build the chat page and the ``/ask`` API endpoint (nothing happens at import time)."""
    enforce_offline()
    import gradio as gr

    from assistant.chat import Assistant
    from assistant.feedback import make_entry, record_feedback
    from assistant.render import answer_to_markdown

    settings = settings or get_settings()
    assistant = assistant or Assistant(settings)
    corpus: Corpus = assistant.corpus
    theme_titles = {t.id: t.title for t in corpus.taxonomy.themes.values()}
    cards = {c.id: c for c in corpus.cards}
    all_card_choices = [(f"{c.short_cite} — {c.title}", c.id) for c in sorted(cards.values(), key=lambda c: c.id)]
    theme_choices = [("All themes", ALL_THEMES)] + [(title, tid) for tid, title in theme_titles.items()]
    download_dir = Path(tempfile.mkdtemp(prefix="peer-assist-answers-"))
    limit = settings.scope.max_question_chars

    def _theme(value: str | None) -> str | None:
        return None if value in (None, "", ALL_THEMES) else value

    def card_choices(answer: Answer | None) -> list[tuple[str, str]]:
        if answer is None or not answer.citations:
            return all_card_choices
        numbers: dict[str, list[int]] = {}
        for c in answer.citations:
            numbers.setdefault(c.card_id, []).append(c.n)
        cited = [(f"[{', '.join(map(str, ns))}] {cards[cid].short_cite} — {cards[cid].title}", cid)
                 for cid, ns in numbers.items() if cid in cards]
        return cited + [choice for choice in all_card_choices if choice[1] not in numbers]

    # ---- handlers ---------------------------------------------------------------------------------
    def respond(question: str, theme: str, state: dict[str, Any]):  # type: ignore[no-untyped-def]
        """Generator: first shows the user's message, then the answer and its sources."""
        question = question if isinstance(question, str) else ""
        if not question.strip():
            yield (gr.skip(),) * 9
            return
        messages = list(state["messages"])
        shown = question if len(question) <= limit else question[:PREVIEW_CHARS] + " …"
        messages.append({"role": "user", "content": escape_user_text(shown)})

        if len(question) > limit:
            messages.append({"role": "assistant", "content": (
                f"Your message is {len(question):,} characters long; the limit is {limit:,}. "
                "Please ask one short question at a time (no pasted documents).")})
            state = {**state, "messages": messages}
            yield (messages, "", state, gr.skip(), gr.skip(), gr.update(visible=False),
                   gr.update(visible=False), gr.skip(), "")
            return

        pending = messages + [{"role": "assistant", "content": "_Searching the evidence…_"}]
        yield (pending, "", state, gr.skip(), gr.skip(), gr.update(visible=False), gr.update(visible=False),
               gr.skip(), "")

        try:
            answer = assistant.ask(question, history=list(state["questions"]), theme=_theme(theme))
        except AssistantError as exc:
            messages.append({"role": "assistant", "content": "**Sorry, I could not answer that.** "
                             + escape_user_text(exc.friendly())})
            yield (messages, gr.skip(), {**state, "messages": messages}, gr.skip(), gr.skip(),
                   gr.update(visible=False), gr.update(visible=False), gr.skip(), "")
            return
        except Exception:  # never show a traceback to the user
            log.exception("answering %r failed", question[:200])
            messages.append({"role": "assistant", "content": (
                "**Sorry, something went wrong on our side** while answering. Please try again; if it keeps "
                "happening, tell the people who run this assistant.")})
            yield (messages, gr.skip(), {**state, "messages": messages}, gr.skip(), gr.skip(),
                   gr.update(visible=False), gr.update(visible=False), gr.skip(), "")
            return

        messages.append({"role": "assistant", "content": chat_markdown(answer)})
        # Crisis turns are not context for later follow-ups.
        questions = list(state["questions"]) + ([question] if answer.status != "crisis" else [])
        data = answer.to_dict()
        last = {"question": answer.question, "answer": answer.answer, "status": answer.status,
                "citations": data["citations"]}
        path = download_dir / f"{time.time_ns()}-{_slug(answer.question)}.md"
        path.write_text(answer_to_markdown(answer), encoding="utf-8")
        _prune(download_dir)
        new_state = {"messages": messages, "questions": questions, "last": last}
        yield (
            messages,
            gr.skip(),
            new_state,
            sources_markdown(answer, theme_titles),
            gr.update(choices=card_choices(answer), value=None),
            gr.update(visible=answer.status == "crisis"),
            gr.update(value=abstain_banner(answer), visible=answer.status == "abstained"),
            gr.update(value=str(path), interactive=True),
            "",
        )

    def respond_example(evt: gr.SelectData, theme: str, state: dict[str, Any]):  # type: ignore[no-untyped-def]
        value = evt.value
        text = value.get("text", "") if isinstance(value, dict) else str(value or "")
        yield from respond(text, theme, state)

    # Annotations are strings here (``from __future__``) and ``gr`` is local: give Gradio the real class
    # so it injects the event data.
    respond_example.__annotations__["evt"] = gr.SelectData

    def open_card(card_id: str | None):  # type: ignore[no-untyped-def]
        card = cards.get(card_id or "")
        if card is None:
            return gr.skip(), gr.skip()
        return card_markdown(card, theme_titles), gr.update(open=True)

    def clear():  # type: ignore[no-untyped-def]
        return ([], "", _new_state(), SOURCES_EMPTY, gr.update(choices=all_card_choices, value=None),
                gr.update(visible=False), gr.update(visible=False), gr.update(value=None, interactive=False), "",
                CARD_EMPTY)

    def give_feedback(rating: str, comment: str, state: dict[str, Any]):  # type: ignore[no-untyped-def]
        last = state.get("last")
        if not last:
            return gr.skip(), "_Ask a question first: feedback is about the latest answer._"
        entry = make_entry(question=last["question"], answer=last["answer"], status=last["status"],
                           citations=last["citations"], rating=rating, comment=comment or "",
                           settings_hash=settings.settings_hash())
        try:
            record_feedback(settings.feedback_file, entry)
        except AssistantError as exc:
            log.warning("feedback not saved: %s", exc)
            return gr.skip(), "_Sorry, your feedback could not be saved._"
        return "", "_Thank you: your feedback on the latest answer was saved._"

    def thumbs_up(comment: str, state: dict[str, Any]):  # type: ignore[no-untyped-def]
        return give_feedback("up", comment, state)

    def thumbs_down(comment: str, state: dict[str, Any]):  # type: ignore[no-untyped-def]
        return give_feedback("down", comment, state)

    def ask(question: str, history: list[str] | None = None, theme: str | None = None) -> dict[str, Any]:
        """Answer one question with the evidence base; returns the answer contract (DESIGN.md) as JSON.

        Args:
            question: the question, in plain words.
            history: earlier user questions of the same conversation (oldest first), for follow-ups.
            theme: optional theme id to restrict retrieval to (leadership, organizational-preparation,
                recruitment-training-induction, support-development); empty or "all" for every theme.
        """
        if not isinstance(question, str):
            raise gr.Error("The question must be text.", print_exception=False)
        if history is not None and (not isinstance(history, list) or not all(isinstance(h, str) for h in history)):
            raise gr.Error("history must be a list of earlier questions (strings).", print_exception=False)
        try:
            return assistant.ask(question, history=history or [], theme=_theme(theme)).to_dict()
        except AssistantError as exc:
            raise gr.Error(exc.friendly(), print_exception=False) from None
        except Exception:
            log.exception("API /ask failed")
            raise gr.Error("Something went wrong while answering; please try again.") from None

    # ---- layout -----------------------------------------------------------------------------------
    with warnings.catch_warnings():
        # Gradio 6 reads theme/css from launch(); passing them here too keeps `build_app().launch()` styled.
        warnings.filterwarnings("ignore", message=".*moved from the Blocks constructor.*")
        demo = gr.Blocks(title=TITLE, theme=app_theme(), css=CSS, analytics_enabled=False,
                         delete_cache=(3600, 24 * 3600))
    with demo:
        state = gr.State(_new_state())
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                crisis = gr.Markdown(CRISIS_BANNER, visible=False, elem_id="crisis-banner",
                                     elem_classes=["banner", "banner-crisis"])
                abstained = gr.Markdown("", visible=False, elem_id="abstain-banner",
                                        elem_classes=["banner", "banner-abstained"])
                chatbot = gr.Chatbot(
                    label="Conversation", show_label=False, elem_id="chat", height=570, sanitize_html=True,
                    render_markdown=True, latex_delimiters=[], buttons=["copy", "copy_all"], feedback_options=None,
                    placeholder=PLACEHOLDER, examples=[{"text": q} for q in EXAMPLE_QUESTIONS],
                    allow_tags=False, autoscroll=True,
                )
                with gr.Row(equal_height=True):
                    box = gr.Textbox(label="Question", show_label=False, container=False, scale=5, lines=1,
                                     max_lines=6, placeholder="Ask a question about peer workers…",
                                     elem_id="question", autofocus=True)
                    theme = gr.Dropdown(theme_choices, value=ALL_THEMES, label="Theme filter", show_label=False,
                                        container=False, scale=2, min_width=150, elem_id="theme-filter",
                                        filterable=False)
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=70, elem_id="ask-button")
                with gr.Row(equal_height=True):
                    up = gr.Button("✓ Helpful", size="sm", scale=1, min_width=90, elem_id="thumbs-up")
                    down = gr.Button("✗ Not helpful", size="sm", scale=1, min_width=110, elem_id="thumbs-down")
                    comment = gr.Textbox(show_label=False, placeholder="Comment (optional)",
                                         scale=3, lines=1, max_length=2000, container=False,
                                         elem_id="feedback-comment")
                    download = gr.DownloadButton("Download answer (.md)", value=None, interactive=False,
                                                 size="sm", scale=2, min_width=150, elem_id="download-answer")
                    new_chat = gr.Button("New conversation", size="sm", scale=2, min_width=130,
                                         elem_id="new-conversation")
                feedback_status = gr.Markdown("", elem_id="feedback-status", elem_classes=["feedback-status"])
            with gr.Column(scale=2, min_width=320):
                gr.Markdown("### Sources for the latest answer")
                sources = gr.Markdown(SOURCES_EMPTY, elem_id="sources-panel", max_height=500, sanitize_html=True,
                                      container=True, padding=True)
                card_pick = gr.Dropdown(all_card_choices, value=None, label="Open an evidence card",
                                        elem_id="card-picker", filterable=True)
                with gr.Accordion("Card viewer", open=False, elem_id="card-accordion") as card_box:
                    card_view = gr.Markdown(CARD_EMPTY, elem_id="card-viewer", max_height=520, sanitize_html=True)
        gr.Markdown(f"<small>{FOOTER}</small>", elem_id="footer-note")

        outputs = [chatbot, box, state, sources, card_pick, crisis, abstained, download, feedback_status]
        private = {"api_visibility": "private"}
        box.submit(respond, [box, theme, state], outputs, **private)
        send.click(respond, [box, theme, state], outputs, **private)
        chatbot.example_select(respond_example, [theme, state], outputs, **private)
        card_pick.input(open_card, [card_pick], [card_view, card_box], **private)
        new_chat.click(clear, None, outputs + [card_view], **private)
        chatbot.clear(clear, None, outputs + [card_view], **private)
        up.click(thumbs_up, [comment, state], [comment, feedback_status], **private)
        down.click(thumbs_down, [comment, state], [comment, feedback_status], **private)
        gr.api(ask, api_name="ask")
    return demo


def app_theme() -> Any:
    """A calm theme in the system's own UI fonts (no web fonts, so nothing is downloaded)."""
    import gradio as gr

    system = ["-apple-system", "BlinkMacSystemFont", "Segoe UI", "Roboto", "Helvetica Neue", "Arial",
              "Liberation Sans", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Consolas", "Liberation Mono", "monospace"]
    return gr.themes.Soft(primary_hue="teal", secondary_hue="slate", neutral_hue="slate", font=system,
                          font_mono=mono)


def launch_app(demo: gr.Blocks, settings: Settings, *, port: int | None = None, host: str | None = None,
               prevent_thread_lock: bool = False, quiet: bool = False) -> tuple[Any, str, str]:
    """Launch ``demo`` locally: auth when configured, no share link, no server-side rendering, no analytics."""
    auth = None
    if settings.ui.auth_user and settings.ui.auth_password is not None:
        auth = (settings.ui.auth_user, settings.ui.auth_password.get_secret_value())
    return demo.launch(
        server_name=host or settings.ui.host, server_port=settings.ui.port if port is None else port,
        auth=auth, auth_message=f"Sign in to the {TITLE}." if auth else None,
        share=False, inbrowser=False, show_error=False, quiet=quiet, prevent_thread_lock=prevent_thread_lock,
        ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False, footer_links=["api"],
        theme=app_theme(), css=CSS,
    )


def serve(settings: Settings | None = None) -> None:
    """``peer-assist serve``: build the index if needed, warm up, launch, print the URL, block."""
    enforce_offline()
    settings = settings or get_settings()
    from assistant.chat import Assistant
    from ingest.pipeline import index_is_built, run_ingest

    if not index_is_built(settings):
        print(f"No index in {settings.index.index_dir} yet: building it from {settings.index.corpus_dir} (first run only)…",
              flush=True)
        step = {"next": 0}

        def progress(done: int, total: int) -> None:
            if total and (done >= step["next"] or done == total):
                print(f"  embedded {done}/{total} passages", flush=True)
                step["next"] = done + max(1, total // 10)

        report = run_ingest(settings, progress=progress)
        summary = [line for line in report.summary().splitlines()
                   if not line.startswith(("  added:", "  updated:", "  deleted:"))]  # no list of 50 card ids
        print("\n".join(summary), flush=True)
    print("Loading the embedding model and the passages…", flush=True)
    assistant = Assistant(settings)
    assistant.warm_up()
    demo = build_app(settings, assistant)
    _, local_url, _ = launch_app(demo, settings, prevent_thread_lock=True, quiet=True)
    login = " (login required)" if settings.ui.auth_user and settings.ui.auth_password else ""
    print(f"{TITLE} is running at {local_url}{login}", flush=True)
    print("Press Ctrl+C to stop.", flush=True)
    _stop_on_sigterm()
    try:
        demo.block_thread()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        pass
    finally:
        demo.close()
        print("Stopped.", file=sys.stderr)


def _stop_on_sigterm() -> None:
    """Let `kill`, systemd or docker stop the server as cleanly as Ctrl+C does."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread: leave the default
        pass
