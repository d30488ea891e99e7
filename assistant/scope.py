"""The scope check: is a question about what this evidence base covers?

Two parts: requests that are plainly outside it (clinical advice, code, trivia: patterns from
``corpus/vocabulary.yaml``), and a similarity bar on the best passage, lower when the question
uses a word tied to peer work and lower again for a follow-up in a conversation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.followup import FollowUp
from assistant.retrieval import RetrievalResult
from assistant.settings import ScopeSettings
from ingest.text import normalise
from ingest.vocabulary import Vocabulary


@dataclass(frozen=True)
class PlainReason:
    """Why a request is plainly out of scope, and whether the crisis classifier should still read it."""

    reason: str
    skip_crisis_classifier: bool = False
    nearest: tuple[str, ...] = ()  # "<theme>/<strategy>" topics worth pointing to instead


class ScopeCheck:
    def __init__(self, settings: ScopeSettings, vocabulary: Vocabulary) -> None:
        self.settings = settings
        self.tokenize = vocabulary.tokenizer
        self.anchor = re.compile(vocabulary.scope.anchor, re.IGNORECASE)
        self.evidence_words = frozenset(vocabulary.scope.evidence_words)
        self.patterns = [(PlainReason(o.reason, o.skip_crisis_classifier, o.nearest), re.compile(o.pattern, re.IGNORECASE))
                         for o in vocabulary.scope.out_of_scope]

    def plain_reason(self, question: str) -> PlainReason | None:
        """A reason when the request is plainly outside an evidence base on peer-work implementation."""
        text = normalise(question)
        return next((reason for reason, pattern in self.patterns if pattern.search(text)), None)

    def in_scope(self, question: str, followup: FollowUp, result: RetrievalResult, has_history: bool = False) -> bool:
        """In scope when it names a study's authors; when it only asks about the evidence itself
        ("Is there any trial evidence?"); or when the best passage is similar enough."""
        if result.mentioned_cards:
            return True
        tokens = set(self.tokenize(question))
        if tokens and tokens <= self.evidence_words:
            return True
        s = self.settings
        standalone = followup.standalone
        anchored = bool(self.anchor.search(standalone))
        needed = s.abstain_threshold if anchored else max(s.abstain_threshold, s.no_anchor_threshold)
        if followup.rewritten or (has_history and anchored):
            needed = s.abstain_threshold - s.followup_margin
        return result.best_dense >= needed
