"""The retrieval stages as plain functions, so each can be tested and measured alone."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from assistant.retrieval.index import PassageIndex, StrategyMatch
from ingest.text import STOPWORDS
from ingest.types import Passage, ScoredPassage

Hits = list[tuple[Passage, float]]


def dense_hits(store: Any, vector: Sequence[float], n: int, theme: str | None) -> Hits:
    """Nearest passages by cosine similarity in the vector store."""
    return list(store.query(vector, n, where={"theme": theme} if theme else None))


def top_rows(values: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` largest values, best first, ties by position (all values tied with the
    n-th are considered, so the choice among them is not left to the partition)."""
    if n <= 0 or not values.size:
        return np.zeros(0, dtype=int)
    if n < values.size:
        kth = np.partition(values, values.size - n)[values.size - n]
        cand = np.flatnonzero(values >= kth)
    else:
        cand = np.arange(values.size)
    return cand[np.lexsort((cand, -values[cand]))][:n]


def exact_dense_hits(index: PassageIndex, cosines: np.ndarray, n: int, theme: str | None) -> Hits:
    """Nearest passages by exact cosine over the loaded vectors (what the vector store's query gives,
    without approximation): one matrix-vector product, then the top ``n``, best first."""
    return index.hits(*exact_dense_rows(index, cosines, n, theme))


def exact_dense_rows(index: PassageIndex, cosines: np.ndarray, n: int,
                     theme: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``exact_dense_hits`` as passage rows and their cosines (float64)."""
    rows = index.theme_rows.get(theme, np.zeros(0, dtype=int)) if theme else None
    sims = cosines if rows is None else cosines[rows]
    if not sims.size:
        return np.zeros(0, dtype=np.intp), np.zeros(0)
    top = top_rows(sims, n)
    return (rows[top] if rows is not None else top), sims[top].astype("float64")


def lexical_scores(index: PassageIndex, query_tokens: Sequence[str]) -> np.ndarray:
    """BM25 score of every passage (row i is passage i)."""
    if not query_tokens:
        return np.zeros(len(index.passages))
    return np.asarray(index.bm25.get_scores(list(query_tokens)), dtype="float64")


#: Up to this many passages, BM25 hits come from a full sort (whose order of exactly tied scores the
#: golden answers were recorded with); above it, from the positive scores only, ties by passage order
#: (a full sort of 100,000 scores costs about 6 ms a query).
FULL_SORT_MAX = 20_000


def lexical_hits(index: PassageIndex, scores: np.ndarray, n: int, theme: str | None) -> Hits:
    """Best BM25 passages with a positive score."""
    return index.hits(*lexical_rows(index, scores, n, theme))


def lexical_rows(index: PassageIndex, scores: np.ndarray, n: int, theme: str | None) -> tuple[np.ndarray, np.ndarray]:
    """``lexical_hits`` as passage rows and their scores (float64)."""
    if scores.size <= FULL_SORT_MAX:
        order = np.argsort(-scores)
    else:
        pos = np.flatnonzero(scores > 0)
        if theme:
            pos = np.intersect1d(pos, index.theme_rows.get(theme, np.zeros(0, dtype=int)), assume_unique=True)
        order = pos[top_rows(scores[pos], n)]
    # Scores in descending order: the positive ones are a prefix, then the theme filter, then the first n.
    order = order[scores[order] > 0]
    if theme:
        order = order[index.theme_of_rows(order) == theme]
    order = order[:n]
    return order, scores[order].astype("float64")


def fuse(dense: Hits, lexical: Hits, *, dense_weight: float, lexical_weight: float, rrf_k: int) -> list[ScoredPassage]:
    """Reciprocal-rank fusion; ties broken by card id and position so the order is stable."""
    # One list per passage: [passage, score, dense, bm25_rank, dense_rank] (the same sums, in the same order).
    fused: dict[str, list[Any]] = {}
    for rank, (p, sim) in enumerate(dense, 1):
        entry = fused.get(p.id)
        if entry is None:
            fused[p.id] = entry = [p, 0.0, None, None, None]
        entry[1] += dense_weight / (rrf_k + rank)
        entry[2], entry[4] = sim, rank
    for rank, (p, _) in enumerate(lexical, 1):
        entry = fused.get(p.id)
        if entry is None:
            fused[p.id] = entry = [p, 0.0, None, None, None]
        entry[1] += lexical_weight / (rrf_k + rank)
        entry[3] = rank
    ranked = sorted(fused.values(), key=lambda e: (-e[1], e[0].card_id, e[0].ordinal))
    return [ScoredPassage(*e) for e in ranked]


_NAME = re.compile(r"\b([a-zA-Z][a-zA-Z'\-]+)(?:\s+(?:et al\.?|and colleagues))?(?:\s*\(?((?:19|20)\d\d)\)?)?")


def mentioned_cards(question: str, surnames: dict[str, set[str]]) -> list[str]:
    """Cards whose author the question names ("What did Kemp and Henderson find?", "the Byrne 2019
    study", "zeng 2021 review"). A capitalised surname counts alone; a lower-case word counts only with
    a year after it ("grant" alone is a word, "grant 2019" a citation)."""
    found: dict[str, int] = {}
    for m in _NAME.finditer(question):
        name, year = m.group(1).lower(), m.group(2)
        if name not in surnames or (m.start() == 0 and not year and name in STOPWORDS):
            continue
        if not year and not m.group(1)[0].isupper():
            continue
        for card in surnames[name]:
            if year and not card.endswith(year) and f"-{year}" not in card:
                continue
            found[card] = found.get(card, 0) + 1
    if not found:
        return []
    best = max(found.values())
    return sorted(c for c, n in found.items() if n == best)


def named_first(scored: list[ScoredPassage], passages: Sequence[Passage], named: Sequence[str],
                theme: str | None) -> list[ScoredPassage]:
    """Put the named studies' passages first (in fused order), then the rest."""
    top = scored[0].score if scored else 1.0
    mine = [p for p in passages if p.card_id in named and (not theme or p.theme == theme) and p.section != "question"]
    by_id = {sp.passage.id: sp for sp in scored}
    mine.sort(key=lambda p: (-(by_id[p.id].score if p.id in by_id else 0.0), p.ordinal))
    head = [ScoredPassage(p, top + 1.0 - i * 1e-3, by_id[p.id].dense if p.id in by_id else None)
            for i, p in enumerate(mine)]
    return head + [sp for sp in scored if sp.passage.card_id not in named]


def strategy_matches(index: PassageIndex, vector: Sequence[float], query_tokens: set[str], *, top: int,
                     word_boost: float, idf_cap: float) -> list[StrategyMatch]:
    """Taxonomy strategies nearest to the question: cosine plus a small boost for each
    (IDF-weighted) word the question shares with the strategy's id and title."""
    s = index.strategies
    sims = s.vectors @ np.asarray(vector, dtype="float32")
    if query_tokens:
        # Only the strategies that share a word with the question (the others would add 0.0),
        # in the same order, with the same sums.
        by_token = index.strategy_rows_by_token
        hit = sorted({i for t in query_tokens for i in by_token.get(t, ())})
        for i in hit:
            shared = query_tokens & s.tokens[i]
            sims[i] += word_boost * sum(min(max(index.idf(t), 0.0), idf_cap) for t in shared)
    order = np.argsort(-sims)[:top]
    out = []
    for i in order:
        theme, strategy = s.keys[int(i)]
        out.append(StrategyMatch(theme, strategy, float(sims[i])))
    return out


def is_enumerative(question: str, cues: Sequence[re.Pattern[str]]) -> bool:
    """'Which studies looked at X?', 'List all the sources on Y' and similar."""
    return any(c.search(question) for c in cues)


def enumerate_strategy(scored: Sequence[ScoredPassage], matches: Sequence[StrategyMatch],
                       by_strategy: dict[tuple[str, str], list[Passage]], theme: str | None, *,
                       margin: float, max_strategies: int) -> tuple[list[ScoredPassage], list[str]]:
    """Every card with a strategy section on the best-matching strategy (one passage per card);
    strategies within ``margin`` of the best are listed too ("supervision and mentoring")."""
    candidates = [m for m in matches if not theme or m.theme == theme]
    if not candidates:
        return [], []
    top_sim = candidates[0].score
    keys = [(m.theme, m.strategy) for m in candidates if m.score >= top_sim - margin][:max_strategies]
    rank = {sp.passage.id: sp for sp in scored}
    chosen: dict[str, ScoredPassage] = {}
    for key in keys:
        for p in by_strategy.get(key, []):
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
