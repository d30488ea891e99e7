"""Our own domain types of the lower layer (cards, passages, embedders).

LangChain and Chroma types never leave the adapter modules; the answer types live in ``assistant.types``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

CardKind = Literal["review", "study", "related-review", "related-study", "guidance"]


def card_link(doi: str | None, url: str | None) -> str | None:
    """The one way a card is linked: its DOI through doi.org, else its URL."""
    return f"https://doi.org/{doi}" if doi else (url or None)


#: The section name of a curated question passage: a key to the section it answers, never quoted.
QUESTION_SECTION = "question"


@dataclass(frozen=True)
class Section:
    """One section of a card body: Summary, a strategy, or Caveats."""

    name: str  # "summary" | "strategy" | "caveats" | other lower-case heading
    heading: str  # the heading text as written
    text: str  # the body text of the section, stripped
    theme: str | None = None  # strategy sections only
    strategy: str | None = None  # strategy id within the theme
    title: str | None = None  # strategy title (heading after the colon)


@dataclass(frozen=True)
class Card:
    """One evidence card: a review or a study, written in our own words."""

    id: str
    kind: CardKind
    title: str
    authors: tuple[str, ...]
    year: int
    venue: str
    country: str
    setting: str
    design: str
    review_inclusion: str
    themes: tuple[str, ...]
    sources: tuple[str, ...]
    sections: tuple[Section, ...]
    path: Path
    content_hash: str
    doi: str | None = None
    url: str | None = None
    participants: str | None = None
    published: str | None = None  # guidance: the document's date as printed (e.g. "2016-03")
    document_type: str | None = None  # guidance: what kind of document (practice guide, framework, ...)
    authors_complete: bool = True  # False: only some authors are known, so citations say "et al."
    # Curated "questions this section answers" (corpus/questions/<id>.yaml): (section heading, question).
    questions: tuple[tuple[str, str], ...] = ()

    @property
    def design_type(self) -> str:
        """The design category: the part of ``design`` before the first ';'."""
        return self.design.split(";", 1)[0].strip().lower()

    @property
    def short_cite(self) -> str:
        first = self.authors[0].split(",")[0].strip() if self.authors else self.id
        etal = " et al." if len(self.authors) > 2 or not self.authors_complete else (f" & {self.authors[1].split(',')[0].strip()}" if len(self.authors) == 2 else "")
        return f"{first}{etal} ({self.year})"

    @property
    def link(self) -> str | None:
        return card_link(self.doi, self.url)

    def full_text(self) -> str:
        return "\n\n".join(f"{s.heading}\n{s.text}" for s in self.sections)


@dataclass(frozen=True)
class Passage:
    """A piece of one card section: the unit that is embedded, retrieved and cited."""

    id: str  # content-addressed: sha256 of card id, section, text and card metadata
    card_id: str
    section: str  # "summary" | "strategy" | "caveats"
    heading: str
    text: str  # exact card text (what quotes are taken from)
    theme: str | None
    strategy: str | None
    strategy_title: str | None
    ordinal: int  # position of this passage within its card
    meta: dict[str, Any] = field(default_factory=dict)  # card metadata needed for citations

    def embed_text(self) -> str:
        """What the encoder and BM25 see: the text with its card and heading for context (a curated
        question is embedded alone, so it meets managers' questions as one question to another)."""
        if self.section == QUESTION_SECTION:
            return self.text
        head = self.strategy_title or self.heading
        return f"{self.meta.get('title', '')}. {head}.\n{self.text}"


@dataclass(frozen=True)
class ScoredPassage:
    passage: Passage
    score: float  # fused score (higher is better)
    dense: float | None = None  # cosine similarity, when the dense retriever found it
    bm25_rank: int | None = None
    dense_rank: int | None = None


class Embedder(Protocol):
    """Turns text into vectors. The real one wraps sentence-transformers; tests use a hash fake."""

    name: str

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...
