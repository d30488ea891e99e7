"""Hybrid retrieval: dense (Chroma) + BM25 (rank_bm25), fused by reciprocal rank, with diversity.

The query is embedded once; the same vector also ranks the taxonomy's strategies, which lets an
enumerative question ("which studies looked at supervision?") list every card on that strategy.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
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
    r"\b(which|what) (other )?(studies|study|papers|sources|reviews|articles|research projects|cards|trials)\b|"
    r"\b(list|name|show( me)?)( all| every| the)? (the )?(studies|papers|sources|reviews|articles|cards|trials)\b|"
    r"\bhow many (studies|papers|sources|reviews|articles|trials)\b|"
    r"\ball (of )?(the )?(studies|papers|sources|reviews|articles) (on|about|that|which|looking|covering)\b|"
    r"\b(is|are) there (any )?(other )?(studies|papers|reviews|trials) (on|about|that|which|looking)\b",
    re.IGNORECASE)


_BRITISH = re.compile(r"^(organ|recogn|priorit|special|util|normal|stigmat|formal|professional|categor|emphas|"
                      r"summar|optim|minim|maxim|real|standard|author|central|final|person|institution|legit|"
                      r"mobil|familiar|human|apolog|character|capital|critic|visual|conceptual|operational)is")


@lru_cache(maxsize=100_000)
def _stem(word: str) -> str:
    import snowballstemmer

    return str(snowballstemmer.stemmer("english").stemWord(_BRITISH.sub(r"\1iz", word)))


def tokenize(text: str) -> list[str]:
    """Lower-case, stemmed word tokens without stop words (British -ise spellings folded to -ize)."""
    return [_stem(t) for t in re.findall(r"[a-z0-9]+", text.lower()) if t not in STOPWORDS and len(t) > 1]


# Managers' words → the words the cards use (added to the BM25 query only; dense retrieval copes with
# paraphrase on its own).
SYNONYMS: dict[str, str] = {
    "onboarding": "induction orientation", "onboard": "induction orientation", "line management": "supervision",
    "line manager": "supervisor supervision", "burnout": "wellbeing stress support", "burn out": "wellbeing stress",
    "psychiatrist": "clinical staff", "psychiatrists": "clinical staff", "clinicians": "clinical staff",
    "doctors": "clinical staff", "nurses": "clinical staff", "buy-in": "commitment support",
    "buy in": "commitment support", "pay grade": "pay conditions", "pay grades": "pay conditions",
    "salary": "pay conditions", "wages": "pay conditions", "hiring": "recruitment", "hire": "recruitment",
    "job ad": "recruitment job description", "advert": "recruitment", "psw": "peer support worker",
    "psws": "peer support workers", "cps": "certified peer specialist", "lived experience staff": "peer workers",
    "fixed-term": "job security", "contracts": "job security", "buddy": "mentoring", "retention": "keep support",
    "turnover": "retention job security", "pilot money": "funding sustain", "sign-off": "leadership commitment",
    "execs": "executives senior leaders", "exec": "executive senior leader", "c-suite": "executives senior leaders",
    "board": "leadership", "ceo": "executive leadership", "hr": "human resources policies",
    "rct": "randomised randomized controlled trial", "rcts": "randomised randomized controlled trials",
    "experiment": "trial", "consultants": "psychiatrists clinical staff",
}
_SYNONYM_RE = re.compile(r"\b(" + "|".join(sorted((re.escape(k) for k in SYNONYMS), key=len, reverse=True)) + r")\b",
                         re.IGNORECASE)


def expand_query(query: str) -> str:
    """Append the card vocabulary for manager words found in the query."""
    extra = [SYNONYMS[m.group(1).lower()] for m in _SYNONYM_RE.finditer(query)]
    return f"{query} {' '.join(extra)}" if extra else query


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
    mentioned_cards: list[str] = field(default_factory=list)
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
        self._strategy_tokens: list[set[str]] = []
        self._strategy_vectors: Any = None
        self._by_strategy: dict[tuple[str, str], list[Passage]] = {}
        self._surnames: dict[str, set[str]] = {}

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
                    surnames: dict[str, set[str]] = {}
                    for p in passages:
                        for author in str(p.meta.get("authors") or "").split(";"):
                            name = author.split(",")[0].strip()
                            if len(name) > 2:
                                surnames.setdefault(name.lower(), set()).add(p.card_id)
                    self._surnames = surnames
                    self._strategy_keys = [(t.id, s) for t in self.taxonomy.themes.values() for s in t.strategies]
                    self._strategy_tokens = [set(tokenize(f"{s.replace('-', ' ')} {self.taxonomy.themes[t].strategies[s]}"))
                                             for t, s in self._strategy_keys]
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
            for i, title_tokens in enumerate(self._strategy_tokens):
                shared = q_tokens & title_tokens
                sims[i] += 0.05 * sum(min(max(self.idf(t), 0.0), 3.0) for t in shared)
        order = np.argsort(-sims)[:top]
        return [(*self._strategy_keys[i], float(sims[i])) for i in order]

    def mentioned_cards(self, question: str) -> list[str]:
        """Cards whose author the question names ("What did Kemp and Henderson find?", "the Byrne 2019
        study"). A bare capitalised surname counts; a lower-case word ("grant") does not."""
        self._ensure()
        found: dict[str, int] = {}
        for m in re.finditer(r"\b([A-Z][a-zA-Z'\-]+)(?:\s+(?:et al\.?|and colleagues))?(?:\s*\(?((?:19|20)\d\d)\)?)?", question):
            name, year = m.group(1).lower(), m.group(2)
            if name not in self._surnames or (m.start() == 0 and not year and name in STOPWORDS):
                continue
            for card in self._surnames[name]:
                if year and not card.endswith(year) and f"-{year}" not in card:
                    continue
                found[card] = found.get(card, 0) + 1
        if not found:
            return []
        best = max(found.values())
        return sorted(c for c, n in found.items() if n == best)

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
            scores = self._bm25.get_scores(tokenize(expand_query(query)))
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
            entry["score"] += self.settings.dense_weight / (self.settings.rrf_k + rank)
            entry["dense"], entry["dense_rank"] = sim, rank
        for rank, (p, _) in enumerate(bm25_hits, 1):
            entry = fused.setdefault(p.id, {"p": p, "score": 0.0})
            entry["score"] += self.settings.bm25_weight / (self.settings.rrf_k + rank)
            entry["bm25_rank"] = rank
        ranked = sorted(fused.values(), key=lambda e: (-e["score"], e["p"].card_id, e["p"].ordinal))
        scored = [ScoredPassage(e["p"], e["score"], e.get("dense"), e.get("bm25_rank"), e.get("dense_rank"))
                  for e in ranked]

        mentioned = self.mentioned_cards(query)
        if mentioned:
            # Put the named studies first: their passages in fused order, then the rest.
            top = scored[0].score if scored else 1.0
            named = [p for p in passages if p.card_id in mentioned and (not theme or p.theme == theme)]
            fused_rank = {sp.passage.id: sp for sp in scored}
            boosted = sorted(named, key=lambda p: (-(fused_rank[p.id].score if p.id in fused_rank else 0.0), p.ordinal))
            head = [ScoredPassage(p, top + 1.0 - i * 1e-3, fused_rank[p.id].dense if p.id in fused_rank else None)
                    for i, p in enumerate(boosted)]
            scored = head + [sp for sp in scored if sp.passage.card_id not in mentioned]

        best_dense = max((s for _, s in dense_hits), default=0.0)
        matches = self.strategy_matches(vector, query=query) if mode != "bm25" else []
        enumerate_all = is_enumerative(query) if enumerate_all is None else enumerate_all
        result = RetrievalResult([], best_dense, list(vector), matches, timings_ms=timings, mentioned_cards=mentioned)
        if enumerate_all and matches:
            result.passages, result.enumerated_cards = self._enumerate(scored, matches, theme)
        if not result.passages:
            result.passages = diversify(scored, k, self.settings.max_per_card,
                                        {c: max(self.settings.max_per_card, 3) for c in mentioned})
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


def diversify(scored: Sequence[ScoredPassage], k: int, max_per_card: int,
              limits: dict[str, int] | None = None) -> list[ScoredPassage]:
    """Take the best ``k`` passages with at most ``max_per_card`` from any one card (``limits``
    raises the cap for named cards)."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    per_card: dict[str, int] = {}
    out: list[ScoredPassage] = []
    for sp in scored:
        cap = (limits or {}).get(sp.passage.card_id, max_per_card)
        if per_card.get(sp.passage.card_id, 0) >= cap:
            continue
        per_card[sp.passage.card_id] = per_card.get(sp.passage.card_id, 0) + 1
        out.append(sp)
        if len(out) == k:
            break
    return out
