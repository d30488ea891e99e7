"""Train the relevance model shipped in ``assistant/relevance_model.json``.

Logistic regression (scikit-learn) over the gate's candidate features (``assistant.relevance``).
A candidate passage is labelled relevant when its card is one of the question's expected cards and
it is that card's summary or a section on one of the expected strategies (``evals.metrics.quote_relevant``).
Training data: the answerable questions of the gold *tune* split only. The test split,
``holdout3`` and ``fresh`` are never used here. ``--cv`` reports grouped 5-fold cross-validation on
the tune split (each question's candidates in one fold): mean card precision and recall for each
absolute and relative floor, from which ``relevance_floor`` and ``relative_floor`` are chosen.
Run: ``python -m evals.train_relevance [--cv]``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

from assistant.relevance import FEATURES, MODEL_FILE
from assistant.settings import PROJECT_ROOT, Settings, get_settings

TRAIN_FILE = PROJECT_ROOT / "evals" / "gold.jsonl"
C = 1.0


def training_rows(settings: Settings) -> tuple[list[list[float]], list[int], list[dict[str, Any]]]:
    from assistant.chat import Assistant
    from assistant.relevance import candidate_features
    from evals.metrics import expected_strategies, quote_relevant
    assistant = Assistant(settings)
    X: list[list[float]] = []
    y: list[int] = []
    meta: list[dict[str, Any]] = []
    for item in training_items():
        expected, strategies = set(item["expected_cards"]), expected_strategies(item)
        result, tokens = assistant.candidates(item["question"], item.get("history") or [])
        adapted = assistant.gate.adapter.apply(result.query_vector)
        for sp, x in candidate_features(result, assistant.retriever.index, tokens, settings.relevance.strategy_pool,
                                        adapted=adapted):
            label = quote_relevant({"card_id": sp.passage.card_id, "section": sp.passage.heading}, expected, strategies)
            X.append(list(x))
            y.append(int(label))
            meta.append({"id": item["id"], "card": sp.passage.card_id, "passage": sp.passage.id})
    return X, y, meta


def training_items() -> list[dict[str, Any]]:
    from evals.run import load_gold

    return [item for item in load_gold(TRAIN_FILE)
            if item.get("split") == "tune" and item["type"] == "answerable" and item.get("expected_cards")]


def training_digest(settings: Settings) -> str:
    """A fingerprint of what the model is fitted on: the tune items and their labels, the corpus's
    passages (content-addressed ids) and the features. The candidate rows themselves are not hashed:
    near-tie vector hits can differ by a row or two between processes."""
    from ingest.cards import load_corpus
    from ingest.split import split_corpus

    index = settings.index
    passages = sorted(p.id for p in split_corpus(load_corpus(index.corpus_dir, index.max_card_bytes).cards,
                                                 index.chunk_size, index.chunk_overlap))
    items = [[i["id"], i["question"], i.get("history") or [], sorted(i["expected_cards"]),
              sorted(i.get("expected_strategies") or [])] for i in training_items()]
    from assistant.adapter import MODEL_FILE as ADAPTER_FILE
    from assistant.adapter import QueryAdapter

    adapter = QueryAdapter.load(ADAPTER_FILE).training_digest
    blob = json.dumps([items, passages, list(FEATURES), C, adapter], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def train(settings: Settings) -> dict[str, Any]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X, y, meta = training_rows(settings)
    model = LogisticRegression(C=C, max_iter=5000).fit(np.asarray(X), y)
    return {"features": list(FEATURES), "C": C, "n_train": len(y), "n_relevant": int(sum(y)),
            "questions": len({m["id"] for m in meta}), "training_digest": training_digest(settings),
            "embedding_model": settings.index.embedding_model,
            "bias": float(model.intercept_[0]), "weights": [round(float(w), 6) for w in model.coef_[0]]}


def cross_validate(settings: Settings) -> list[dict[str, Any]]:
    """Grouped 5-fold CV on the tune split: for each pair of floors, the mean card precision and
    recall of the cards whose best passage clears both (at most ``max_cards``), as ``select`` keeps them."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    X, y, meta = training_rows(settings)
    Xa, ya = np.asarray(X), np.asarray(y)
    groups = np.asarray([m["id"] for m in meta])
    proba = np.zeros(len(ya))
    for train_idx, test_idx in GroupKFold(5).split(Xa, ya, groups):
        model = LogisticRegression(C=C, max_iter=5000).fit(Xa[train_idx], ya[train_idx])
        proba[test_idx] = model.predict_proba(Xa[test_idx])[:, 1]
    expected = {i["id"]: set(i["expected_cards"]) for i in training_items()}
    best: dict[str, dict[str, float]] = {}
    for m, p in zip(meta, proba, strict=True):
        cards = best.setdefault(m["id"], {})
        cards[m["card"]] = max(cards.get(m["card"], 0.0), float(p))
    rows = []
    for floor in (0.2, 0.25, 0.3, 0.35, 0.4):
        for relative in (0.0, 0.4, 0.5, 0.6):
            precision, recall = [], []
            for qid, cards in best.items():
                top = max(cards.values())
                kept = sorted((c for c, p in cards.items() if p >= max(floor, relative * top)),
                              key=lambda c: -cards[c])[:settings.relevance.max_cards]
                hits = len(set(kept) & expected[qid])
                precision.append(hits / len(kept) if kept else 0.0)
                recall.append(hits / len(expected[qid]))
            rows.append({"relevance_floor": floor, "relative_floor": relative,
                         "card_precision": round(float(np.mean(precision)), 4),
                         "card_recall": round(float(np.mean(recall)), 4)})
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Train the relevance gate's model on the gold tune split.")
    parser.add_argument("--cv", action="store_true", help="report grouped cross-validation instead of writing the model")
    if parser.parse_args(argv).cv:
        for row in cross_validate(get_settings()):
            print(json.dumps(row))
        return 0
    data = train(get_settings())
    MODEL_FILE.write_text(json.dumps(data) + "\n", encoding="utf-8")
    print(f"wrote {MODEL_FILE} ({data['n_train']} candidates from {data['questions']} tune questions, "
          f"{data['n_relevant']} relevant)")
    print(dict(zip(data["features"], data["weights"])), "bias", round(data["bias"], 3))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
