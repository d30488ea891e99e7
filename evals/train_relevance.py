"""Train the relevance model shipped in ``assistant/relevance_model.json``.

Logistic regression (scikit-learn) over the gate's candidate features (``assistant.relevance``).
A candidate passage is labelled relevant when its card is one of the question's expected cards and
it is that card's summary or a section on one of the expected strategies (``evals.metrics.quote_relevant``).
Training data: the answerable questions of the gold *tune* split only. The test split,
``holdout3`` and ``fresh`` are never used here. Run: ``python -m evals.train_relevance [--sweep]``.
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
        for sp, x in candidate_features(result, assistant.retriever.index, tokens, settings.relevance.strategy_pool):
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
    blob = json.dumps([items, passages, list(FEATURES), C], sort_keys=True)
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


def main() -> int:
    data = train(get_settings())
    MODEL_FILE.write_text(json.dumps(data) + "\n", encoding="utf-8")
    print(f"wrote {MODEL_FILE} ({data['n_train']} candidates from {data['questions']} tune questions, "
          f"{data['n_relevant']} relevant)")
    print(dict(zip(data["features"], data["weights"])), "bias", round(data["bias"], 3))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
