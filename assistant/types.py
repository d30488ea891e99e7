"""The answer layer's domain types: the answer contract of DESIGN.md and its parts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["answered", "abstained", "crisis"]


@dataclass
class StrategyItem:
    theme: str
    title: str
    text: str
    citations: list[int]


@dataclass
class Citation:
    n: int
    card_id: str
    doi: str | None
    title: str
    year: int
    section: str
    quote: str
    passage_id: str = ""
    authors: str = ""
    country: str = ""
    design: str = ""
    kind: str = ""
    short_cite: str = ""
    link: str | None = None


@dataclass
class Answer:
    """The answer contract (DESIGN.md)."""

    question: str
    status: Status
    answer: str
    strategies: list[StrategyItem] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=lambda: {"n_sources": 0, "designs": {}, "countries": {}})
    not_covered: list[str] = field(default_factory=list)  # aspects of the question no relevant evidence addresses
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    standalone_question: str | None = None
    reason: str | None = None
    nearest_topics: list[str] = field(default_factory=list)
    trace: dict[str, Any] = field(default_factory=dict)  # what each stage decided (not part of the contract)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract: the DESIGN.md keys first, then a few optional extras."""
        data = asdict(self)
        data.pop("trace", None)
        for cite in data["citations"]:
            for extra in ("passage_id", "authors", "country", "design", "kind", "short_cite", "link"):
                cite.pop(extra, None)
        out: dict[str, Any] = {k: data[k] for k in ("question", "status", "answer", "strategies", "citations",
                                                    "evidence", "not_covered", "retrieved", "timings_ms")}
        if self.standalone_question and self.standalone_question != self.question:
            out["standalone_question"] = self.standalone_question
        if self.reason:
            out["reason"] = self.reason
        if self.nearest_topics:
            out["nearest_topics"] = self.nearest_topics
        return out
