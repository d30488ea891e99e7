"""The scope check: is a question about what this evidence base covers?

Three parts: requests that are plainly outside it (clinical advice, code, trivia: patterns from
``corpus/vocabulary.yaml``); the same refusal categories decided from the question's embedding,
for wordings the patterns miss (``ScopeCheck.refusal``); and a similarity bar on the best passage,
lower when the question uses a word tied to peer work and lower again for a follow-up.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.classifier import SoftmaxModel
from assistant.followup import FollowUp
from assistant.retrieval import RetrievalResult
from assistant.settings import ScopeSettings
from ingest.text import normalise
from ingest.vocabulary import Vocabulary

log = logging.getLogger(__name__)
REFUSAL_MODEL = Path(__file__).with_name("refusal_model.json")
ALLOW = "allow"


@dataclass(frozen=True)
class PlainReason:
    """Why a request is plainly out of scope, and whether the crisis classifier should still read it."""

    reason: str
    skip_crisis_classifier: bool = False
    nearest: tuple[str, ...] = ()  # "<theme>/<strategy>" topics worth pointing to instead
    category: str | None = None  # a refusal category the semantic check also decides


class RefusalModel(SoftmaxModel):
    """``allow`` or one refusal category (``python -m evals.train_refusal``, stored in
    ``assistant/refusal_model.json``)."""

    NEGATIVE = ALLOW

    @classmethod
    def load(cls, path: Path = REFUSAL_MODEL) -> RefusalModel:
        return super().load(path)


class ScopeCheck:
    def __init__(self, settings: ScopeSettings, vocabulary: Vocabulary, embedding_model: str = "",
                 refusal_model: RefusalModel | None = None) -> None:
        self.settings = settings
        self.tokenize = vocabulary.tokenizer
        self.anchor = re.compile(vocabulary.scope.anchor, re.IGNORECASE)
        self.evidence_words = frozenset(vocabulary.scope.evidence_words)
        reasons = [PlainReason(o.reason, o.skip_crisis_classifier, o.nearest, o.id) for o in vocabulary.scope.out_of_scope]
        self.patterns = [(r, re.compile(o.pattern, re.IGNORECASE)) for r, o in zip(reasons, vocabulary.scope.out_of_scope)]
        self.categories = {r.category: r for r in reasons if r.category}
        ruled_out = vocabulary.scope.ruled_out
        self.ruled_out = re.compile(ruled_out, re.IGNORECASE) if ruled_out else None
        self.embedding_model = embedding_model
        self._refusal = refusal_model
        self._refusal_checked = refusal_model is not None

    @property
    def refusal_model(self) -> RefusalModel | None:
        """Loaded on first use; ``None`` when switched off, missing, or trained for another embedding model."""
        if not self._refusal_checked:
            self._refusal_checked = True
            if self.settings.semantic_refusal and REFUSAL_MODEL.exists():
                model = RefusalModel.load()
                if model.embedding_model == self.embedding_model:
                    self._refusal = model
                else:
                    log.warning("refusal classifier was trained for %s, not %s: using the refusal patterns only",
                                model.embedding_model, self.embedding_model)
        return self._refusal if self.settings.semantic_refusal else None

    def refusal(self, plain: PlainReason | None, vector: Sequence[float] | None) -> tuple[PlainReason | None, dict[str, Any]]:
        """The refusal patterns propose, the classifier confirms, for the categories it knows: a pattern's
        refusal stands unless the classifier is confident the question is a policy question
        (``refusal_veto``); with no pattern, the classifier refuses at ``refusal_threshold``. Returns the
        refusal (or ``None``) and what was decided, for the trace."""
        model = self.refusal_model
        if model is None or vector is None or (plain is not None and plain.category is None):
            return plain, {}
        category, p = model.decide(vector)
        s = self.settings
        if plain is not None:
            if p < s.refusal_veto:
                return None, {"pattern": plain.category, "p": round(p, 3), "decision": "answered: policy question"}
            return plain, {"pattern": plain.category, "p": round(p, 3), "decision": "refused"}
        if p >= (model.threshold if s.refusal_threshold is None else s.refusal_threshold) and category in self.categories:
            return self.categories[category], {"category": category, "p": round(p, 3), "decision": "refused"}
        return None, {}

    def plain_reason(self, question: str) -> PlainReason | None:
        """A reason when the request is plainly outside an evidence base on peer-work implementation."""
        text = normalise(question)
        if self.ruled_out is not None:
            text = self.ruled_out.sub(" ", text)
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
