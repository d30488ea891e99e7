"""The relevance gate: decide, passage by passage, whether a candidate answers the question.

Ranking says which passages are nearest; it does not say whether any of them speaks to the
question. The gate scores every candidate (the fused list plus every passage of the strategies the
question matches best) with a small logistic model over signals that carry across questions: the
passage's cosine with the question and its distance from the best cosine, its BM25 score relative
to the best, how well its strategy matches the question relative to the best strategy (by the
strategy's title and by its best passages), how well its curated questions match, and whether it is
a summary; and the cosine after the question adapter (``assistant.adapter``), learned from card
questions and labelled manager questions to tell apart the cards of one strategy. The weights are learned on the gold
*tune* split only (``python -m evals.train_relevance``, stored in ``assistant/relevance_model.json``);
the floors that turn a score into "relevant" are settings. Fewer passages pass when fewer are
relevant: nothing is padded to a fixed count.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.adapter import MODEL_FILE as ADAPTER_FILE
from assistant.adapter import QueryAdapter
from assistant.retrieval import PassageIndex, RetrievalResult
from assistant.settings import RelevanceSettings
from ingest.types import QUESTION_SECTION, ScoredPassage

MODEL_FILE = Path(__file__).with_name("relevance_model.json")
FEATURES = ("cosine", "cosine_gap", "bm25_share", "strategy_gap", "strategy_in_top", "summary", "fused_rr", "named",
            "group_cosine_gap", "card_best", "question_cosine_gap", "question_bm25_share", "group_question_gap",
            "adapted_cosine", "adapted_gap", "adapted_card_gap")


@dataclass(frozen=True)
class Judgement:
    passage: ScoredPassage
    relevance: float  # 0..1
    features: tuple[float, ...]


@dataclass(frozen=True)
class RelevanceModel:
    weights: tuple[float, ...]
    bias: float
    features: tuple[str, ...] = FEATURES
    embedding_model: str = ""

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> RelevanceModel:
        data = json.loads(path.read_text(encoding="utf-8"))
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"{path.name} was trained on features {data['features']}, not {FEATURES}: "
                             "retrain with `python -m evals.train_relevance`")
        return cls(tuple(float(w) for w in data["weights"]), float(data["bias"]), tuple(data["features"]),
                   str(data.get("embedding_model") or ""))

    def probability(self, x: Sequence[float]) -> float:
        z = float(np.dot(self.weights, x)) + self.bias
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def probabilities(self, rows: Sequence[Sequence[float]] | np.ndarray) -> list[float]:
        """``probability`` of each row, with the same arithmetic (one dot product per row, on
        arrays converted once, so the values are bit for bit those of ``probability``)."""
        if len(rows) == 0:
            return []
        w = np.asarray(self.weights, dtype="float64")
        x = np.asarray(rows, dtype="float64")
        out = []
        for row in x:
            z = float(np.dot(w, row)) + self.bias
            out.append(1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0))))
        return out


def candidate_features(result: RetrievalResult, index: PassageIndex, query_tokens: Sequence[str],
                       strategy_pool: int, theme: str | None = None, adapted: np.ndarray | None = None,
                       ) -> list[tuple[ScoredPassage, tuple[float, ...]]]:
    """The candidates and their features (see FEATURES). ``strategy_pool`` strategies (best matches
    first) bring in all of their passages, so recall is not limited by the ranking. ``adapted`` is
    the question vector after the adapter (without it the adapted features repeat the cosine)."""
    pool, x = feature_matrix(result, index, query_tokens, strategy_pool, theme, adapted)
    return list(zip(pool, map(tuple, x.tolist()), strict=True))


def feature_matrix(result: RetrievalResult, index: PassageIndex, query_tokens: Sequence[str],
                   strategy_pool: int, theme: str | None = None,
                   adapted: np.ndarray | None = None) -> tuple[list[ScoredPassage], np.ndarray]:
    """``candidate_features`` as the candidates and one float64 row of FEATURES each, computed by
    column over the passages' rows (the per-passage layout is built once per loaded index)."""
    fused = {sp.passage.id: (rank, sp) for rank, sp in enumerate(result.candidates, 1)}
    top_keys = [(m.theme, m.strategy) for m in result.strategy_matches if not theme or m.theme == theme][:strategy_pool]
    # Caveats say what is uncertain about a card; they are never the answer to a question.
    pool: dict[str, ScoredPassage] = {pid: sp for pid, (_, sp) in fused.items()
                                      if sp.passage.section not in ("caveats", QUESTION_SECTION)}
    for key in top_keys:
        for p in index.by_strategy.get(key, []):
            if p.section == "strategy":
                pool.setdefault(p.id, ScoredPassage(p, 0.0))
    if not pool:
        return [], np.zeros((0, len(FEATURES)))
    cos_all = result.cosines if result.cosines is not None else index.cosines(result.query_vector)
    bm25_all = (result.lexical_scores if result.lexical_scores is not None
                else index.bm25.get_scores(list(query_tokens)) if query_tokens else np.zeros(len(index.passages)))
    ids = list(pool)
    position = index.position
    rows = np.fromiter((position[i] for i in ids), dtype=np.intp, count=len(ids))
    cos = (cos_all[rows] if cos_all is not None
           else np.asarray([pool[i].dense if pool[i].dense is not None else 0.0 for i in ids]))
    bm = np.asarray(bm25_all[rows], dtype="float64")
    best_cos, best_bm = float(cos.max()), float(bm.max()) if bm.size else 0.0
    question_rows = index.question_rows
    best_q = float(cos_all[question_rows].max()) if cos_all is not None and question_rows.size else best_cos
    best_qbm = float(bm25_all[question_rows].max()) if question_rows.size else 0.0
    q_cos, q_bm = _question_features(index, rows, cos_all, bm25_all, best_q, best_qbm)
    best_strat = result.strategy_matches[0].score if result.strategy_matches else 0.0
    lay = index.gate_layout
    n = len(ids)
    cos64 = cos.astype("float64")
    kid = lay.key[rows]
    strategy = lay.strategy[rows]
    cid = lay.card[rows]
    group = lay.group[rows]
    # Each strategy's score (a strategy that did not match: 0.3 below the best), by key id.
    strat = np.full(len(lay.keys), best_strat - 0.3)
    for m in result.strategy_matches:
        k = lay.key_ids.get((m.theme, m.strategy))
        if k is not None:
            strat[k] = m.score
    s_gap = np.where(strategy, strat[kid] - best_strat, 0.0)
    top = np.zeros(len(lay.keys), dtype=bool)
    top[[lay.key_ids[k] for k in top_keys if k in lay.key_ids]] = True
    rank = np.fromiter((fused[pid][0] if pid in fused else 0 for pid in ids), dtype="float64", count=n)
    rr = np.divide(1.0, rank, out=np.zeros(n), where=rank > 0)
    named = np.zeros(len(lay.cards), dtype=bool)
    named[[lay.card_ids[c] for c in result.mentioned_cards if c in lay.card_ids]] = True
    # How close the passage's strategy (or, for a summary, its card) comes at its best: a strategy
    # whose best passage is near the top is likely the question's topic.
    group_best = np.full(lay.n_groups, -1.0)
    np.maximum.at(group_best, group, cos64)
    card_best = np.full(len(lay.cards), -1.0)
    np.maximum.at(card_best, cid, cos64)
    # The same at the level of the strategy, through its sections' curated questions.
    group_q = np.full(len(lay.keys), -1.0)
    np.maximum.at(group_q, kid[strategy], q_cos[strategy])
    x = np.empty((n, len(FEATURES)))
    x[:, 0] = cos64
    x[:, 1] = cos64 - best_cos
    x[:, 2] = bm / best_bm if best_bm > 0 else 0.0
    x[:, 3] = s_gap
    x[:, 4] = top[kid]
    x[:, 5] = ~strategy
    x[:, 6] = rr
    x[:, 7] = named[cid]
    x[:, 8] = group_best[group] - best_cos
    x[:, 9] = cos64 >= card_best[cid]
    x[:, 10] = q_cos
    x[:, 11] = q_bm
    x[:, 12] = np.where(strategy, group_q[kid], -0.5)
    # The adapted cosine, its distance from the best candidate's, and the distance of its card's best.
    ac = (index.vectors[rows] @ adapted).astype("float64") if adapted is not None and index.vectors is not None else cos64
    card_ac = np.full(len(lay.cards), -1.0)
    np.maximum.at(card_ac, cid, ac)
    x[:, 13] = ac
    x[:, 14] = ac - ac.max()
    x[:, 15] = card_ac[cid] - ac.max()
    return [pool[pid] for pid in ids], x


def _question_features(index: PassageIndex, rows: np.ndarray, cos_all: np.ndarray | None, bm25_all: np.ndarray,
                       best_q: float, best_qbm: float) -> tuple[np.ndarray, np.ndarray]:
    """How well each passage's (``rows``) curated questions match: best cosine against the best of
    any question, and best BM25 share (a passage without questions scores as a clear miss: -0.5, 0).
    One ``maximum.reduceat`` over every passage's question rows (laid out once per index)."""
    n = len(rows)
    groups = index.question_groups
    if cos_all is None or not groups.owners.size:
        return np.full(n, -0.5), np.zeros(n)
    slot = groups.slot[rows]
    has = slot >= 0
    pick = np.where(has, slot, 0)
    q_cos = np.maximum.reduceat(cos_all[groups.rows], groups.starts)[pick].astype("float64") - best_q
    q_cos = np.where(has, q_cos, -0.5)
    if best_qbm > 0:
        q_bm = np.asarray(np.maximum.reduceat(bm25_all[groups.rows], groups.starts)[pick], dtype="float64") / best_qbm
        q_bm = np.where(has, q_bm, 0.0)
    else:
        q_bm = np.zeros(n)
    return q_cos, q_bm


class RelevanceGate:
    """Scores candidates and keeps those that answer the question (see the module docstring)."""

    def __init__(self, settings: RelevanceSettings, model: RelevanceModel | None = None,
                 model_file: Path = MODEL_FILE, adapter: QueryAdapter | None = None,
                 adapter_file: Path = ADAPTER_FILE) -> None:
        self.settings = settings
        self._model = model
        self.model_file = model_file
        self._adapter = adapter
        self.adapter_file = adapter_file
        self._trained_for: str | None = None

    @property
    def adapter(self) -> QueryAdapter:
        if self._adapter is None:
            self._adapter = QueryAdapter.load(self.adapter_file)
        return self._adapter

    @property
    def model(self) -> RelevanceModel:
        if self._model is None:
            self._model = RelevanceModel.load(self.model_file)
        return self._model

    def applies_to(self, embedding_model: str) -> bool:
        """The weights fit the cosines of the model they were trained with; with another model (the
        hash embedder of the unit tests) the gate stands aside and the ranking alone decides. The
        question adapter must have been trained for the same model."""
        if self._model is not None:
            trained_for = self._model.embedding_model
        else:
            if self._trained_for is None:  # read once, without loading (or validating) the weights
                self._trained_for = str(json.loads(self.model_file.read_text(encoding="utf-8")).get("embedding_model"))
            trained_for = self._trained_for
        return trained_for == embedding_model and self.adapter.embedding_model == embedding_model

    def judge(self, result: RetrievalResult, index: PassageIndex, query_tokens: Sequence[str],
              theme: str | None = None) -> list[Judgement]:
        pool, x = feature_matrix(result, index, query_tokens, self.settings.strategy_pool, theme,
                                 self.adapter.apply(result.query_vector))
        relevance = self.model.probabilities(x)
        judged = [Judgement(sp, r, f) for sp, r, f in zip(pool, relevance, map(tuple, x.tolist()), strict=True)]
        return sorted(judged, key=lambda j: (-j.relevance, j.passage.passage.card_id, j.passage.passage.ordinal))

    def select(self, judged: Sequence[Judgement]) -> list[Judgement]:
        """Those above the floor (and within ``relative_floor`` of the best: a question with one clear
        answer does not drag in the weak ones), at most ``max_passages_per_card`` per card and
        ``max_cards`` cards."""
        s = self.settings
        per_card: dict[str, int] = {}
        out: list[Judgement] = []
        best = judged[0].relevance if judged else 0.0
        floor = max(s.relevance_floor, s.relative_floor * best)
        for j in judged:
            if j.relevance < floor:
                break
            card = j.passage.passage.card_id
            if per_card.get(card, 0) >= s.max_passages_per_card:
                continue
            if card not in per_card and len(per_card) >= s.max_cards:
                continue
            per_card[card] = per_card.get(card, 0) + 1
            out.append(j)
        return out
