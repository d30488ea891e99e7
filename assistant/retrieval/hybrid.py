"""Hybrid retrieval: dense (exact cosines over the snapshot's vectors, or Chroma) + BM25, fused by reciprocal rank, named studies first, then
enumeration or diversity. The query is embedded once; the same vector ranks the taxonomy's
strategies, which lets "which studies looked at supervision?" list every card on that strategy."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from assistant.errors import IndexNotBuiltError, InvalidQuestionError
from assistant.retrieval import stages
from assistant.retrieval.index import PassageIndex, StrategyMatch
from assistant.settings import RetrievalSettings
from ingest import snapshot
from ingest.pipeline import current_generation
from ingest.snapshot import Snapshot, load_snapshot
from ingest.taxonomy import Taxonomy
from ingest.types import QUESTION_SECTION, Embedder, ScoredPassage
from ingest.vocabulary import Vocabulary

Mode = Literal["hybrid", "dense", "bm25"]


@dataclass
class RetrievalResult:
    passages: list[ScoredPassage]  # what an answer draws on (diversified, or the enumeration)
    best_dense: float
    query_vector: list[float]
    strategy_matches: list[StrategyMatch] = field(default_factory=list)
    enumerated_cards: list[str] = field(default_factory=list)
    mentioned_cards: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    candidates: list[ScoredPassage] = field(default_factory=list)  # every fused candidate, best first
    lexical_scores: Any = None  # BM25 score of every passage of the index (numpy array), for the relevance gate
    cosines: Any = None  # the question's cosine with every passage (numpy array; None without stored vectors)


class HybridRetriever:
    """Loads the passages from the store once (lazily, thread-safe) and answers queries from
    memory + Chroma."""

    def __init__(self, settings: RetrievalSettings, embedder: Embedder, taxonomy: Taxonomy, vocabulary: Vocabulary,
                 store: Any, cache_dir: Path | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.taxonomy = taxonomy
        self.vocabulary = vocabulary
        self.tokenize = vocabulary.tokenizer
        self.store = store
        self.cache_dir = cache_dir
        self._enum_cues = [re.compile(p, re.IGNORECASE) for p in vocabulary.cues.enumerate]
        self._lock = threading.Lock()
        self._index: PassageIndex | None = None
        self.generation: str | None = None  # the index generation the loaded passages come from
        self.load_seconds = 0.0

    @property
    def index(self) -> PassageIndex:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = self._load_index()
        return self._index

    def _load_index(self) -> PassageIndex:
        """From the snapshot files of the index's current generation when the store is the real one
        (an index directory and collection name to find them by); built once from the store's
        passages and vectors (and saved) when they are missing or stale; a store without snapshots
        (a test double) is read directly."""
        t0 = time.perf_counter()
        index_dir = getattr(getattr(self.store, "settings", None), "index_dir", None)
        collection = str(getattr(self.store, "name", ""))
        snap: Snapshot | None = None
        if index_dir is not None and collection:
            generation = current_generation(index_dir, self.store)
            if generation:
                snap = load_snapshot(index_dir, generation, self.tokenize, collection)
            if snap is None:
                snap = snapshot.from_store(self.store, generation, index_dir, self.tokenize)
        else:
            snap = snapshot.from_store(self.store, None, None, self.tokenize, save=False)
        if not snap.passages:
            raise IndexNotBuiltError("The evidence index is empty.")
        index = PassageIndex(snap.passages, self.taxonomy, self.embedder, self.tokenize, snap.vectors,
                             cache_dir=self.cache_dir, lexical=snap.lexical)
        self.generation = snap.generation or None
        self.load_seconds = time.perf_counter() - t0
        return index

    def warm_up(self) -> None:
        _ = self.index
        self.embedder.embed_query("warm up")

    def reload(self) -> None:
        """Forget the loaded passages (after a reindex)."""
        with self._lock:
            self._index = None

    @property
    def passages(self) -> list[Any]:
        return self.index.passages

    def idf(self, token: str) -> float:
        return self.index.idf(token)

    def is_enumerative(self, question: str) -> bool:
        return stages.is_enumerative(question, self._enum_cues)

    def check_theme(self, theme: str | None) -> None:
        if theme is not None and theme not in self.taxonomy.themes:
            raise InvalidQuestionError(f"Unknown theme '{theme}'.",
                                       f"Use one of: {', '.join(self.taxonomy.themes)} (or no theme filter).")

    def mentioned_cards(self, question: str) -> list[str]:
        return stages.mentioned_cards(question, self.index.surnames)

    def strategy_matches(self, vector: Sequence[float], query: str = "") -> list[StrategyMatch]:
        s = self.settings
        return stages.strategy_matches(self.index, vector, set(self.tokenize(query)) if query else set(),
                                       top=s.strategy_matches, word_boost=s.strategy_word_boost,
                                       idf_cap=s.strategy_idf_cap)

    def retrieve(self, query: str, *, k: int | None = None, theme: str | None = None, mode: Mode = "hybrid",
                 enumerate_all: bool | None = None, vector: Sequence[float] | None = None) -> RetrievalResult:
        """Top passages for ``query``; at most ``max_per_card`` per card unless enumerating."""
        self.check_theme(theme)
        s, index = self.settings, self.index
        k = k or s.top_k
        n_cand = max(s.candidates, k)
        timings: dict[str, float] = {}

        t = time.perf_counter()
        if vector is None:
            vector = self.embedder.embed_query(query)
        timings["embed"] = _ms(t)
        t = time.perf_counter()
        cosines = index.cosines(vector)
        dense_rows = None
        dense: stages.Hits = []
        if mode not in ("hybrid", "dense"):
            pass
        elif cosines is not None:  # exact cosines over the snapshot's vectors: no store round trip
            dense_rows = stages.exact_dense_rows(index, cosines, n_cand, theme)
        else:
            dense = stages.dense_hits(self.store, vector, n_cand, theme)
        timings["dense"] = _ms(t)
        t = time.perf_counter()
        scores = stages.lexical_scores(index, self.tokenize(self.vocabulary.expand_query(query)))
        lexical_rows = stages.lexical_rows(index, scores, n_cand, theme) if mode in ("hybrid", "bm25") else None
        timings["bm25"] = _ms(t)

        best_dense = index.best_text_cosine(cosines)
        if best_dense is None:  # a store that cannot list its vectors: the best text hit it returned
            best_dense = max((sim for p, sim in dense if p.section != QUESTION_SECTION), default=0.0)
        # Questions lifted to the sections they point at (on rows, when the hits are rows).
        dense = index.lift_rows(*dense_rows) if dense_rows is not None else index.lift(dense)
        lexical = index.lift_rows(*lexical_rows) if lexical_rows is not None else []
        scored = stages.fuse(dense, lexical, dense_weight=s.dense_weight, lexical_weight=s.bm25_weight, rrf_k=s.rrf_k)
        mentioned = self.mentioned_cards(query)
        if mentioned:
            scored = stages.named_first(scored, index.passages, mentioned, theme)
        matches = self.strategy_matches(vector, query=query) if mode != "bm25" else []
        result = RetrievalResult([], best_dense, list(vector), matches,
                                 timings_ms=timings, mentioned_cards=mentioned, candidates=scored,
                                 lexical_scores=scores, cosines=cosines)
        if (self.is_enumerative(query) if enumerate_all is None else enumerate_all) and matches:
            result.passages, result.enumerated_cards = stages.enumerate_strategy(
                scored, matches, index.by_strategy, theme, margin=s.enumeration_margin,
                max_strategies=s.enumeration_max_strategies)
        if not result.passages:
            cap = max(s.max_per_card, s.max_per_named_card)
            result.passages = stages.diversify(scored, k, s.max_per_card, {c: cap for c in mentioned})
        return result


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
