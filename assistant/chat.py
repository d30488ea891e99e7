"""The assistant: question (+ history) → safety gate → follow-up rewrite → retrieval → composer → Answer.

This is the Python API::

    from assistant.chat import Assistant
    answer = Assistant().ask("Who should supervise peer workers?")
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Sequence

from assistant.errors import InvalidQuestionError
from assistant.retrieve import is_enumerative, tokenize
from assistant.safety import CRISIS_MESSAGE, check_crisis, normalise, out_of_scope_reason
from assistant.settings import Settings, get_settings
from assistant.types import Answer, Embedder

log = logging.getLogger(__name__)

_LEADING = re.compile(r"^(and|but|so|also|ok(ay)?|then|now|right|thanks?( you)?|great|what about|how about|"
                      r"what of|and what about|and how about|same for|what else about|tell me more about|"
                      r"more on|more about)\b[\s,:-]*", re.IGNORECASE)
# An explicit subject: with one of these a pronoun probably does not point back to an earlier turn.
_SUBJECT = re.compile(r"\b(peers?|peer workers?|lived experience|workers?|staff|workforce|teams?|organi[sz]ations?|"
                      r"services?|managers?|supervisors?|leaders?|psws?|specialists?|clinicians?|colleagues?)\b",
                      re.IGNORECASE)
_PRONOUN = re.compile(r"\b(it|they|them|their|that|this|those|these|he|she|him|her)\b", re.IGNORECASE)


def rewrite_followup(question: str, history: Sequence[str]) -> str:
    """Turn a short or elliptical follow-up into a standalone question using the earlier turns.

    "and what about training?" after "What should we do before our first peer worker starts?"
    becomes "What does the evidence say about training? (follow-up to: What should we do before our
    first peer worker starts?)". Self-contained questions are returned unchanged.
    """
    q = question.strip()
    previous = next((h.strip() for h in reversed(history) if h and h.strip()), "")
    if not previous:
        return q
    words = re.findall(r"\w+", q)
    elliptical = bool(_LEADING.match(q)) or len(words) <= 4
    dangling = bool(_PRONOUN.search(q)) and not _SUBJECT.search(q)
    if not (elliptical or dangling):
        return q
    core = q
    while _LEADING.match(core):
        stripped = _LEADING.sub("", core, count=1).strip()
        if stripped == core:
            break
        core = stripped
    core = core.rstrip("?.! ") or q
    if elliptical and len(re.findall(r"\w+", core)) <= 6 and not re.match(
            r"^(who|what|how|when|where|why|which|should|can|could|do|does|is|are)\b", core, re.IGNORECASE):
        standalone = f"What does the evidence say about {core}?"
    else:
        standalone = core[0].upper() + core[1:] + ("?" if not core.endswith("?") else "")
    return f"{standalone} (follow-up to: {previous})"


_EVIDENCE_WORDS = frozenset(
    "evid research studi studie trial review literatur base strong strength overal qualit quantit random control rct "
    "outcom effect data find found say show paper sourc method design cost saving econom summar summary gap gaps "
    "limit weak good robust quality".split())


# Words that tie a question to this evidence base (peer work and how services implement it).
_ANCHOR = re.compile(
    r"\b(peers?|lived[- ]?experience|lived[- ]?expertise|consumer[- ]?(workers?|providers?|staff|roles?|run|led|operated)|"
    r"psws?|cps|"
    r"experts? by experience|recovery[- ]?(workers?|coach\w*|orient\w*|college)|service[- ]user (workers?|staff)|"
    r"mutual (aid|support)|supervis\w*|mentor\w*|induct\w*|orientation|onboard\w*|recruit\w*|champion\w*|"
    r"job descriptions?|role (clarity|definition|creep|drift|boundar\w*)|disclos\w*|confidentiality|"
    r"career (pathways?|progression|ladder)|reasonable adjustments?|accommodations?|certif\w*|internships?|"
    r"fidelity|co-?option|tokenis\w*|tokeniz\w*|workforce|integrat\w*|stigma|buy-?in|train\w*|retention|"
    r"burn-?out|well-?being|leadership|"
    r"zeng|mcnamara|scoping review)\b",
    re.IGNORECASE)
NO_ANCHOR_THRESHOLD = 0.55  # without any anchor word, only a very close match counts as in scope
FOLLOWUP_MARGIN = 0.15
MIN_WORDS_FOR_CLASSIFIER = 4
NO_CLASSIFIER = {"a request to change how the assistant works", "writing code",
                 "general knowledge outside this evidence base"}


def in_scope(question: str, standalone: str, result: Any, threshold: float, has_history: bool = False) -> bool:
    """Is the question about what the evidence base covers?

    In scope when it names a study's authors; when it only asks about the evidence itself ("Is there
    any trial evidence?"); or when the best passage is similar enough: ``threshold`` if the question
    uses a word tied to peer work, a margin lower for a follow-up in a conversation, and the much
    higher NO_ANCHOR_THRESHOLD when nothing ties it to peer work ("How do I become a psychiatrist?").
    """
    if result.mentioned_cards:
        return True
    tokens = set(tokenize(question))
    if tokens and tokens <= _EVIDENCE_WORDS:
        return True
    anchored = bool(_ANCHOR.search(standalone))
    followup = standalone != question or (has_history and anchored)
    needed = threshold if anchored else max(threshold, NO_ANCHOR_THRESHOLD)
    if followup:
        needed = threshold - FOLLOWUP_MARGIN
    return result.best_dense >= needed


def retrieval_query(standalone: str) -> str:
    """What retrieval sees: the new question first and twice, so it outweighs the earlier turn."""
    m = re.match(r"^(.*) \(follow-up to: (.*)\)$", standalone, re.DOTALL)
    if not m:
        return standalone
    new, old = m.group(1), m.group(2)
    return f"{new} {new} {old}"


class Assistant:
    """Answers questions from the evidence index. Thread-safe; models load on first use."""

    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None,
                 store: Any | None = None, composer: Any | None = None) -> None:
        self.settings = settings or get_settings()
        self._embedder = embedder
        self._store = store
        self._composer = composer
        self._retriever: Any = None
        self._crisis_check: Any = None
        self._corpus: Any = None
        self._lock = threading.Lock()

    # ---- lazy collaborators ------------------------------------------------------------------------
    @property
    def corpus(self) -> Any:
        if self._corpus is None:
            from ingest.cards import load_corpus

            self._corpus = load_corpus(self.settings.corpus_dir, self.settings.max_card_bytes)
        return self._corpus

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    from assistant.embedding import get_embedder

                    self._embedder = get_embedder(self.settings)
        return self._embedder

    @property
    def crisis_check(self) -> Any:
        if self._crisis_check is None:
            from assistant.safety import SemanticCrisisCheck

            self._crisis_check = SemanticCrisisCheck(self.embedder, threshold=self.settings.crisis_threshold)
        return self._crisis_check

    @property
    def retriever(self) -> Any:
        if self._retriever is None:
            embedder = self.embedder
            with self._lock:
                if self._retriever is None:
                    from assistant.retrieve import HybridRetriever
                    from ingest.cards import load_taxonomy

                    taxonomy = load_taxonomy(self.settings.themes_file())
                    self._retriever = HybridRetriever(self.settings, embedder, taxonomy, store=self._store)
        return self._retriever

    def warm_up(self) -> None:
        """Load the model, the passages and the crisis classifier now (the UI calls this before serving)."""
        self.retriever.warm_up()
        if self.settings.semantic_crisis_check:
            self.crisis_check.check(self.embedder.embed_query("warm up"))

    def reload(self) -> None:
        if self._retriever is not None:
            self._retriever.reload()
        self._corpus = None

    # ---- the pipeline --------------------------------------------------------------------------------
    def clean_question(self, question: Any) -> str:
        if not isinstance(question, str):
            raise InvalidQuestionError("The question must be text.")
        limit = self.settings.max_question_chars
        if len(question) > limit:
            raise InvalidQuestionError(
                f"The question is {len(question):,} characters long; the limit is {limit:,}.",
                "Ask one short question at a time; paste no documents.")
        cleaned = normalise(question)
        if not re.search(r"\w", cleaned):
            raise InvalidQuestionError("The question is empty.")
        return cleaned

    def ask(self, question: str, history: Sequence[str] | None = None, theme: str | None = None) -> Answer:
        """Answer one question; ``history`` holds the earlier user questions of this conversation."""
        t0 = time.perf_counter()
        q = self.clean_question(question)
        history = [normalise(h)[: self.settings.max_question_chars] for h in (history or []) if isinstance(h, str)]

        verdict = check_crisis(q)
        vector = None
        reason = out_of_scope_reason(q)
        # The classifier reads sentences about mental health: code, prompt injection and one- to
        # three-word questions ("Zeng", "Is it?") skip it; the crisis rules above still apply to them.
        if (not verdict.crisis and self.settings.semantic_crisis_check and reason not in NO_CLASSIFIER
                and len(re.findall(r"\w+", q)) >= MIN_WORDS_FOR_CLASSIFIER):
            vector = self.embedder.embed_query(q)
            verdict = self.crisis_check.check(vector)
        if verdict.crisis:
            log.info("crisis routing (%s)", verdict.reason)
            return Answer(question=q, status="crisis", answer=CRISIS_MESSAGE, reason="crisis language",
                          timings_ms={"retrieve": 0.0, "compose": 0.0, "total": _ms(t0)})

        standalone = rewrite_followup(q, history)
        retriever = self.retriever
        retriever.check_theme(theme)
        t1 = time.perf_counter()
        query = retrieval_query(standalone)
        # Only the new question decides whether to list every study (not an earlier turn).
        new_part = standalone.split(" (follow-up to: ")[0]
        result = retriever.retrieve(query, theme=theme, enumerate_all=is_enumerative(new_part),
                                    vector=vector if query == q else None)
        t_retrieve = _ms(t1)
        retrieved = [{"chunk_id": sp.passage.id, "card_id": sp.passage.card_id, "score": round(sp.score, 6)}
                     for sp in result.passages]

        if reason is None and not tokenize(standalone) and not result.mentioned_cards:
            reason = "the question has no words to search the evidence for"
        if reason is None and not in_scope(q, standalone, result, self.settings.abstain_threshold,
                                           has_history=bool(history)):
            reason = "the question is not about implementing or supporting peer work in mental health services"
        if reason is not None:
            return self._abstain(q, standalone, reason, result, retrieved, t_retrieve, t0)

        t2 = time.perf_counter()
        composition = self._compose(standalone, result)
        if not composition.citations:
            return self._abstain(q, standalone, "no passage in the evidence base supports an answer", result,
                                 retrieved, t_retrieve, t0)
        return Answer(
            question=q, status="answered", answer=composition.answer, strategies=composition.strategies,
            citations=composition.citations, evidence=composition.evidence, retrieved=retrieved,
            standalone_question=standalone,
            timings_ms={"retrieve": t_retrieve, "compose": _ms(t2), "total": _ms(t0)},
        )

    def _abstain(self, q: str, standalone: str, reason: str, result: Any, retrieved: list[dict[str, Any]],
                 t_retrieve: float, t0: float) -> Answer:
        topics = [self.retriever.taxonomy.strategy_title(t, s) for t, s, _ in result.strategy_matches[:3]]
        text = (f"The evidence in this assistant does not cover that ({reason}). It covers how mental health "
                f"services introduce and support peer workers, for example: {'; '.join(topics)}.")
        return Answer(question=q, status="abstained", answer=text, reason=reason, nearest_topics=topics,
                      standalone_question=standalone, retrieved=retrieved,
                      timings_ms={"retrieve": t_retrieve, "compose": 0.0, "total": _ms(t0)})

    def _compose(self, question: str, result: Any) -> Any:
        from assistant.compose import compose_grounded

        retriever = self.retriever
        grounded = compose_grounded(question, result.passages, retriever.taxonomy, retriever.idf,
                                    enumerated_cards=result.enumerated_cards,
                                    mentioned_cards=result.mentioned_cards)
        if self.settings.composer == "llm" and not result.enumerated_cards:
            from assistant.llm import compose_with_llm

            return compose_with_llm(question, result.passages, retriever.taxonomy, self.settings,
                                    fallback=grounded, client=self._composer)
        return grounded


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
