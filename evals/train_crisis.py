"""Train the crisis classifier shipped in ``assistant/crisis_model.json``.

Logistic regression (scikit-learn) on question embeddings from the same model the assistant uses.
Training data: the written examples in ``assistant/crisis_bank.py`` plus the labelled questions of
the *tune* split of ``evals/gold.jsonl`` and of ``evals/holdout.jsonl`` and ``evals/holdout2.jsonl`` (crisis vs
everything else). Never used here, so that the crisis figures reported for them are honest: the test
split of ``evals/gold.jsonl``, ``evals/holdout3.jsonl`` and ``evals/fresh.jsonl``.
Run: ``python -m evals.train_crisis``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

from assistant.settings import PROJECT_ROOT, Settings, get_settings

MODEL_FILE = PROJECT_ROOT / "assistant" / "crisis_model.json"
TRAIN_FILES = ("evals/gold.jsonl", "evals/holdout.jsonl", "evals/holdout2.jsonl")
#: Held out from training: their crisis figures are the ones the baseline gate and the README report.
HELD_OUT_FILES = ("evals/holdout3.jsonl", "evals/fresh.jsonl")
C = 10.0
THRESHOLD = 0.4


def training_data() -> tuple[list[str], list[int]]:
    from assistant.crisis_bank import CRISIS, NON_CRISIS

    texts = [*CRISIS, *NON_CRISIS]
    labels = [1] * len(CRISIS) + [0] * len(NON_CRISIS)
    for name in TRAIN_FILES:
        for line in (PROJECT_ROOT / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if row.get("split") == "test" and name == "evals/gold.jsonl":
                    continue  # the gold test split is held out
                texts.append(row["question"])
                labels.append(int(row["type"] == "crisis"))
    return texts, labels


def train(settings: Settings) -> dict[str, Any]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from ingest.embedding import get_embedder

    texts, labels = training_data()
    embedder = get_embedder(settings)
    embed = getattr(embedder, "embed_queries", embedder.embed_documents)
    X = np.asarray(embed(texts), dtype="float64")
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=5000).fit(X, labels)
    digest = hashlib.sha256("\n".join(f"{y}\t{t}" for t, y in zip(texts, labels)).encode()).hexdigest()[:16]
    return {"embedding_model": settings.index.embedding_model, "threshold": THRESHOLD, "C": C,
            "n_train": len(texts), "n_crisis": int(sum(labels)), "training_digest": digest,
            "bias": float(model.intercept_[0]), "weights": [round(float(w), 6) for w in model.coef_[0]]}


def main() -> int:
    data = train(get_settings())
    MODEL_FILE.write_text(json.dumps(data) + "\n", encoding="utf-8")
    print(f"wrote {MODEL_FILE} ({data['n_train']} examples, {data['n_crisis']} crisis)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
