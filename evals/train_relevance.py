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
    from evals.run import load_gold

    assistant = Assistant(settings)
    X: list[list[float]] = []
    y: list[int] = []
    meta: list[dict[str, Any]] = []
    for item in load_gold(TRAIN_FILE):
        if item.get("split") != "tune" or item["type"] != "answerable" or not item.get("expected_cards"):
            continue
        expected, strategies = set(item["expected_cards"]), expected_strategies(item)
        result, tokens = assistant.candidates(item["question"], item.get("history") or [])
        for sp, x in candidate_features(result, assistant.retriever.index, tokens, settings.relevance.strategy_pool):
            label = quote_relevant({"card_id": sp.passage.card_id, "section": sp.passage.heading}, expected, strategies)
            X.append(list(x))
            y.append(int(label))
            meta.append({"id": item["id"], "card": sp.passage.card_id, "passage": sp.passage.id})
    return X, y, meta


def train(settings: Settings) -> dict[str, Any]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X, y, meta = training_rows(settings)
    model = LogisticRegression(C=C, max_iter=5000).fit(np.asarray(X), y)
    digest = hashlib.sha256("\n".join(f"{m['id']}\t{m['passage']}\t{label}" for m, label in zip(meta, y)).encode())
    return {"features": list(FEATURES), "C": C, "n_train": len(y), "n_relevant": int(sum(y)),
            "questions": len({m["id"] for m in meta}), "training_digest": digest.hexdigest()[:16],
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
