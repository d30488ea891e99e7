"""What the question asks that the evidence does not cover.

A question has a topic and may name more: a known gap (pay rates, billing codes: the curated list
in ``corpus/known_gaps.yaml``) or an aspect such as a setting, group or time (``aspects`` in
``corpus/vocabulary.yaml``). Known gaps are never covered, by definition. A gap is recognised by its
terms or, for wordings the terms miss, by a classifier over the question's embedding
(``assistant/gap_model.json``, trained by ``python -m evals.train_gaps`` on each gap's examples). An aspect is covered when a
cited card speaks to it; when none does, cards in the corpus that do are offered to the answer,
and if none of those is relevant enough the aspect is named as not covered.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assistant.classifier import SoftmaxModel
from ingest.gaps import Gap, KnownGaps
from ingest.taxonomy import Taxonomy
from ingest.types import Card
from ingest.vocabulary import Aspect, Vocabulary

log = logging.getLogger(__name__)
GAP_MODEL = Path(__file__).with_name("gap_model.json")


class GapModel(SoftmaxModel):
    """``none`` or one known gap, from the question's embedding."""

    NEGATIVE = "none"


def load_gap_model(embedding_model: str, path: Path = GAP_MODEL) -> GapModel | None:
    """The shipped gap classifier, or None when it is missing or was trained for another embedding model
    (the hash embedder of the unit tests): then the gaps' terms work alone."""
    if not path.exists():
        return None
    model = GapModel.load(path)
    if model.embedding_model != embedding_model:
        log.warning("gap classifier was trained for %s, not %s: using the known gaps' terms only",
                    model.embedding_model, embedding_model)
        return None
    return model


@dataclass(frozen=True)
class Coverage:
    gaps: list[tuple[Gap, str]] = field(default_factory=list)  # known gaps asked about, with the signalling term ("" from the classifier)
    aspects: list[Aspect] = field(default_factory=list)  # aspects the question names
    main_gap: Gap | None = None  # a known gap that is the question's main aspect

    @property
    def any(self) -> bool:
        return bool(self.gaps or self.aspects)


class CoverageCheck:
    def __init__(self, vocabulary: Vocabulary, gaps: KnownGaps, cards: Sequence[Card],
                 taxonomy: Taxonomy | None = None, gap_model: GapModel | None = None,
                 gap_threshold: float | None = None) -> None:
        """``gap_model``: the semantic gap check (None: the gaps' terms alone), used at ``gap_threshold``
        (default: the model's own)."""
        self.vocabulary = vocabulary
        self.gap_model = gap_model
        self.gap_threshold = gap_threshold if gap_threshold is not None else (gap_model.threshold if gap_model else 1.0)
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

    def semantic_gap(self, vector: Sequence[float] | None) -> tuple[Gap | None, float]:
        """The known gap the classifier names for this question's embedding, if it is confident enough."""
        if self.gap_model is None or vector is None:
            return None, 0.0
        gid, p = self.gap_model.decide(vector)
        gap = next((g for g in self.known.gaps if g.id == gid), None)
        return (gap if p >= self.gap_threshold else None), p

    def assess(self, question: str, vector: Sequence[float] | None = None) -> Coverage:
        """``vector``: the question's embedding, for the semantic gap check."""
        gaps = self.known.found_in(question)
        semantic, _ = self.semantic_gap(vector)
        if semantic is not None and all(g.id != semantic.id for g, _ in gaps):
            gaps.append((semantic, ""))
        aspects = [a for a in self.vocabulary.aspects if a.in_question(question)]
        return Coverage(gaps, aspects, self._main_gap(question, gaps))

    def _main_gap(self, question: str, gaps: Sequence[tuple[Gap, str]]) -> Gap | None:
        """The gap that is the question's main aspect: with the gaps' terms taken out, at most two
        content words are left and none names a covered topic. A gap the classifier named (no term)
        is the main aspect when no word of the question names a covered topic."""
        rest = question
        for _, term in gaps:
            if term:
                rest = re.sub(re.escape(term), " ", rest, flags=re.IGNORECASE)
        content = [t for t in self.tokenize(rest) if t not in self.generic]
        if set(content) & self.topic_words:
            return None
        for gap, term in gaps:
            if not term or len(content) <= 2:
                return gap
        return None

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
