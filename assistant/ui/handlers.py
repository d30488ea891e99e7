"""What the chat page does, as plain functions: each takes the page's context, the conversation's
``ChatState`` and the user's input, and returns a ``Reply`` (or, for the API, the answer contract).

No Gradio here: ``assistant.ui.app`` turns a ``Reply`` into component updates in one place.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant import evidence_map, render
from assistant.errors import AssistantError, InvalidQuestionError
from assistant.feedback import make_entry, record_feedback
from assistant.types import Answer
from assistant.ui import texts
from assistant.ui.limits import RateLimiter, client_key
from assistant.ui.state import Banner, ChatState, Message, Reply, assistant_message, user_message

if TYPE_CHECKING:  # pragma: no cover
    from assistant.chat import Assistant
    from assistant.settings import Settings
    from ingest.types import Card

log = logging.getLogger(__name__)

#: How much of a refused (over-long) question is echoed back in the chat.
PREVIEW_CHARS = 300
#: How many answer files the download folder keeps (Gradio serves its own copies of them).
KEEP_DOWNLOADS = 500


class RequestError(Exception):
    """A request to ``/ask`` that cannot be answered; the message is the sentence the caller sees.

    ``status`` is the HTTP status ``POST /api/ask`` answers with (400 bad input, 429 over the rate
    limit, 503 the assistant cannot answer now, 500 anything else); ``retry_after_s`` goes into its
    ``Retry-After`` header when set."""

    def __init__(self, message: str, status: int = 400, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class PageContext:
    """What every handler of one page shares: the assistant, the settings, the cards, a download folder."""

    assistant: Assistant
    settings: Settings
    theme_titles: dict[str, str]
    download_dir: Path
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(0, 1))

    @classmethod
    def create(cls, settings: Settings, assistant: Assistant, download_dir: Path | None = None) -> PageContext:
        corpus = assistant.corpus
        if download_dir is None:
            download_dir = Path(tempfile.mkdtemp(prefix="peer-assist-answers-"))
        download_dir.mkdir(parents=True, exist_ok=True)
        ui = settings.ui
        return cls(assistant=assistant, settings=settings, theme_titles={t.id: t.title for t in corpus.taxonomy.themes.values()}, download_dir=download_dir,
                   limiter=RateLimiter(ui.rate_limit_per_minute, ui.rate_limit_burst))

    @property
    def cards(self) -> dict[str, Card]:
        """The cards of the corpus the assistant answers from now (a live reindex changes them)."""
        return {c.id: c for c in self.assistant.corpus.cards}

    def too_many(self, request: Any) -> str | None:
        """The "too many requests" sentence when the client behind ``request`` is over its rate, else None."""
        if self.limiter.allow(client_key(request, self.settings.ui.trust_proxy_headers)):
            return None
        ui = self.settings.ui
        return texts.TOO_MANY.format(seconds=max(1.0, self.limiter.retry_after_s()), burst=ui.rate_limit_burst,
                                     per_minute=ui.rate_limit_per_minute)

    @property
    def max_chars(self) -> int:
        return self.settings.scope.max_question_chars

    def theme_choices(self) -> list[tuple[str, str]]:
        return [("All themes", texts.ALL_THEMES)] + [(title, tid) for tid, title in self.theme_titles.items()]

    def card_choices(self, answer: Answer | None = None) -> list[tuple[str, str]]:
        """Every card for the picker, the cards the answer cites first (labelled with their numbers)."""
        numbers: dict[str, list[int]] = {}
        for c in answer.citations if answer else ():
            numbers.setdefault(c.card_id, []).append(c.n)
        label = render.card_choice_label
        cards = self.cards
        cited = [(label(cards[cid], ns), cid) for cid, ns in numbers.items() if cid in cards]
        rest = [(label(card), card.id) for card in sorted(cards.values(), key=lambda c: c.id)
                if card.id not in numbers]
        return cited + rest


def theme_filter(value: str | None) -> str | None:
    """The theme dropdown's value as a retrieval filter: "all" (or nothing) means no filter."""
    return None if value in (None, "", texts.ALL_THEMES) else value


def example_text(value: Any) -> str:
    """The question of a clicked example (Gradio passes ``{"text": ...}``)."""
    return value.get("text", "") if isinstance(value, dict) else str(value or "")


# ------------------------------------------------------------------------------------------------
# Asking


def _shown(message: str, ctx: PageContext) -> str:
    """The user's message as the chat shows it: escaped, and only a preview when it is too long."""
    return render.escape_user_text(message if len(message) <= ctx.max_chars else message[:PREVIEW_CHARS] + " …")


def rate_limited(ctx: PageContext, state: ChatState, message: str, request: Any) -> Reply | None:
    """The chat's reply when the client is over its rate limit (the question shown, then why it is not
    answered); None when it may ask."""
    if not isinstance(message, str) or not message.strip():
        return None
    refused = ctx.too_many(request)
    if refused is None:
        return None
    state = state.said(user_message(_shown(message, ctx)), assistant_message(refused))
    return Reply(messages=list(state.messages), question_box="", state=state, banner=None, feedback_status="")


def echo(ctx: PageContext, state: ChatState, message: str) -> Reply | None:
    """What the page shows at once, while the answer is searched for: the question and a "searching"
    note, the question box cleared, the banners hidden. None when ``ask`` answers at once (an empty or
    an over-long message)."""
    if not isinstance(message, str) or not message.strip() or len(message) > ctx.max_chars:
        return None
    messages = [*state.messages, user_message(_shown(message, ctx)), assistant_message(texts.SEARCHING)]
    return Reply(messages=messages, question_box="", banner=None, feedback_status="")


def ask(ctx: PageContext, state: ChatState, message: str, theme: str | None) -> Reply:
    """Answer ``message`` in the conversation ``state`` (earlier questions are its context), with the
    sources panel, the card picker, the banner and the download for the answer."""
    reply = Reply()
    for reply in ask_stream(ctx, state, message, theme):
        pass
    return reply


def ask_stream(ctx: PageContext, state: ChatState, message: str, theme: str | None) -> Iterator[Reply]:
    """``ask``, streamed: while a streaming composer (the LLM one) writes, one Reply per verified
    sentence with the answer so far; then the whole answer's Reply (which only adds to what was shown)."""
    if not isinstance(message, str) or not message.strip():
        yield Reply()
        return
    said = user_message(_shown(message, ctx))
    if len(message) > ctx.max_chars:
        state = state.said(said, assistant_message(texts.TOO_LONG.format(length=len(message), limit=ctx.max_chars)))
        yield Reply(messages=list(state.messages), question_box="", state=state, banner=None, feedback_status="")
        return
    so_far = ""
    answer: Answer | None = None
    history, wanted = list(state.questions), theme_filter(theme)
    try:
        stream = getattr(ctx.assistant, "ask_stream", None)  # any object with ``ask`` will do, streaming or not
        events = stream(message, history=history, theme=wanted) if stream else [
            ctx.assistant.ask(message, history=history, theme=wanted)]
        for event in events:
            if isinstance(event, Answer):
                answer = event
            else:
                so_far += event
                yield Reply(messages=[*state.messages, said, assistant_message(so_far)])
    except AssistantError as exc:
        yield _failed(state.said(said, assistant_message(texts.SORRY + render.escape_user_text(exc.friendly()))))
        return
    except Exception:  # never show a traceback to the user
        log.exception("answering %r failed", message[:200])
        yield _failed(state.said(said, assistant_message(texts.FAILED)))
        return
    assert answer is not None
    yield _answered(ctx, state, message, said, answer)


def _answered(ctx: PageContext, state: ChatState, message: str, said: Message, answer: Answer) -> Reply:
    state = state.answered(message, answer, said, assistant_message(render.chat_markdown(answer)))
    banner = (Banner("crisis", texts.CRISIS_BANNER) if answer.status == "crisis"
              else Banner("abstained", render.abstain_banner(answer)) if answer.status == "abstained" else None)
    sources = render.sources_markdown(answer, ctx.theme_titles)
    on_map = render.map_context_markdown(map_context(ctx, answer))
    if on_map:  # under the sources' summary line, above the citations: seen without scrolling
        head, _, rest = sources.partition("\n\n")
        sources = "\n\n".join(part for part in (head, on_map, rest) if part)
    return Reply(messages=list(state.messages), state=state, sources=sources,
                 card_choices=ctx.card_choices(answer), banner=banner, download=save_download(ctx, answer),
                 feedback_status="")


def map_context(ctx: PageContext, answer: Answer) -> list[str]:
    """Where an answered question's strategies sit on the evidence map of the assistant's corpus."""
    if answer.status != "answered" or not answer.strategies:
        return []
    try:
        corpus = ctx.assistant.corpus
        return evidence_map.answer_context(corpus.cards, corpus.taxonomy,
                                           [(s.theme, s.title) for s in answer.strategies])
    except Exception:  # the map is extra: never lose an answer over it
        log.exception("evidence-map context failed")
        return []


def _failed(state: ChatState) -> Reply:
    """No answer: the apology is shown; the last answer (feedback, download, sources) stays as it was."""
    return Reply(messages=list(state.messages), state=state, banner=None, feedback_status="")


def save_download(ctx: PageContext, answer: Answer) -> Path:
    """Write the answer as a Markdown file for the download button; old files are pruned."""
    path = ctx.download_dir / f"{time.time_ns()}-{slug(answer.question)}.md"
    path.write_text(render.answer_to_markdown(answer), encoding="utf-8")
    prune(ctx.download_dir)
    return path


def slug(text: str, limit: int = 40) -> str:
    return (re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")) or "answer"


def prune(folder: Path, keep: int = KEEP_DOWNLOADS) -> None:
    """Keep only the newest ``keep`` answer files."""
    files = sorted(folder.glob("*.md"))
    for old in files[: max(0, len(files) - keep)]:
        old.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------
# Cards, a new conversation, feedback


def open_card(ctx: PageContext, card_id: str | None) -> Reply:
    """Show the chosen card in full in the card viewer (nothing changes for an unknown id)."""
    card = ctx.cards.get(card_id or "")
    if card is None:
        return Reply()
    return Reply(card_view=render.card_markdown(card, ctx.theme_titles), card_open=True)


def clear(ctx: PageContext) -> Reply:
    """A new conversation: empty chat and state, every panel back to its first-visit text."""
    return Reply(state=ChatState(), messages=[], question_box="", sources=texts.SOURCES_EMPTY,
                 card_choices=ctx.card_choices(), banner=None, download=None, feedback_status="",
                 card_view=texts.CARD_EMPTY)


def feedback(ctx: PageContext, state: ChatState, rating: str, comment: str | None, request: Any = None) -> Reply:
    """Save a rating (and comment) of the latest answer to the feedback log (bounded in size; refused
    when the client is over its rate limit)."""
    refused = ctx.too_many(request)
    if refused:
        return Reply(feedback_status=f"_{refused}_")
    answer = state.last
    if answer is None:
        return Reply(feedback_status=texts.FEEDBACK_FIRST)
    entry = make_entry(question=answer.question, answer=answer.answer, status=answer.status,
                       citations=answer.to_dict()["citations"], rating=rating, comment=comment or "",
                       settings_hash=ctx.settings.settings_hash())
    try:
        record_feedback(ctx.settings.feedback_file, entry, max_bytes=ctx.settings.ui.max_feedback_bytes)
    except AssistantError as exc:
        log.warning("feedback not saved: %s", exc)
        return Reply(feedback_status=texts.FEEDBACK_FAILED)
    return Reply(comment="", feedback_status=texts.FEEDBACK_SAVED)


# ------------------------------------------------------------------------------------------------
# The evidence map (computed from the assistant's corpus on every event, so a reload changes it)


def current_map(ctx: PageContext, by: str | None) -> evidence_map.EvidenceMap:
    """The map of the corpus the assistant has loaded now, with ``by`` columns (default: kind)."""
    corpus = ctx.assistant.corpus
    columns: evidence_map.MapBy = by if by in evidence_map.BY_CHOICES else "kind"
    return evidence_map.build_map(corpus.cards, corpus.taxonomy, columns)


def cell_value(row_key: str, column: str) -> str:
    return f"{row_key}|{column}"


def cell_choices(m: evidence_map.EvidenceMap) -> list[tuple[str, str]]:
    """Every cell for the cell picker: ``Strategy × column (n)``, row by row."""
    return [(f"{r.label} × {c} ({m.count(r.key, c)})", cell_value(r.key, c)) for r in m.rows for c in m.columns]


def map_view(ctx: PageContext, by: str | None) -> Reply:
    """The map with ``by`` columns; the cell picker offers its cells, the card list is emptied."""
    m = current_map(ctx, by)
    return Reply(map_html=evidence_map.to_html_table(m), map_cells=cell_choices(m), map_cards=texts.MAP_CELL_EMPTY,
                 map_card_choices=[], map_question="")


def map_cell(ctx: PageContext, by: str | None, cell: str | None) -> Reply:
    """The chosen cell's cards (title, year, country, design, inclusion) and the question about its strategy."""
    m = current_map(ctx, by)
    row_key, _, column = (cell or "").rpartition("|")
    try:
        row = m.row(row_key)
    except KeyError:
        return Reply(map_cards=texts.MAP_CELL_EMPTY, map_card_choices=[], map_question="")
    cards = m.cell_cards(row_key, column)
    heading = f"{row.label} × {column}: {len(cards)} card(s)"
    text = render.map_cell_markdown(cards, heading) if cards else f"**{render.escape_html(heading)}**\n\n{texts.MAP_GAP}"
    return Reply(map_html=evidence_map.to_html_table(m, selected=(row_key, column)), map_cards=text,
                 map_card_choices=[(render.card_choice_label(c), c.id) for c in cards],
                 map_question=map_question(ctx, cell))


def map_question(ctx: PageContext, cell: str | None) -> str:
    """The chat question about a cell's strategy ("What does the evidence say about …?"); "" for no cell."""
    row_key = (cell or "").rpartition("|")[0]
    try:
        row = current_map(ctx, "kind").row(row_key)
    except KeyError:
        return ""
    title = row.title if row.strategy else row.theme_title
    if title[:1].isupper() and title[1:2].islower():
        title = title[0].lower() + title[1:]
    return texts.MAP_ASK.format(title=title)


def map_open_card(ctx: PageContext, card_id: str | None) -> Reply:
    """Open a card of the map in the card viewer (on the chat tab)."""
    card = {c.id: c for c in ctx.assistant.corpus.cards}.get(card_id or "")
    if card is None:
        return Reply()
    return Reply(card_view=render.card_markdown(card, ctx.theme_titles), card_open=True, tab="chat")


# ------------------------------------------------------------------------------------------------
# The API


def api_ask(ctx: PageContext, question: Any, history: Any = None, theme: str | None = None,
            request: Any = None) -> dict[str, Any]:
    """``/ask``: the answer contract (DESIGN.md) as a dict; RequestError with a friendly sentence otherwise
    (also when the client is over its rate limit: no answer is computed then)."""
    api_check(ctx, question, history, request)
    return api_answer(ctx, question, history, theme)


def api_check(ctx: PageContext, question: Any, history: Any = None, request: Any = None) -> None:
    """What ``/ask`` refuses before any answer is computed: a client over its rate limit (429), a question
    that is not text, empty or too long (400: the assistant's own check and sentence), a ``history``
    that is not a list of strings (400)."""
    refused = ctx.too_many(request)
    if refused:
        raise RequestError(refused, 429, max(1.0, ctx.limiter.retry_after_s()))
    if not isinstance(question, str):
        raise RequestError("The question must be text.")
    if history is not None and (not isinstance(history, list) or not all(isinstance(h, str) for h in history)):
        raise RequestError("history must be a list of earlier questions (strings).")
    if len(question) > ctx.max_chars:
        raise RequestError(InvalidQuestionError(
            f"The question is {len(question):,} characters long; the limit is {ctx.max_chars:,}.",
            "Ask one short question at a time; paste no documents.").friendly())
    if not question.strip():
        raise RequestError(InvalidQuestionError("The question is empty.").friendly())
    clean = getattr(ctx.assistant, "clean_question", None)  # the assistant's own check (cheap: no model)
    if callable(clean):
        try:
            clean(question)
        except InvalidQuestionError as exc:
            raise RequestError(exc.friendly()) from None


def api_answer(ctx: PageContext, question: str, history: list[str] | None = None,
               theme: str | None = None) -> dict[str, Any]:
    """The answer contract for a checked request (``api_check``); typed errors become RequestError."""
    try:
        return ctx.assistant.ask(question, history=history or [], theme=theme_filter(theme)).to_dict()
    except InvalidQuestionError as exc:  # an unknown theme, say
        raise RequestError(exc.friendly()) from None
    except AssistantError as exc:  # the index or the Chroma server is not available
        raise RequestError(exc.friendly(), 503, 5.0) from None
    except Exception:
        log.exception("API /ask failed")
        raise RequestError(texts.API_FAILED, 500) from None
