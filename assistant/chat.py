"""The assistant: question (+ history) → crisis gate → follow-up rewrite → retrieval → scope check →
composer → Answer. ``Assistant.ask`` only orchestrates; each stage is its own typed unit, and the
trace on the answer records what each one decided.

This is the Python API::

    from assistant.chat import Assistant
    answer = Assistant().ask("Who should supervise peer workers?")
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from functools import cached_property
from typing import Any

from assistant.compose import Composer, Composition, GroundedComposer
from assistant.compose.abstain import abstention_text
from assistant.coverage import Coverage, CoverageCheck, load_gap_model, not_covered_text
from assistant.errors import InvalidQuestionError
from assistant.followup import FollowUp, FollowupRewriter
from assistant.generations import fresh_store, read_generation
from assistant.relevance import RelevanceGate
from assistant.retrieval import HybridRetriever, RetrievalResult
from assistant.safety import (
    CRISIS_MESSAGE,
    OFFTOPIC_MODEL,
    SPECIALIST_MODEL,
    ClinicalOverride,
    OffTopicOverride,
    SafetyVerdict,
    SecondOpinion,
    SemanticCrisisCheck,
    check_crisis,
)
from assistant.scope import ScopeCheck
from assistant.settings import Settings, get_settings
from assistant.types import Answer
from ingest import embedding
from ingest.cards import Corpus, load_corpus
from ingest.gaps import GAPS_FILE, load_gaps
from ingest.store import EvidenceStore
from ingest.taxonomy import Taxonomy, load_taxonomy
from ingest.text import normalise
from ingest.types import Embedder, ScoredPassage
from ingest.vocabulary import VOCABULARY_FILE, Vocabulary, load_vocabulary

log = logging.getLogger(__name__)


class Assistant:
    """Answers questions from the evidence index. Thread-safe; models load on first use."""

    def __init__(self, settings: Settings | None = None, *, embedder: Embedder | None = None,
                 store: Any | None = None, composer: Composer | None = None, chat_model: Any | None = None) -> None:
        """``chat_model``: any LangChain chat model for the LLM composer (default: ``ChatOpenAI`` from Settings)."""
        self.settings = settings or get_settings()
        self._embedder = embedder
        self._store = store
        self._composer = composer
        self._chat_model = chat_model
        self._lock = threading.Lock()
        self._pinned = threading.local()
        self._live = Loaded(self, None)
        self._checked = 0.0
        self._building = False
        #: how many times a new index generation was switched to (for tests and the bench)
        self.switches = 0

    # ---- lazy collaborators ------------------------------------------------------------------------
    @cached_property
    def vocabulary(self) -> Vocabulary:
        return load_vocabulary(self.settings.index.data_file(VOCABULARY_FILE))

    @cached_property
    def taxonomy(self) -> Taxonomy:
        return load_taxonomy(self.settings.index.themes_file())

    @property
    def corpus(self) -> Corpus:
        return self._view().corpus

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:

                    self._embedder = embedding.get_embedder(self.settings.index)
        return self._embedder

    @property
    def store(self) -> Any:
        """The store of the generation this request reads (one given to the constructor is kept)."""
        return self._view().store

    @cached_property
    def crisis_check(self) -> SemanticCrisisCheck:
        return SemanticCrisisCheck(self.embedder, threshold=self.settings.safety.crisis_threshold)

    @cached_property
    def second_opinions(self) -> list[SecondOpinion]:
        """The specialists that review a classifier's crisis routing in their own regions (see assistant/safety.py)."""
        s = self.settings.safety
        out: list[SecondOpinion] = []
        if s.clinical_specialist:
            out.append(ClinicalOverride(SemanticCrisisCheck(self.embedder, model_file=SPECIALIST_MODEL),
                                        self.scope.refusal_model, s.clinical_categories, s.clinical_refusal_p))
        if s.offtopic_specialist:
            out.append(OffTopicOverride(SemanticCrisisCheck(self.embedder, model_file=OFFTOPIC_MODEL), self.scope.anchor))
        return out

    @cached_property
    def rewriter(self) -> FollowupRewriter:
        return FollowupRewriter(self.vocabulary.followup)

    @cached_property
    def scope(self) -> ScopeCheck:
        return ScopeCheck(self.settings.scope, self.vocabulary, embedding_model=str(getattr(self.embedder, "name", "")))

    @property
    def retriever(self) -> HybridRetriever:
        return self._view().retriever

    @property
    def coverage(self) -> CoverageCheck:
        return self._view().coverage

    @cached_property
    def gate(self) -> RelevanceGate:
        return RelevanceGate(self.settings.relevance)

    def gate_evidence(self, followup: FollowUp, result: RetrievalResult, coverage: Coverage,
                      theme: str | None = None) -> RetrievalResult:
        """Keep only the candidates the relevance gate accepts (enumerations list every card on
        the strategy and are left as they are). For an aspect the question names (rural services,
        the first months) that no kept card speaks to, the best passage of a card that does is
        added when it clears the lower aspect floor."""
        if (not self.settings.relevance.relevance_gate or result.enumerated_cards
                or not self.gate.applies_to(self.embedder.name)):
            return result
        # Retrieval already scored every passage with BM25; tokens are only needed without those scores.
        tokens = self.query_tokens(followup) if result.lexical_scores is None else []
        judged = self.gate.judge(result, self.retriever.index, tokens, theme)
        kept = self.gate.select(judged)
        cards = {j.passage.passage.card_id for j in kept}
        floor = self.settings.relevance.aspect_floor
        for aspect in self.coverage.uncovered_aspects(coverage, cards):
            wanted = self.coverage.aspect_cards.get(aspect.id, set())
            extra = [j for j in judged if j.passage.passage.card_id in wanted and j.relevance >= floor]
            for j in extra[:self.settings.relevance.aspect_cards]:
                if j not in kept:
                    kept.append(j)
        passages = [ScoredPassage(j.passage.passage, j.relevance, j.passage.dense, j.passage.bm25_rank,
                                  j.passage.dense_rank) for j in kept]
        return dataclasses.replace(result, passages=passages)

    @property
    def composer(self) -> Composer:
        return self._view().composer

    # ---- index generations: what a reindex changes, swapped whole between requests --------------
    def _view(self) -> Loaded:
        """The generation this thread's request is pinned to, else the live one."""
        pinned = getattr(self._pinned, "loaded", None)
        return pinned if pinned is not None else self._live

    @property
    def generation(self) -> str | None:
        """The index generation the live answer path was loaded from (None before the first check)."""
        return self._live.generation

    def _pin(self) -> tuple[Loaded, bool]:
        """Pin this thread to the live generation for one request (nested calls keep the outer pin)."""
        pinned = getattr(self._pinned, "loaded", None)
        if pinned is not None:
            return pinned, False
        self._watch()
        self._pinned.loaded = self._live
        return self._live, True

    def _unpin(self, owner: bool) -> None:
        if owner:
            self._pinned.loaded = None

    def _watch(self) -> None:
        """At most every ``generation_check_s``: read the index generation (a small file or the
        collection's metadata); when it is not the loaded one, build the new generation in a
        background thread and swap it in when it is ready. Requests never wait for it."""
        every = self.settings.ui.generation_check_s
        if every <= 0:
            return
        now = time.monotonic()
        if now - self._checked < every:
            return
        with self._lock:
            if now - self._checked < every or self._building:
                return
            self._checked = now
        try:
            current = read_generation(self.settings.index, self.store)
        except Exception:  # a failed check keeps the loaded generation; the next one retries
            log.warning("could not read the index generation", exc_info=True)
            return
        if self._live.generation is None:  # loaded before any check: it is taken to be the one on disk
            self._live.generation = current
            return
        if current is None or current == self._live.generation:
            return
        with self._lock:
            if self._building:
                return
            self._building = True
        threading.Thread(target=self._switch_to, args=(current,), name="peer-assist-reindex", daemon=True).start()

    def _switch_to(self, generation: str) -> None:
        """Build every part of ``generation`` off to the side, then swap one reference."""
        t0 = time.perf_counter()
        try:
            fresh = Loaded(self, generation, fresh=True)
            fresh.build()
            self._live = fresh  # one reference: a request sees the old generation or the new one, never half
            self.switches += 1
            log.info("switched to index generation %s in %.2f s", generation, time.perf_counter() - t0)
        except Exception:  # keep answering from the old generation; the next check retries
            log.warning("could not load index generation %s; still answering from %s", generation,
                        self._live.generation, exc_info=True)
        finally:
            with self._lock:
                self._building = False
                self._checked = 0.0

    def warm_up(self) -> None:
        """Load the model, the passages and the crisis classifier now (the UI calls this before serving)."""
        if self.settings.ui.generation_check_s > 0 and self._live.generation is None and not self._live.built:
            try:  # stamped before loading: an ingest that lands while loading is switched to later
                self._live.generation = read_generation(self.settings.index, self.store)
            except Exception:  # the first request's check stamps it instead
                log.warning("could not read the index generation", exc_info=True)
        self.retriever.warm_up()
        if self.retriever.generation:  # what was actually loaded (ingest may have landed meanwhile)
            self._live.generation = self.retriever.generation
        if self.settings.safety.semantic_crisis_check:
            self.crisis_check.check(self.embedder.embed_query("warm up"))

    def reload(self) -> None:
        """Forget what was loaded from the index and the corpus (after a reindex); the next request
        loads them again. A long-lived assistant also switches by itself (``generation_check_s``)."""
        self._live = Loaded(self, None)
        self._checked = 0.0

    # ---- stages ----------------------------------------------------------------------------------
    def clean_question(self, question: Any) -> str:
        if not isinstance(question, str):
            raise InvalidQuestionError("The question must be text.")
        limit = self.settings.scope.max_question_chars
        if len(question) > limit:
            raise InvalidQuestionError(
                f"The question is {len(question):,} characters long; the limit is {limit:,}.",
                "Ask one short question at a time; paste no documents.")
        cleaned = normalise(question)
        if not re.search(r"\w", cleaned):
            raise InvalidQuestionError("The question is empty.")
        return cleaned

    def clean_history(self, history: Sequence[str] | None) -> list[str]:
        limit = self.settings.scope.max_question_chars
        return [normalise(h)[:limit] for h in (history or []) if isinstance(h, str)]

    def followup(self, question: str, history: Sequence[str] | None = None) -> FollowUp:
        """The question as the answer path reads it (cleaned, rewritten against the history)."""
        return self.rewriter(self.clean_question(question), self.clean_history(history))

    def crisis_gate(self, q: str, skip_classifier: bool) -> tuple[SafetyVerdict, list[float] | None]:
        """Crisis rules, then the classifier over the question's embedding (whose vector is kept for
        retrieval). Code, injections and one- to three-word questions skip the classifier."""
        verdict, vector = check_crisis(q), None
        s = self.settings.safety
        if (not verdict.crisis and s.semantic_crisis_check and not skip_classifier
                and len(re.findall(r"\w+", q)) >= s.min_words_for_classifier):
            vector = self.embedder.embed_query(q)
            verdict = self.crisis_check.check(vector)
            for second in self.second_opinions if verdict.crisis else ():
                verdict = second.review(verdict, q, vector)
        return verdict, vector

    def retrieve(self, followup: FollowUp, theme: str | None = None,
                 vector: Sequence[float] | None = None) -> RetrievalResult:
        """Retrieval for a (possibly rewritten) question: the same query the answer and the evals use.
        Only the new question decides whether to list every study, not an earlier turn."""
        query = followup.retrieval_query
        return self.retriever.retrieve(query, theme=theme, enumerate_all=self.retriever.is_enumerative(followup.new),
                                       vector=vector if query == followup.question else None)

    def candidates(self, question: str, history: Sequence[str] | None = None) -> tuple[RetrievalResult, list[str]]:
        """Retrieval for a question as the answer path runs it, and the query tokens the relevance
        gate reads (the evals and the relevance trainer use this, so they see what answers see)."""
        followup = self.followup(question, history)
        result = self.retrieve(followup)
        return result, self.query_tokens(followup)

    def query_tokens(self, followup: FollowUp) -> list[str]:
        return self.vocabulary.tokenizer(self.vocabulary.expand_query(followup.retrieval_query))

    # ---- the orchestrator ------------------------------------------------------------------------
    def ask(self, question: str, history: Sequence[str] | None = None, theme: str | None = None) -> Answer:
        """Answer one question; ``history`` holds the earlier user questions of this conversation.
        The whole answer comes from one index generation (see ``_watch``)."""
        run = self._run(question, history, theme)
        while True:
            try:
                next(run)
            except StopIteration as stop:
                answer: Answer = stop.value
                return answer

    def ask_stream(self, question: str, history: Sequence[str] | None = None,
                   theme: str | None = None) -> Iterator[str | Answer]:
        """``ask``, streamed: pieces of answer text as a streaming composer verifies them, then the Answer
        (whose text starts with those pieces joined: nothing streamed is taken back)."""
        answer = yield from self._run(question, history, theme)
        yield answer

    def _compose(self, question: str, result: RetrievalResult) -> Generator[str, None, Composition]:
        stream = getattr(self.composer, "stream", None)
        if stream is None:
            return self.composer.compose(question, result)
        composition: Composition = yield from stream(question, result)
        return composition

    def _run(self, question: str, history: Sequence[str] | None, theme: str | None) -> Generator[str, None, Answer]:
        """The whole answer, pinned to one index generation (see ``_watch``); yields streamed text.

        A streamed answer may be resumed on another thread at each step (Gradio steps through generators
        in a thread pool), so the pin is lifted while suspended and put back on whichever thread resumes:
        every step reads the same generation, and no thread is left pinned to it afterwards."""
        loaded, owner = self._pin()
        steps = self._answer(question, history, theme)
        try:
            while True:
                try:
                    piece = next(steps)
                except StopIteration as stop:
                    answer: Answer = stop.value
                    return answer
                if owner:
                    self._pinned.loaded = None
                yield piece
                if owner:
                    self._pinned.loaded = loaded
        finally:
            if owner and getattr(self._pinned, "loaded", None) is loaded:
                self._pinned.loaded = None

    def _answer(self, question: str, history: Sequence[str] | None, theme: str | None) -> Generator[str, None, Answer]:
        t0 = time.perf_counter()
        q = self.clean_question(question)
        history = self.clean_history(history)
        trace: dict[str, Any] = {}

        plain = self.scope.plain_reason(q)
        verdict, vector = self.crisis_gate(q, skip_classifier=bool(plain and plain.skip_crisis_classifier))
        trace["safety"] = verdict.reason or "no crisis language"
        if verdict.crisis:
            log.info("crisis routing (%s)", verdict.reason)
            return Answer(question=q, status="crisis", answer=CRISIS_MESSAGE, reason="crisis language", trace=trace,
                          timings_ms={"retrieve": 0.0, "compose": 0.0, "total": _ms(t0)})

        followup = self.rewriter(q, history)
        trace["followup"] = followup.standalone if followup.rewritten else "standalone"
        self.retriever.check_theme(theme)
        t1 = time.perf_counter()
        result = self.retrieve(followup, theme, vector)
        t_retrieve = _ms(t1)
        retrieved = [{"chunk_id": sp.passage.id, "card_id": sp.passage.card_id, "score": round(sp.score, 6)}
                     for sp in result.passages]
        trace["retrieval"] = {"best_dense": round(result.best_dense, 4), "passages": len(result.passages),
                              "enumerated": len(result.enumerated_cards), "named": result.mentioned_cards}

        if not result.mentioned_cards:
            # A pattern read the question's own words, so the classifier's veto judges those too (a follow-up's
            # rewrite adds the earlier turn: "which antidepressant works best for them?" after a supervision
            # question would read as a supervision question).
            own = vector if plain is not None and vector is not None else result.query_vector
            plain, decided = self.scope.refusal(plain, own)
            if decided:
                trace["refusal"] = decided
        reason = plain.reason if plain else None
        if reason is None and not self.vocabulary.tokenizer(followup.standalone) and not result.mentioned_cards:
            reason = "the question has no words to search the evidence for"
        if reason is None and not self.scope.in_scope(q, followup, result, has_history=bool(history)):
            reason = "the question is not about implementing or supporting peer work in mental health services"
        trace["scope"] = reason or "in scope"
        coverage = self.coverage.assess(followup.new, result.query_vector)
        trace["coverage"] = {"gaps": [g.id for g, _ in coverage.gaps], "aspects": [a.id for a in coverage.aspects],
                             "main_gap": coverage.main_gap.id if coverage.main_gap else None}
        gap_topics, gap_instead = [g.topic for g, _ in coverage.gaps], [g.instead for g, _ in coverage.gaps]
        if reason is not None:
            # A refusal, or a question with no word tied to peer work, names only the gaps its words name: the gap
            # classifier learned from questions about peer work and guesses wildly on others ("What's 15% of 240?").
            if plain is not None or not self.scope.anchor.search(followup.standalone):
                gap_topics = [g.topic for g, term in coverage.gaps if term]
                gap_instead = [g.instead for g, term in coverage.gaps if term]
            nearest = plain.nearest if plain else ()
            in_domain = not (plain and plain.skip_crisis_classifier)
            return self._abstain(q, followup, reason, result, retrieved, t_retrieve, t0, trace, nearest=nearest,
                                 not_covered=gap_topics if in_domain else (), instead=gap_instead if in_domain else ())
        if coverage.main_gap is not None:
            return self._abstain(q, followup, f"the evidence here does not address {coverage.main_gap.topic}", result,
                                 retrieved, t_retrieve, t0, trace, not_covered=gap_topics, instead=gap_instead,
                                 lead_with_gap=True)
        t2 = time.perf_counter()
        result = self.gate_evidence(followup, result, coverage, theme)
        cited_cards = {sp.passage.card_id for sp in result.passages}
        # What the answer drew on: the passages the gate kept, with their relevance scores.
        retrieved = [{"chunk_id": sp.passage.id, "card_id": sp.passage.card_id, "score": round(sp.score, 6)}
                     for sp in result.passages]
        trace["relevance"] = {"kept": len(result.passages), "cards": len(cited_cards)}
        if not result.passages:
            return self._abstain(q, followup, "no passage in the evidence base answers this question", result,
                                 retrieved, t_retrieve, t0, trace)
        composition: Composition = yield from self._compose(followup.standalone, result)
        trace["compose"] = {"citations": len(composition.citations), "strategies": len(composition.strategies)}
        if composition.stats is not None:
            trace["llm"] = composition.stats
        if not composition.citations:
            return self._abstain(q, followup, "no passage in the evidence base supports an answer", result,
                                 retrieved, t_retrieve, t0, trace)
        cited = {c.card_id for c in composition.citations}
        quoted = [c.quote for c in composition.citations]
        topics = [g.topic for g, _ in coverage.gaps] + [
            a.label for a in self.coverage.uncovered_aspects(coverage, cited, quoted)]
        text = composition.answer
        if topics:
            text += "\n\n**Not covered.** " + not_covered_text(topics, [g.instead for g, _ in coverage.gaps])
        return Answer(
            question=q, status="answered", answer=text, strategies=composition.strategies,
            citations=composition.citations, evidence=dict(composition.evidence), retrieved=retrieved,
            not_covered=topics, standalone_question=followup.standalone, trace=trace,
            timings_ms={"retrieve": t_retrieve, "compose": _ms(t2), "total": _ms(t0)},
        )

    def _abstain(self, q: str, followup: FollowUp, reason: str, result: RetrievalResult,
                 retrieved: list[dict[str, Any]], t_retrieve: float, t0: float, trace: dict[str, Any], *,
                 nearest: Sequence[str] = (), not_covered: Sequence[str] = (), instead: Sequence[str] = (),
                 lead_with_gap: bool = False) -> Answer:
        """Decline with a one-line reason, the nearest topics the evidence does cover (a refusal's
        own pointers first) and, for a known gap, what a manager can do instead."""
        n = self.settings.scope.nearest_topics
        keys = [tuple(k.split("/", 1)) for k in nearest if "/" in k]
        keys += [(m.theme, m.strategy) for m in result.strategy_matches if (m.theme, m.strategy) not in keys]
        topics = [self.taxonomy.strategy_title(t, s) for t, s in keys[:n]]
        text = abstention_text(None if lead_with_gap else reason, topics, not_covered=not_covered, instead=instead)
        return Answer(question=q, status="abstained", answer=text, reason=reason, nearest_topics=topics,
                      not_covered=list(not_covered), standalone_question=followup.standalone, retrieved=retrieved,
                      trace=trace, timings_ms={"retrieve": t_retrieve, "compose": 0.0, "total": _ms(t0)})


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


class Loaded:
    """What the answer path reads from one index generation: the corpus, the retriever (passages,
    BM25, vectors), the coverage check and the composer (which reads the retriever's IDF). Each part
    loads lazily; a live switch builds them all first (``build``)."""

    def __init__(self, owner: Assistant, generation: str | None, *, fresh: bool = False) -> None:
        self._owner = owner
        self.generation = generation
        self.fresh = fresh
        self._lock = threading.Lock()
        self._store: Any | None = None

    @property
    def built(self) -> bool:
        return "retriever" in self.__dict__

    @property
    def store(self) -> Any:
        """The owner's store (given, or opened on first use) for the first generation; a store opened
        afresh for a later one (see ``fresh_store``)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    o = self._owner
                    if o._store is not None:
                        self._store = o._store
                    elif self.fresh:
                        self._store = fresh_store(o.settings.index)
                    else:
                        self._store = EvidenceStore(o.settings.index)
        return self._store

    @cached_property
    def corpus(self) -> Corpus:
        s = self._owner.settings
        return load_corpus(s.index.corpus_dir, s.index.max_card_bytes)

    @cached_property
    def retriever(self) -> HybridRetriever:
        o = self._owner
        return HybridRetriever(o.settings.retrieval, o.embedder, o.taxonomy, o.vocabulary, self.store,
                               cache_dir=o.settings.index.index_dir)

    @cached_property
    def coverage(self) -> CoverageCheck:
        o = self._owner
        gaps = load_gaps(o.settings.index.data_file(GAPS_FILE))
        r = o.settings.relevance
        return CoverageCheck(o.vocabulary, gaps, self.corpus.cards, o.taxonomy,
                             gap_model=load_gap_model(str(getattr(o.embedder, "name", ""))) if r.semantic_gaps else None,
                             gap_threshold=r.gap_threshold)

    @cached_property
    def composer(self) -> Composer:
        o = self._owner
        if o._composer is not None:
            return o._composer
        grounded = GroundedComposer(o.settings.compose, o.taxonomy, o.vocabulary, self.retriever.idf)
        if o.settings.compose.composer == "llm":
            from assistant.compose.llm import LLMComposer

            return LLMComposer(o.settings.llm, grounded, o.vocabulary.tokenizer, chat_model=o._chat_model)
        return grounded

    def build(self) -> None:
        """Load every part now (a live switch does this before the swap, so no request waits)."""
        _ = self.retriever.index, self.coverage, self.composer
        self.generation = self.retriever.generation or self.generation
