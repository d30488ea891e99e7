"""The chat page's layout and its wiring to the handlers, and the named API endpoint ``/ask``.

``build_app(settings, assistant)`` builds the page inside the function (importing this module does not
import Gradio). What the page does lives in ``assistant.ui.handlers`` as plain functions returning a
``Reply``; ``to_gradio`` is the one place a ``Reply`` becomes component updates.

User text is never rendered as active HTML: handlers escape user messages (HTML and Markdown) before
they reach the Chatbot, and every component renders with ``sanitize_html=True``.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assistant.evidence_map import MAP_CSS, to_html_table
from assistant.settings import Settings, enforce_offline, get_settings
from assistant.ui import handlers, texts
from assistant.ui.handlers import PageContext
from assistant.ui.state import ChatState, Reply

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

    from assistant.chat import Assistant

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
#evidence-map { overflow-x: auto; }
#map-cards { font-size: 0.9rem; }
#evidence-map td[data-row] { cursor: pointer; }
#map-cards li { margin-bottom: 6px; }
""" + MAP_CSS

#: Clicking a cell of the map table picks that cell (a custom "cellclick" event with the cell's value).
MAP_CLICK_JS = ("element.addEventListener('click', (e) => { const td = e.target.closest('td[data-row]'); "
                "if (td) trigger('cellclick', {cell: td.dataset.row + '|' + td.dataset.col}); });")

#: The concurrency group of every event that computes an answer (the chat and the /ask API).
ANSWERS = "answers"

#: The Reply fields each kind of event may change (its Gradio outputs, in ``Page.outputs``).
ANSWER_FIELDS = ("messages", "question_box", "state", "sources", "card_choices", "banner", "download",
                 "feedback_status")
CLEAR_FIELDS = ANSWER_FIELDS + ("card_view",)
CARD_FIELDS = ("card_view", "card_open")
FEEDBACK_FIELDS = ("comment", "feedback_status")
MAP_FIELDS = ("map_html", "map_cells", "map_cards", "map_card_choices", "map_question")
MAP_CELL_FIELDS = ("map_html", "map_cards", "map_card_choices", "map_question")
MAP_CARD_FIELDS = ("card_view", "card_open", "tab")


@dataclass(frozen=True)
class Page:
    """The page's components that handlers read or change."""

    state: Any
    chatbot: Any
    box: Any
    theme: Any
    send: Any
    crisis: Any
    abstained: Any
    up: Any
    down: Any
    comment: Any
    download: Any
    new_chat: Any
    feedback_status: Any
    sources: Any
    card_pick: Any
    card_box: Any
    card_view: Any
    tabs: Any
    map_by: Any
    map_html: Any
    map_cell: Any
    map_cards: Any
    map_card_pick: Any
    map_ask: Any

    def outputs(self, fields: tuple[str, ...]) -> list[Any]:
        """The components behind Reply fields (a banner is two components: crisis and abstained)."""
        return [c for f in fields for c in ((self.crisis, self.abstained) if f == "banner" else (self.component(f),))]

    def component(self, field: str) -> Any:
        """The component behind one Reply field (other than ``banner``)."""
        return getattr(self, _COMPONENT_OF.get(field, field))


#: Reply fields whose component has another name on the page.
_COMPONENT_OF = {"messages": "chatbot", "question_box": "box", "card_choices": "card_pick", "card_open": "card_box",
                 "map_cells": "map_cell", "map_card_choices": "map_card_pick", "map_question": "map_ask",
                 "tab": "tabs"}


def to_gradio(reply: Reply, page: Page) -> dict[Any, Any]:
    """The one place a Reply becomes Gradio updates: one entry per field that is not KEEP."""
    import gradio as gr

    out: dict[Any, Any] = {}
    for field in reply.changed:
        value = getattr(reply, field)
        if field == "banner":  # the banner of its kind shows its text; the other one hides
            for kind, component in (("crisis", page.crisis), ("abstained", page.abstained)):
                shown = value is not None and value.kind == kind
                out[component] = gr.update(value=value.text, visible=True) if shown else gr.update(visible=False)
        elif field in ("card_choices", "map_cells", "map_card_choices"):
            out[page.component(field)] = gr.update(choices=value, value=None)
        elif field == "map_question":
            out[page.map_ask] = gr.update(value=f"Ask the chat: {value}" if value else texts.MAP_ASK_IDLE,
                                          interactive=bool(value))
        elif field == "tab":
            out[page.tabs] = gr.update(selected=value)
        elif field == "download":
            out[page.download] = gr.update(value=str(value) if value else None, interactive=value is not None)
        elif field == "card_open":
            out[page.card_box] = gr.update(open=value)
        else:  # state, messages, question_box, sources, feedback_status, comment, card_view: the value itself
            out[page.component(field)] = value
    return out


def build_app(settings: Settings | None = None, assistant: Assistant | None = None) -> gr.Blocks:
    """Build the chat page and the ``/ask`` API endpoint (nothing happens at import time)."""
    enforce_offline()
    import gradio as gr

    from assistant.chat import Assistant

    settings = settings or get_settings()
    ctx = PageContext.create(settings, assistant or Assistant(settings))
    with warnings.catch_warnings():
        # Gradio 6 reads theme/css from launch(); passing them here too keeps `build_app().launch()` styled.
        warnings.filterwarnings("ignore", message=".*moved from the Blocks constructor.*")
        demo = gr.Blocks(title=texts.TITLE, theme=app_theme(), css=CSS, analytics_enabled=False,
                         delete_cache=(3600, 24 * 3600))
    with demo:
        page = _layout(ctx)
        _wire(ctx, page)

        def map_on_load(by: str) -> dict[Any, Any]:
            return to_gradio(handlers.map_view(ctx, by), page)

        # every page load draws the map of the corpus the assistant has now (a reload changes it)
        demo.load(map_on_load, [page.map_by], page.outputs(MAP_FIELDS), api_visibility="private")
    configure_queue(demo, settings)
    _CONTEXTS[demo] = ctx
    return demo


#: The page context of every app ``build_app`` made: ``launch_app`` serves ``POST /api/ask`` over it.
_CONTEXTS: weakref.WeakKeyDictionary[Any, PageContext] = weakref.WeakKeyDictionary()


def page_context(demo: Any) -> PageContext | None:
    """The context (assistant, settings, rate limiter) of an app from ``build_app``; None for another app."""
    return _CONTEXTS.get(demo)


def configure_queue(demo: gr.Blocks, settings: Settings) -> None:
    """A bounded queue: at most ``queue_max_size`` requests wait; past that a request is refused at once
    (HTTP 503, which gradio_client reports as "Queue is full! Please try again.") with our "busy,
    try again" sentence as the detail, never left hanging."""
    ui = settings.ui
    demo.queue(max_size=ui.queue_max_size, default_concurrency_limit=ui.concurrency_limit,
               status_update_rate=ui.queue_status_every_s or "auto")
    queue = demo._queue
    push = queue.push

    async def bounded_push(*args: Any, **kwargs: Any) -> Any:
        ok, detail, state = await push(*args, **kwargs)
        return (ok, texts.BUSY, state) if state == "queue_full" else (ok, detail, state)

    queue.push = bounded_push  # type: ignore[method-assign]


def _layout(ctx: PageContext) -> Page:
    """The page: chat, question box and feedback row on the left; sources and card viewer on the right."""
    import gradio as gr

    state = gr.State(ChatState())
    gr.Markdown(texts.INTRO, elem_id="intro")
    with gr.Tabs(selected="chat", elem_id="tabs") as tabs:
        with gr.Tab("Chat", id="chat", elem_id="chat-tab"):
            chat = _chat_layout(ctx)
        with gr.Tab("Evidence map", id="map", elem_id="map-tab"):
            first = handlers.current_map(ctx, "kind")
            gr.Markdown(texts.MAP_INTRO, elem_id="map-intro")
            map_by = gr.Radio(list(texts.MAP_BY_CHOICES), value="kind", label="Columns", elem_id="map-by")
            with gr.Row(equal_height=False):
                with gr.Column(scale=7, min_width=560):
                    map_html = gr.HTML(to_html_table(first), elem_id="evidence-map", padding=False,
                                       js_on_load=MAP_CLICK_JS)
                with gr.Column(scale=3, min_width=320):
                    map_cell = gr.Dropdown(handlers.cell_choices(first), value=None, label="Choose a cell: strategy × column (cards)",
                                           elem_id="map-cell", filterable=True)
                    map_cards = gr.Markdown(texts.MAP_CELL_EMPTY, elem_id="map-cards", sanitize_html=True,
                                            max_height=520)
                    map_card_pick = gr.Dropdown([], value=None, label="Open one of these cards in the card viewer",
                                                elem_id="map-card-picker", filterable=True)
                    map_ask = gr.Button(texts.MAP_ASK_IDLE, interactive=False, elem_id="map-ask", size="sm")
    gr.Markdown(f"<small>{texts.FOOTER}</small>", elem_id="footer-note")
    return Page(state=state, tabs=tabs, map_by=map_by, map_html=map_html, map_cell=map_cell, map_cards=map_cards,
                map_card_pick=map_card_pick, map_ask=map_ask, **chat)


def _chat_layout(ctx: PageContext) -> dict[str, Any]:
    """The chat tab's components, by Page field."""
    import gradio as gr

    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            crisis = gr.Markdown(texts.CRISIS_BANNER, visible=False, elem_id="crisis-banner",
                                 elem_classes=["banner", "banner-crisis"])
            abstained = gr.Markdown("", visible=False, elem_id="abstain-banner",
                                    elem_classes=["banner", "banner-abstained"])
            chatbot = gr.Chatbot(
                label="Conversation", show_label=False, elem_id="chat", height=570, sanitize_html=True,
                render_markdown=True, latex_delimiters=[], buttons=["copy", "copy_all"], feedback_options=None,
                placeholder=texts.PLACEHOLDER, examples=[{"text": q} for q in texts.EXAMPLE_QUESTIONS],
                allow_tags=False, autoscroll=True,
            )
            with gr.Row(equal_height=True):
                box = gr.Textbox(label="Question", show_label=False, container=False, scale=5, lines=1,
                                 max_lines=6, placeholder="Ask a question about peer workers…",
                                 elem_id="question", autofocus=True)
                theme = gr.Dropdown(ctx.theme_choices(), value=texts.ALL_THEMES, label="Theme filter",
                                    show_label=False, container=False, scale=2, min_width=150,
                                    elem_id="theme-filter", filterable=False)
                send = gr.Button("Ask", variant="primary", scale=1, min_width=70, elem_id="ask-button")
            with gr.Row(equal_height=True):
                up = gr.Button("✓ Helpful", size="sm", scale=1, min_width=90, elem_id="thumbs-up")
                down = gr.Button("✗ Not helpful", size="sm", scale=1, min_width=110, elem_id="thumbs-down")
                comment = gr.Textbox(show_label=False, placeholder="Comment (optional)", scale=3, lines=1,
                                     max_length=2000, container=False, elem_id="feedback-comment")
                download = gr.DownloadButton("Download answer (.md)", value=None, interactive=False, size="sm",
                                             scale=2, min_width=150, elem_id="download-answer")
                new_chat = gr.Button("New conversation", size="sm", scale=2, min_width=130,
                                     elem_id="new-conversation")
            feedback_status = gr.Markdown("", elem_id="feedback-status", elem_classes=["feedback-status"])
        with gr.Column(scale=2, min_width=320):
            gr.Markdown("### Sources for the latest answer")
            sources = gr.Markdown(texts.SOURCES_EMPTY, elem_id="sources-panel", max_height=500, sanitize_html=True,
                                  container=True, padding=True)
            card_pick = gr.Dropdown(ctx.card_choices(), value=None, label="Open an evidence card",
                                    elem_id="card-picker", filterable=True)
            with gr.Accordion("Card viewer", open=False, elem_id="card-accordion") as card_box:
                card_view = gr.Markdown(texts.CARD_EMPTY, elem_id="card-viewer", max_height=520, sanitize_html=True)
    return {"chatbot": chatbot, "box": box, "theme": theme, "send": send, "crisis": crisis, "abstained": abstained,
            "up": up, "down": down, "comment": comment, "download": download, "new_chat": new_chat,
            "feedback_status": feedback_status, "sources": sources, "card_pick": card_pick, "card_box": card_box,
            "card_view": card_view}


def _wire(ctx: PageContext, page: Page) -> None:
    """Events → handlers → ``to_gradio``. Only ``/ask`` is public; every UI event is private."""
    import gradio as gr

    def on_ask(message: str, theme: str, state: ChatState, request: gr.Request) -> Iterator[dict[Any, Any]]:
        """The question and a "searching" note, then the answer (sentence by sentence from the LLM composer),
        unless the client is over its rate limit."""
        refused = handlers.rate_limited(ctx, state, message, request)
        if refused is not None:
            yield to_gradio(refused, page)
            return
        interim = handlers.echo(ctx, state, message)
        if interim is not None:
            yield to_gradio(interim, page)
        for reply in handlers.ask_stream(ctx, state, message, theme):
            yield to_gradio(reply, page)

    def on_example(evt: gr.SelectData, theme: str, state: ChatState, request: gr.Request) -> Iterator[dict[Any, Any]]:
        yield from on_ask(handlers.example_text(evt.value), theme, state, request)

    # Annotations are strings here (``from __future__``): give Gradio the real classes so it injects them.
    on_example.__annotations__["evt"] = gr.SelectData

    def open_card(card_id: str | None) -> dict[Any, Any]:
        return to_gradio(handlers.open_card(ctx, card_id), page)

    def clear() -> dict[Any, Any]:
        return to_gradio(handlers.clear(ctx), page)

    def map_view(by: str) -> dict[Any, Any]:
        return to_gradio(handlers.map_view(ctx, by), page)

    def map_cell(by: str, cell: str | None) -> dict[Any, Any]:
        return to_gradio(handlers.map_cell(ctx, by, cell), page)

    def map_cell_click(by: str, evt: gr.EventData) -> dict[Any, Any]:
        """A click on a table cell: the cell picker shows it, and its cards are listed."""
        cell = evt._data.get("cell") if isinstance(evt._data, dict) else None
        out = to_gradio(handlers.map_cell(ctx, by, cell), page)
        out[page.map_cell] = gr.update(value=cell)
        return out

    map_cell_click.__annotations__["evt"] = gr.EventData

    def map_open_card(card_id: str | None) -> dict[Any, Any]:
        return to_gradio(handlers.map_open_card(ctx, card_id), page)

    def map_ask(cell: str | None, theme: str, state: ChatState, request: gr.Request) -> Iterator[dict[Any, Any]]:
        """To the chat tab, then ask the cell's strategy question there."""
        question = handlers.map_question(ctx, cell)
        if not question:
            return
        yield to_gradio(Reply(tab="chat"), page)
        yield from on_ask(question, theme, state, request)

    def thumbs_up(comment: str, state: ChatState, request: gr.Request) -> dict[Any, Any]:
        return to_gradio(handlers.feedback(ctx, state, "up", comment, request), page)

    def thumbs_down(comment: str, state: ChatState, request: gr.Request) -> dict[Any, Any]:
        return to_gradio(handlers.feedback(ctx, state, "down", comment, request), page)

    for fn in (on_ask, on_example, map_ask, thumbs_up, thumbs_down):
        fn.__annotations__["request"] = gr.Request

    private: dict[str, Any] = {"api_visibility": "private"}
    # Answers (chat and /ask) share one pool of ``concurrency_limit`` workers; the rest wait in the queue.
    answering: dict[str, Any] = {**private, "concurrency_id": ANSWERS, "concurrency_limit": ctx.settings.ui.concurrency_limit}
    asking = ([page.box, page.theme, page.state], page.outputs(ANSWER_FIELDS))
    page.box.submit(on_ask, *asking, **answering)
    page.send.click(on_ask, *asking, **answering)
    page.chatbot.example_select(on_example, [page.theme, page.state], page.outputs(ANSWER_FIELDS), **answering)
    page.card_pick.input(open_card, [page.card_pick], page.outputs(CARD_FIELDS), **private)
    page.new_chat.click(clear, None, page.outputs(CLEAR_FIELDS), **private)
    page.chatbot.clear(clear, None, page.outputs(CLEAR_FIELDS), **private)
    page.up.click(thumbs_up, [page.comment, page.state], page.outputs(FEEDBACK_FIELDS), **private)
    page.down.click(thumbs_down, [page.comment, page.state], page.outputs(FEEDBACK_FIELDS), **private)
    page.map_by.change(map_view, [page.map_by], page.outputs(MAP_FIELDS), **private)
    page.map_cell.input(map_cell, [page.map_by, page.map_cell], page.outputs(MAP_CELL_FIELDS), **private)
    page.map_html.cellclick(map_cell_click, [page.map_by], page.outputs(MAP_CELL_FIELDS + ("map_cells",)), **private)
    page.map_card_pick.input(map_open_card, [page.map_card_pick], page.outputs(MAP_CARD_FIELDS), **private)
    page.map_ask.click(map_ask, [page.map_cell, page.theme, page.state], page.outputs(ANSWER_FIELDS + ("tab",)),
                       **answering)
    gr.api(api_endpoint(ctx), api_name="ask", concurrency_id=ANSWERS,
           concurrency_limit=ctx.settings.ui.concurrency_limit)


def api_endpoint(ctx: PageContext) -> Callable[..., dict[str, Any]]:
    """The public ``/ask`` function: Gradio takes its parameters and docstring for the API page."""
    import gradio as gr

    def ask(question: str, history: list[str] | None = None, theme: str | None = None,
            request: gr.Request | None = None) -> dict[str, Any]:
        """Answer one question with the evidence base; returns the answer contract (DESIGN.md) as JSON.

        Args:
            question: the question, in plain words.
            history: earlier user questions of the same conversation (oldest first), for follow-ups.
            theme: optional theme id to restrict retrieval to (leadership, organizational-preparation,
                recruitment-training-induction, support-development); empty or "all" for every theme.
        """
        try:
            return handlers.api_ask(ctx, question, history, theme, request)
        except handlers.RequestError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    ask.__annotations__["request"] = gr.Request | None
    return ask


def app_theme() -> Any:
    """A calm theme in the system's own UI fonts (no web fonts, so nothing is downloaded)."""
    import gradio as gr

    system = ["-apple-system", "BlinkMacSystemFont", "Segoe UI", "Roboto", "Helvetica Neue", "Arial",
              "Liberation Sans", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Consolas", "Liberation Mono", "monospace"]
    return gr.themes.Soft(primary_hue="teal", secondary_hue="slate", neutral_hue="slate", font=system,
                          font_mono=mono)
