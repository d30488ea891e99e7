"""The known-gaps list (``corpus/known_gaps.yaml``): topics managers ask about that no card covers,
with what a manager can do instead. Answers name them; maintainers see where literature is needed."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ingest.errors import CorpusError, Problem
from ingest.safe_yaml import load_data_file

GAPS_FILE = "known_gaps.yaml"


class Gap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    topic: str = Field(min_length=3, description="Noun phrase: 'The evidence here does not address <topic>.'")
    terms: tuple[str, ...] = Field(min_length=1, description="Lower-case words or phrases that signal the topic.")
    instead: str = Field(min_length=3, description="What a manager can do instead.")
    partly_covered_by: tuple[str, ...] = ()
    examples: tuple[str, ...] = Field((), description="Manager questions on the topic, worded as they would ask "
                                                      "(the semantic gap check is trained on them).")

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        terms = sorted((re.escape(t.strip().lower()) for t in self.terms if t.strip()), key=len, reverse=True)
        return re.compile(r"\b(" + "|".join(terms) + r")\b", re.IGNORECASE)

    def matched(self, text: str) -> str | None:
        m = self.pattern.search(text)
        return m.group(1).lower() if m else None


class KnownGaps(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gaps: tuple[Gap, ...] = ()
    not_gaps: tuple[str, ...] = Field((), description="Near-miss questions the evidence does cover: what the semantic "
                                                      "gap check must not read as a gap.")

    def found_in(self, text: str) -> list[tuple[Gap, str]]:
        """The gaps a question asks about, with the term that signalled each."""
        out = []
        for gap in self.gaps:
            term = gap.matched(text)
            if term:
                out.append((gap, term))
        return out


def load_gaps(path: Path) -> KnownGaps:
    """Read the known-gaps list; a missing file means no known gaps. Raises CorpusError on bad entries."""
    if not path.exists():
        return KnownGaps()
    gaps = load_data_file(path, KnownGaps)
    ids = [g.id for g in gaps.gaps]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise CorpusError([Problem(path.name, "id", f"'{d}' is used twice", "give each gap its own id") for d in dupes])
    return gaps
