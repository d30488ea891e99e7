"""What every composer shares: the ``Composer`` protocol, the ``Composition`` it returns, the
citation book that numbers quotes, the evidence summary, and the one citation-marker pattern."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from assistant.retrieval import RetrievalResult
from assistant.types import Citation, StrategyItem
from ingest.types import ScoredPassage, card_link

#: A citation marker in answer text: ``[3]``.
MARKER_RE = re.compile(r"\[(\d+)\]")


def markers(text: str) -> list[int]:
    """Every citation number used in ``text``."""
    return [int(m) for m in MARKER_RE.findall(text)]


@dataclass
class Composition:
    answer: str
    strategies: list[StrategyItem]
    citations: list[Citation]
    evidence: Evidence
    thin: bool = False
    notes: list[str] = field(default_factory=list)
    #: what a generating composer did (lines written, kept, dropped and why, fallback); None for the grounded one
    stats: dict[str, Any] | None = None


class Composer(Protocol):
    """Turns retrieved evidence into an answer; every quote must be card text."""

    def compose(self, question: str, result: RetrievalResult) -> Composition: ...


class CitationBook:
    """Numbers citations in order of first use; one number per (passage, quote)."""

    def __init__(self) -> None:
        self.items: list[Citation] = []
        self._index: dict[tuple[str, str], int] = {}

    def cite(self, sp: ScoredPassage, quote: str) -> int:
        p = sp.passage
        key = (p.id, quote)
        if key not in self._index:
            n = len(self.items) + 1
            self._index[key] = n
            meta = p.meta
            self.items.append(Citation(
                n=n, card_id=p.card_id, doi=(meta.get("doi") or None), title=str(meta.get("title") or ""),
                year=int(meta.get("year") or 0), section=p.heading, quote=quote, passage_id=p.id,
                authors=str(meta.get("authors") or ""), country=str(meta.get("country") or ""),
                design=str(meta.get("design") or ""), kind=str(meta.get("kind") or ""),
                short_cite=str(meta.get("short_cite") or ""),
                link=card_link(meta.get("doi") or None, meta.get("url") or None),
            ))
        return self._index[key]

    def add(self, citation: Citation) -> int:
        """Take over a citation numbered by another book (same passage and quote: same number here)."""
        key = (citation.passage_id, citation.quote)
        if key not in self._index:
            self._index[key] = len(self.items) + 1
            self.items.append(dataclasses.replace(citation, n=self._index[key]))
        return self._index[key]


class Evidence(TypedDict):
    """How much evidence is behind an answer: sources, and how many of each design and country."""

    n_sources: int
    designs: dict[str, int]
    countries: dict[str, int]


def evidence_summary(passages: Iterable[ScoredPassage]) -> Evidence:
    cards: dict[str, dict[str, object]] = {}
    for sp in passages:
        cards.setdefault(sp.passage.card_id, sp.passage.meta)
    designs = Counter(str(m.get("design_type") or "unknown") for m in cards.values())
    countries = Counter(str(m.get("country") or "unknown") for m in cards.values())
    return {"n_sources": len(cards), "designs": dict(designs.most_common()), "countries": dict(countries.most_common())}
