"""What the answer path keeps in memory: the passages, their BM25 index, the strategy vectors and
the authors' surnames. Built once per loaded index generation."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ingest.snapshot import LexicalIndex
from ingest.taxonomy import Taxonomy
from ingest.text import Tokenizer
from ingest.types import QUESTION_SECTION, Embedder, Passage


@lru_cache(maxsize=1)
def _blas() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class StrategyMatch(NamedTuple):
    """A taxonomy strategy and how close it is to the question (cosine plus shared-word boost)."""

    theme: str
    strategy: str
    score: float


@dataclass(frozen=True)
class StrategyIndex:
    keys: list[tuple[str, str]]
    tokens: list[set[str]]
    vectors: np.ndarray


def strategy_vectors(embedder: Embedder, texts: Sequence[str], cache_dir: Path | None) -> np.ndarray:
    """The taxonomy's strategy texts embedded, cached beside the index (keyed by the model and the
    texts), so a cold start does not embed them again: that alone was about a quarter of a second."""
    key = hashlib.sha256(json.dumps([embedder.name, list(texts)]).encode()).hexdigest()[:16]
    path = cache_dir / f"strategy-vectors-{key}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape[0] == len(texts):
                return np.asarray(cached, dtype="float32")
        except (OSError, ValueError):
            pass  # a damaged cache is rebuilt below
    embed_many = getattr(embedder, "embed_queries", embedder.embed_documents)
    vectors = np.asarray(embed_many(list(texts)), dtype="float32")
    if path is not None and path.parent.is_dir():
        try:
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as tmp:
                np.save(tmp, vectors, allow_pickle=False)
            os.replace(tmp.name, path)
        except OSError:
            pass  # a read-only index directory: the vectors are simply recomputed next time
    return vectors


@dataclass(frozen=True)
class QuestionGroups:
    """Every passage's curated-question rows laid out for ``np.maximum.reduceat``: ``rows[starts[k]:
    starts[k+1]]`` are the question rows of passage ``owners[k]``; ``slot[r]`` is k for passage row r
    (-1 without questions)."""

    owners: np.ndarray
    starts: np.ndarray
    rows: np.ndarray
    slot: np.ndarray


@dataclass(frozen=True)
class GateLayout:
    """Per passage row, what the relevance gate groups by, as integer ids: its (theme, strategy) key,
    whether it is a strategy section, its card, and its group (the key for a strategy section, the
    card for any other)."""

    keys: list[tuple[str, str]]
    key_ids: dict[tuple[str, str], int]
    cards: list[str]
    card_ids: dict[str, int]
    key: np.ndarray
    strategy: np.ndarray
    card: np.ndarray
    group: np.ndarray
    n_groups: int


class PassageIndex:
    """The loaded passages and the lookups built from them."""

    def __init__(self, passages: Sequence[Passage], taxonomy: Taxonomy, embedder: Embedder,
                 tokenizer: Tokenizer, vectors: Sequence[Sequence[float]] | np.ndarray | None = None,
                 cache_dir: Path | None = None, lexical: LexicalIndex | None = None) -> None:
        if not passages:
            raise ValueError("a PassageIndex needs at least one passage")
        self.passages = list(passages)
        self.taxonomy = taxonomy
        self.tokenizer = tokenizer
        # BM25 as a sparse matrix (bm25s), loaded from the snapshot or built here; scores equal
        # rank_bm25's BM25Okapi (tests/ingest/test_snapshot.py).
        self.bm25: LexicalIndex = lexical if lexical is not None else LexicalIndex.build(
            [tokenizer(p.embed_text()) for p in self.passages])
        self.by_strategy: dict[tuple[str, str], list[Passage]] = {}
        for p in self.passages:
            if p.theme and p.strategy and p.section != QUESTION_SECTION:
                self.by_strategy.setdefault((p.theme, p.strategy), []).append(p)
        # Curated questions are keys to the section they answer (the multi-vector pattern): each
        # question passage points at the first passage of its section.
        first: dict[tuple[str, str], Passage] = {}
        for p in self.passages:
            if p.section != QUESTION_SECTION:
                first.setdefault((p.card_id, p.heading), p)
        self.target: dict[str, Passage] = {}
        self.questions_of: dict[str, list[int]] = {}
        for i, p in enumerate(self.passages):
            if p.section == QUESTION_SECTION and (p.card_id, p.heading) in first:
                t = first[(p.card_id, p.heading)]
                self.target[p.id] = t
                self.questions_of.setdefault(t.id, []).append(i)
        self.surnames: dict[str, set[str]] = {}
        for p in self.passages:
            for author in str(p.meta.get("authors") or "").split(";"):
                name = author.split(",")[0].strip()
                if len(name) > 2:
                    self.surnames.setdefault(name.lower(), set()).add(p.card_id)
        self.strategies = self._strategy_index(embedder, cache_dir)
        # Stored passage vectors (row i is passage i), so every candidate gets a cosine, not only
        # the ones the vector store returned; None with a store that cannot list them.
        self.vectors = np.asarray(vectors, dtype="float32") if vectors is not None else None
        self.position = {p.id: i for i, p in enumerate(self.passages)}
        theme_rows: dict[str, list[int]] = {}
        for i, p in enumerate(self.passages):
            if p.theme:
                theme_rows.setdefault(p.theme, []).append(i)
        self.theme_rows = {t: np.asarray(rows, dtype=int) for t, rows in theme_rows.items()}
        self.text_rows = np.asarray([i for i, p in enumerate(self.passages) if p.section != QUESTION_SECTION], dtype=int)
        self.question_rows = np.asarray([i for rows in self.questions_of.values() for i in rows], dtype=int)

    @cached_property
    def strategy_rows_by_token(self) -> dict[str, tuple[int, ...]]:
        """For each word of a strategy's id and title, the strategies (rows of ``strategies``) that have it."""
        rows: dict[str, list[int]] = {}
        for i, tokens in enumerate(self.strategies.tokens):
            for t in tokens:
                rows.setdefault(t, []).append(i)
        return {t: tuple(r) for t, r in rows.items()}

    @cached_property
    def question_groups(self) -> QuestionGroups:
        """Built once per loaded index (a new generation is a new PassageIndex)."""
        owners: list[int] = []
        starts: list[int] = []
        rows: list[int] = []
        for pid, qrows in self.questions_of.items():
            if not qrows:
                continue
            owners.append(self.position[pid])
            starts.append(len(rows))
            rows.extend(qrows)
        slot = np.full(len(self.passages), -1, dtype=np.intp)
        slot[np.asarray(owners, dtype=np.intp)] = np.arange(len(owners), dtype=np.intp)
        return QuestionGroups(np.asarray(owners, dtype=np.intp), np.asarray(starts, dtype=np.intp),
                              np.asarray(rows, dtype=np.intp), slot)

    @cached_property
    def gate_layout(self) -> GateLayout:
        """Built once per loaded index (a new generation is a new PassageIndex)."""
        key_ids: dict[tuple[str, str], int] = {}
        card_ids: dict[str, int] = {}
        key, card, strategy = [], [], []
        for p in self.passages:
            key.append(key_ids.setdefault((p.theme or "", p.strategy or ""), len(key_ids)))
            card.append(card_ids.setdefault(p.card_id, len(card_ids)))
            strategy.append(p.section == "strategy")
        key_a, card_a = np.asarray(key, dtype=np.intp), np.asarray(card, dtype=np.intp)
        strategy_a = np.asarray(strategy, dtype=bool)
        return GateLayout(list(key_ids), key_ids, list(card_ids), card_ids, key_a, strategy_a, card_a,
                          np.where(strategy_a, key_a, len(key_ids) + card_a), len(key_ids) + len(card_ids))

    def best_text_cosine(self, cosines: np.ndarray | None) -> float | None:
        """The best of ``cosines`` (from :meth:`cosines`) over passages of card text (questions left
        out: the scope check was calibrated on text), or None without stored vectors."""
        if cosines is None or not self.text_rows.size:
            return None
        return float(cosines[self.text_rows].max())

    def cosines(self, vector: Sequence[float]) -> np.ndarray | None:
        """Cosine of the question with every passage (vectors are L2-normalised), or None."""
        if self.vectors is None:
            return None
        # One BLAS thread: a matrix-vector product is memory-bound, and a second thread only
        # competes with the next request on a busy machine.
        with _blas().limit(limits=1, user_api="blas"):
            return self.vectors @ np.asarray(vector, dtype="float32")

    def _strategy_index(self, embedder: Embedder, cache_dir: Path | None) -> StrategyIndex:
        tax = self.taxonomy
        keys = [(t.id, s) for t in tax.themes.values() for s in t.strategies]
        tokens = [set(self.tokenizer(f"{s.replace('-', ' ')} {tax.themes[t].strategies[s]}")) for t, s in keys]
        texts = [f"{tax.themes[t].strategies[s]}. {tax.themes[t].strategy_descriptions[s]}" for t, s in keys]
        return StrategyIndex(keys, tokens, strategy_vectors(embedder, texts, cache_dir))

    def hits(self, rows: np.ndarray, values: np.ndarray) -> list[tuple[Passage, float]]:
        """(passage, value) for passage rows and their values (as Python floats)."""
        passages = self.passages
        return list(zip([passages[i] for i in rows.tolist()], np.asarray(values, dtype="float64").tolist()))

    @cached_property
    def _themes(self) -> np.ndarray:
        return np.asarray([p.theme for p in self.passages], dtype=object)

    def theme_of_rows(self, rows: np.ndarray) -> np.ndarray:
        """The theme (or None) of each passage row."""
        return self._themes[rows]

    @cached_property
    def _lift_layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: the row ``lift`` replaces it by (its section's first passage, for a curated
        question), whether that row is itself a question (dropped), and a code per passage id."""
        row_of = {id(p): i for i, p in enumerate(self.passages)}
        codes: dict[str, int] = {}
        lifted, question, code = [], [], []
        for i, p in enumerate(self.passages):
            t = self.target.get(p.id)
            lifted.append(row_of[id(t)] if t is not None else i)
        for p in self.passages:
            question.append(p.section == QUESTION_SECTION)
            code.append(codes.setdefault(p.id, len(codes)))
        return (np.asarray(lifted, dtype=np.intp), np.asarray(question, dtype=bool), np.asarray(code, dtype=np.intp))

    def lift_rows(self, rows: np.ndarray, values: np.ndarray) -> list[tuple[Passage, float]]:
        """``lift(hits(rows, values))`` on arrays: the same passages, values and order."""
        lifted, question, code = self._lift_layout
        t = lifted[rows]
        keep = ~question[t]
        t, values = t[keep], np.asarray(values, dtype="float64")[keep]
        _, first = np.unique(code[t], return_index=True)
        first.sort()
        return self.hits(t[first], values[first])

    def lift(self, hits: Sequence[tuple[Passage, float]]) -> list[tuple[Passage, float]]:
        """Replace each question hit by the passage it points at (keeping the first, best, hit of
        each passage), so retrieval ranks sections by their text and by their questions alike."""
        out: list[tuple[Passage, float]] = []
        seen: set[str] = set()
        target = self.target
        for p, score in hits:
            p = target.get(p.id, p)
            pid = p.id
            if pid in seen or p.section == QUESTION_SECTION:
                continue
            seen.add(pid)
            out.append((p, score))
        return out

    def idf(self, token: str) -> float:
        return float(self.bm25.idf.get(token, 0.0))
