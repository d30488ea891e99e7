"""Hybrid retrieval: dense (Chroma) + BM25 (rank_bm25), fused by reciprocal rank, with diversity.

The query is embedded once; the same vector also ranks the taxonomy's strategies, which lets an
enumerative question ("which studies looked at supervision?") list every card on that strategy.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

from assistant.errors import IndexNotBuiltError, InvalidQuestionError
from assistant.settings import Settings
from assistant.types import Embedder, Passage, ScoredPassage
from ingest.cards import Taxonomy

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "bm25"]

STOPWORDS = frozenset("""
a an and are as at be been being but by can could did do does doing for from had has have how i if in into is it
its me my of on or our ours should so than that the their them then there these they this those to up us was we
were what when where which who whom why will with would you your yours about any all also just more most other some
such very own same only both each few nor not no too s t don now ve ll re d m o y am
""".split())

_ENUM_RE = re.compile(
    r"\b(which|what|list|name|show|how many)\b[^?]{0,40}\b(studies|study|papers|papers|sources|reviews|research|cards|"
    r"evidence)\b|\b(list|name)\s+(all|every|the)\b|\ball (the )?(studies|papers|sources|reviews)\b",
    re.IGNORECASE)


_STEMMER: Any = None
_BRITISH = re.compile(r"^(organ|recogn|priorit|special|util|normal|stigmat|formal|professional|categor|emphas|"
                      r"summar|optim|minim|maxim|real|standard|author|central|final|person|institution|legit|"
                      r"mobil|familiar|human|apolog|character|capital|critic|visual|conceptual|operational)is")


def tokenize(text: str) -> list[str]:
    """Lower-case, stemmed word tokens without stop words (British -ise spellings folded to -ize)."""
    global _STEMMER
    if _STEMMER is None:
        import snowballstemmer

        _STEMMER = snowballstemmer.stemmer("english")
    words = [_BRITISH.sub(r"\1iz", t) for t in re.findall(r"[a-z0-9]+", text.lower())
             if t not in STOPWORDS and len(t) > 1]
    return _STEMMER.stemWords(words)


def is_enumerative(question: str) -> bool:
    """'Which studies looked at X?', 'List all the sources on Y' and similar."""
    return bool(_ENUM_RE.search(question))


@dataclass
class RetrievalResult:
    passages: list[ScoredPassage]
    best_dense: float
    query_vector: list[float]
    strategy_matches: list[tuple[str, str, float]] = field(default_factory=list)  # (theme, strategy, cosine)
    enumerated_cards: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


class HybridRetriever:
    """Loads the passages from the store once (lazily) and answers queries from memory + Chroma."""

    def __init__(self, settings: Settings, embedder: Embedder, taxonomy: Taxonomy, store: Any | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.taxonomy = taxonomy
        self._store = store
        self._lock = threading.Lock()
        self._passages: list[Passage] | None = None
        self._bm25: Any = None
        self._strategy_keys: list[tuple[str, str]] = []
        self._strategy_vectors: Any = None
        self._by_strategy: dict[tuple[str, str], list[Passage]] = {}

    # ---- lazy state ----------------------------------------------------------------------------
    @property
    def store(self) -> Any:
        if self._store is None:
            from ingest.store import EvidenceStore

            self._store = EvidenceStore(self.settings)
        return self._store

    def warm_up(self) -> None:
        self._ensure()
        self.embedder.embed_query("warm up")

    def reload(self) -> None:
        """Forget the cached passages (after a reindex)."""
        with self._lock:
            self._passages = None

    def _ensure(self) -> list[Passage]:
        if self._passages is None:
            with self._lock:
                if self._passages is None:
                    passages = self.store.passages()
                    if not passages:
                        raise IndexNotBuiltError("The evidence index is empty.")
                    from rank_bm25 import BM25Okapi

                    self._bm25 = BM25Okapi([tokenize(p.embed_text()) for p in passages])
                    by_strategy: dict[tuple[str, str], list[Passage]] = {}
                    for p in passages:
                        if p.theme and p.strategy:
                            by_strategy.setdefault((p.theme, p.strategy), []).append(p)
                    self._by_strategy = by_strategy
                    self._strategy_keys = [(t.id, s) for t in self.taxonomy.themes.values() for s in t.strategies]
                    texts = [f"{self.taxonomy.themes[t].strategies[s]}. {self.taxonomy.themes[t].strategy_descriptions[s]}"
                             for t, s in self._strategy_keys]
                    import numpy as np

                    embed_many = getattr(self.embedder, "embed_queries", self.embedder.embed_documents)
                    self._strategy_vectors = np.asarray(embed_many(texts), dtype="float32")
                    self._passages = passages
        return self._passages

    @property
    def passages(self) -> list[Passage]:
        return self._ensure()

    def idf(self, token: str) -> float:
        self._ensure()
        return float(self._bm25.idf.get(token, 0.0))

    # ---- retrieval -----------------------------------------------------------------------------
    def check_theme(self, theme: str | None) -> None:
        if theme is not None and theme not in self.taxonomy.themes:
            raise InvalidQuestionError(f"Unknown theme '{theme}'.",
                                       f"Use one of: {', '.join(self.taxonomy.themes)} (or no theme filter).")

    def strategy_matches(self, vector: Sequence[float], top: int = 5, query: str = "") -> list[tuple[str, str, float]]:
        """Taxonomy strategies nearest to the question: cosine plus a small boost for each
        (IDF-weighted) word the question shares with the strategy's id and title."""
        import numpy as np

        self._ensure()
        sims = self._strategy_vectors @ np.asarray(vector, dtype="float32")
        if query:
            q_tokens = set(tokenize(query))
            for i, (theme, strategy) in enumerate(self._strategy_keys):
                title = f"{strategy.replace('-', ' ')} {self.taxonomy.themes[theme].strategies[strategy]}"
                shared = q_tokens & set(tokenize(title))
                sims[i] += 0.05 * sum(min(max(self.idf(t), 0.0), 3.0) for t in shared)
        order = np.argsort(-sims)[:top]
        return [(*self._strategy_keys[i], float(sims[i])) for i in order]

    def retrieve(self, query: str, *, k: int | None = None, theme: str | None = None, mode: Mode = "hybrid",
                 enumerate_all: bool | None = None, vector: Sequence[float] | None = None) -> RetrievalResult:
        """Top passages for ``query``; at most ``max_per_card`` per card unless enumerating."""
        import numpy as np

        self.check_theme(theme)
        passages = self._ensure()
        k = k or self.settings.top_k
        n_cand = max(self.settings.candidates, k)
        timings: dict[str, float] = {}

        t = time.perf_counter()
        if vector is None:
            vector = self.embedder.embed_query(query)
        timings["embed"] = (time.perf_counter() - t) * 1000

        dense_hits: list[tuple[Passage, float]] = []
        t = time.perf_counter()
        if mode in ("hybrid", "dense"):
            where = {"theme": theme} if theme else None
            dense_hits = self.store.query(vector, n_cand, where=where)
        timings["dense"] = (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        bm25_hits: list[tuple[Passage, float]] = []
        if mode in ("hybrid", "bm25"):
            scores = self._bm25.get_scores(tokenize(query))
            order = np.argsort(-scores)
            for i in order:
                if scores[i] <= 0 or len(bm25_hits) >= n_cand:
                    break
                if theme and passages[i].theme != theme:
                    continue
                bm25_hits.append((passages[i], float(scores[i])))
        timings["bm25"] = (time.perf_counter() - t) * 1000

        # Reciprocal-rank fusion.
        fused: dict[str, dict[str, Any]] = {}
        for rank, (p, sim) in enumerate(dense_hits, 1):
            entry = fused.setdefault(p.id, {"p": p, "score": 0.0})
            entry["score"] += 1.0 / (self.settings.rrf_k + rank)
            entry["dense"], entry["dense_rank"] = sim, rank
        for rank, (p, _) in enumerate(bm25_hits, 1):
            entry = fused.setdefault(p.id, {"p": p, "score": 0.0})
            entry["score"] += 1.0 / (self.settings.rrf_k + rank)
            entry["bm25_rank"] = rank
        ranked = sorted(fused.values(), key=lambda e: (-e["score"], e["p"].card_id, e["p"].ordinal))
        scored = [ScoredPassage(e["p"], e["score"], e.get("dense"), e.get("bm25_rank"), e.get("dense_rank"))
                  for e in ranked]

        best_dense = max((s for _, s in dense_hits), default=0.0)
        matches = self.strategy_matches(vector, query=query) if mode != "bm25" else []
        enumerate_all = is_enumerative(query) if enumerate_all is None else enumerate_all
        result = RetrievalResult([], best_dense, list(vector), matches, timings_ms=timings)
        if enumerate_all and matches:
            result.passages, result.enumerated_cards = self._enumerate(scored, matches, theme)
        if not result.passages:
            result.passages = diversify(scored, k, self.settings.max_per_card)
        return result

    def _enumerate(self, scored: list[ScoredPassage], matches: list[tuple[str, str, float]],
                   theme: str | None) -> tuple[list[ScoredPassage], list[str]]:
        """Every card with a strategy section on the best-matching strategy (one passage per card)."""
        top_theme, top_strategy, top_sim = matches[0]
        if theme and top_theme != theme:
            candidates = [m for m in matches if m[0] == theme]
            if not candidates:
                return [], []
            top_theme, top_strategy, top_sim = candidates[0]
        # Strategies nearly as close as the best one are enumerated too ("supervision and mentoring").
        keys = [(t, s) for t, s, sim in matches if (not theme or t == theme) and sim >= top_sim - 0.05][:2]
        rank = {sp.passage.id: sp for sp in scored}
        chosen: dict[str, ScoredPassage] = {}
        for key in keys:
            for p in self._by_strategy.get(key, []):
                sp = rank.get(p.id) or ScoredPassage(p, 0.0)
                if p.card_id not in chosen or sp.score > chosen[p.card_id].score:
                    chosen[p.card_id] = sp
        ordered = sorted(chosen.values(), key=lambda sp: (-sp.score, sp.passage.card_id))
        return ordered, [sp.passage.card_id for sp in ordered]


def diversify(scored: Sequence[ScoredPassage], k: int, max_per_card: int) -> list[ScoredPassage]:
    """Take the best ``k`` passages with at most ``max_per_card`` from any one card."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    per_card: dict[str, int] = {}
    out: list[ScoredPassage] = []
    for sp in scored:
        if per_card.get(sp.passage.card_id, 0) >= max_per_card:
            continue
        per_card[sp.passage.card_id] = per_card.get(sp.passage.card_id, 0) + 1
        out.append(sp)
        if len(out) == k:
            break
    return out
