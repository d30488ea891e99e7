"""Follow-up rewrite: an elliptical follow-up ("and what about training?") becomes a standalone
question that keeps the earlier turn beside it, as a typed object rather than a string."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ingest.vocabulary import FollowupWords

_QUESTION_WORD = re.compile(r"^(who|what|how|when|where|why|which|should|can|could|do|does|is|are)\b", re.IGNORECASE)


@dataclass(frozen=True)
class FollowUp:
    """The question as asked, and (when it leans on an earlier turn) the standalone rewrite."""

    question: str
    new: str  # the new question as a standalone sentence (== question when not rewritten)
    previous: str | None = None  # the earlier user question it leans on

    @property
    def rewritten(self) -> bool:
        return self.previous is not None

    @property
    def standalone(self) -> str:
        """What the answer is about, shown to the user as "Understood as: ..."."""
        return f"{self.new} (follow-up to: {self.previous})" if self.previous else self.new

    @property
    def retrieval_query(self) -> str:
        """What retrieval sees: the new question first and twice, so it outweighs the earlier turn."""
        return f"{self.new} {self.new} {self.previous}" if self.previous else self.new


class FollowupRewriter:
    """Rewrites short, elliptical or pronoun-led follow-ups using the previous user question."""

    def __init__(self, words: FollowupWords) -> None:
        self.leading = re.compile(words.leading, re.IGNORECASE)
        self.subject = re.compile(words.subject, re.IGNORECASE)
        self.pronoun = re.compile(words.pronoun, re.IGNORECASE)

    def __call__(self, question: str, history: Sequence[str]) -> FollowUp:
        q = question.strip()
        previous = next((h.strip() for h in reversed(history) if h and h.strip()), "")
        if not previous:
            return FollowUp(q, q)
        elliptical = bool(self.leading.match(q)) or len(re.findall(r"\w+", q)) <= 4
        dangling = bool(self.pronoun.search(q)) and not self.subject.search(q)
        if not (elliptical or dangling):
            return FollowUp(q, q)
        core = q
        while self.leading.match(core):
            stripped = self.leading.sub("", core, count=1).strip()
            if stripped == core:
                break
            core = stripped
        core = core.rstrip("?.! ") or q
        if elliptical and len(re.findall(r"\w+", core)) <= 6 and not _QUESTION_WORD.match(core):
            new = f"What does the evidence say about {core}?"
        else:
            new = core[0].upper() + core[1:] + ("?" if not core.endswith("?") else "")
        return FollowUp(q, new, previous)
