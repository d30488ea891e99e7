"""What the question asks that the evidence does not cover.

A question has a topic and may name more: a known gap (pay rates, billing codes: the curated list
in ``corpus/known_gaps.yaml``) or an aspect such as a setting, group or time (``aspects`` in
``corpus/vocabulary.yaml``). Known gaps are never covered, by definition. An aspect is covered when a
cited card speaks to it; when none does, cards in the corpus that do are offered to the answer,
and if none of those is relevant enough the aspect is named as not covered.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ingest.gaps import Gap, KnownGaps
from ingest.taxonomy import Taxonomy
from ingest.types import Card
from ingest.vocabulary import Aspect, Vocabulary


@dataclass(frozen=True)
class Coverage:
    gaps: list[tuple[Gap, str]] = field(default_factory=list)  # known gaps asked about, with the signalling term
    aspects: list[Aspect] = field(default_factory=list)  # aspects the question names
    main_gap: Gap | None = None  # a known gap that is the question's main aspect

    @property
    def any(self) -> bool:
        return bool(self.gaps or self.aspects)


class CoverageCheck:
    def __init__(self, vocabulary: Vocabulary, gaps: KnownGaps, cards: Sequence[Card],
                 taxonomy: Taxonomy | None = None) -> None:
        self.vocabulary = vocabulary
        self.tokenize = vocabulary.tokenizer
        self.known = gaps
        self.generic = vocabulary.generic_words
        # Words that name a covered topic (the taxonomy's strategies): with one of these left, the
        # question asks about more than the gap.
        self.topic_words = frozenset(
            t for theme in (taxonomy.themes.values() if taxonomy else ())
            for sid, title in theme.strategies.items() for t in self.tokenize(f"{sid.replace('-', ' ')} {title}")
        ) - self.generic
        self.aspect_cards: dict[str, set[str]] = {
            a.id: {c.id for c in cards if a.in_card_text(" ".join((c.setting, c.participants or "", c.title)))}
            for a in vocabulary.aspects}

    def assess(self, question: str) -> Coverage:
        gaps = self.known.found_in(question)
        aspects = [a for a in self.vocabulary.aspects if a.in_question(question)]
        main = None
        for gap, term in gaps:
            rest = re.sub(re.escape(term), " ", question, flags=re.IGNORECASE)
            for other, other_term in gaps:
                rest = re.sub(re.escape(other_term), " ", rest, flags=re.IGNORECASE)
            content = [t for t in self.tokenize(rest) if t not in self.generic]
            if len(content) <= 2 and not set(content) & self.topic_words:
                main = gap
                break
        return Coverage(gaps, aspects, main)

    def uncovered_aspects(self, coverage: Coverage, cited_cards: set[str],
                          cited_texts: Sequence[str] = ()) -> list[Aspect]:
        """The named aspects no cited card speaks to (by its setting, participants or title, or in the
        text the answer quotes)."""
        return [a for a in coverage.aspects
                if not (self.aspect_cards.get(a.id, set()) & cited_cards)
                and not any(a.in_card_text(t) for t in cited_texts)]


def not_covered_text(topics: Sequence[str], instead: Sequence[str]) -> str:
    """The fixed template that names what the evidence does not address."""
    lines = [f"The evidence here does not address {t}." for t in topics]
    lines += [f"Instead, {i}." for i in instead]
    return " ".join(lines)
