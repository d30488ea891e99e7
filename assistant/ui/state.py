"""The chat page's data: what one conversation remembers (``ChatState``) and what a handler asks the
page to show (``Reply``). Plain dataclasses, no Gradio: the handlers and their tests use them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import Enum
from pathlib import Path
from typing import Literal, TypedDict

from assistant.types import Answer


class Message(TypedDict):
    """One chat message, as the Chatbot shows it (``content`` is Markdown, user text already escaped)."""

    role: Literal["user", "assistant"]
    content: str


def user_message(content: str) -> Message:
    return {"role": "user", "content": content}


def assistant_message(content: str) -> Message:
    return {"role": "assistant", "content": content}


@dataclass(frozen=True)
class ChatState:
    """One conversation: the messages shown, the questions that are context for follow-ups, the last answer."""

    messages: tuple[Message, ...] = ()
    questions: tuple[str, ...] = ()  # earlier user questions, oldest first (crisis turns left out)
    last: Answer | None = None  # what feedback and the download are about

    def said(self, *messages: Message) -> ChatState:
        """This conversation with ``messages`` added (questions and the last answer unchanged)."""
        return replace(self, messages=self.messages + messages)

    def answered(self, question: str, answer: Answer, *messages: Message) -> ChatState:
        """After an answer: it becomes the last answer and, unless it was a crisis reply, ``question``
        becomes context for later follow-ups."""
        questions = self.questions + ((question,) if answer.status != "crisis" else ())
        return ChatState(messages=self.messages + messages, questions=questions, last=answer)


class Keep(Enum):
    """A ``Reply`` field left as ``KEEP`` leaves its part of the page as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class Banner:
    """The banner above the chat: a crisis reply or an abstention."""

    kind: Literal["crisis", "abstained"]
    text: str


@dataclass(frozen=True)
class Reply:
    """What a handler asks the page to show; every field left as ``KEEP`` stays as it is."""

    state: ChatState | Keep = KEEP
    messages: list[Message] | Keep = KEEP  # the whole conversation shown in the chat
    question_box: str | Keep = KEEP  # "" clears the question box
    sources: str | Keep = KEEP  # Markdown of the sources panel
    card_choices: list[tuple[str, str]] | Keep = KEEP  # the card picker's (label, card id) options; unselects
    banner: Banner | None | Keep = KEEP  # None hides both banners
    download: Path | None | Keep = KEEP  # the answer as a Markdown file; None disables the button
    feedback_status: str | Keep = KEEP
    comment: str | Keep = KEEP  # the feedback comment box
    card_view: str | Keep = KEEP  # Markdown of the card viewer
    card_open: bool | Keep = KEEP  # whether the card viewer is open
    map_html: str | Keep = KEEP  # the evidence map's HTML table
    map_cells: list[tuple[str, str]] | Keep = KEEP  # the cell picker's (label, "row key|column") options; unselects
    map_cards: str | Keep = KEEP  # Markdown list of the chosen cell's cards
    map_card_choices: list[tuple[str, str]] | Keep = KEEP  # the chosen cell's cards to open; unselects
    map_question: str | Keep = KEEP  # the question the "ask the chat" button asks ("" disables it)
    tab: str | Keep = KEEP  # the tab to show: "chat" or "map"

    @property
    def changed(self) -> tuple[str, ...]:
        """The names of the fields that change something on the page."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name) is not KEEP)
