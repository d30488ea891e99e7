"""Train the crisis classifier shipped in ``assistant/crisis_model.json``.

Logistic regression (scikit-learn) on question embeddings from the same model the assistant uses.
Training data: the written examples in ``assistant/crisis_bank.py`` plus the labelled questions of
the *tune* split of ``evals/gold.jsonl`` and of ``evals/holdout.jsonl`` and ``evals/holdout2.jsonl`` (crisis vs
everything else). Never used here, so that the crisis figures reported for them are honest: the test
split of ``evals/gold.jsonl``, ``evals/holdout3.jsonl`` and ``evals/fresh.jsonl``.
Run: ``python -m evals.train_crisis``.

It also trains the *clinical specialist* (``assistant/crisis_clinical_model.json``): the same data plus
``assistant/crisis_examples.yaml``, crises in clinical wording (an overdose taken, tablets saved up) as
crisis and clinical questions about someone in no present danger (a dose, a symptom, a diagnosis) as not.
The main classifier reads medication and symptom talk as risk; the specialist is asked only about the
questions the refusal check is confident are clinical requests (``assistant.safety.ClinicalOverride``).
It sees no off-topic examples: it never decides those.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from typing import Any

import yaml

from assistant.settings import PROJECT_ROOT, Settings, get_settings

MODEL_FILE = PROJECT_ROOT / "assistant" / "crisis_model.json"
SPECIALIST_FILE = PROJECT_ROOT / "assistant" / "crisis_clinical_model.json"
EXAMPLES_FILE = PROJECT_ROOT / "assistant" / "crisis_examples.yaml"
TRAIN_FILES = ("evals/gold.jsonl", "evals/holdout.jsonl", "evals/holdout2.jsonl")
#: Held out from training: their crisis figures are the ones the baseline gate and the README report.
HELD_OUT_FILES = ("evals/holdout3.jsonl", "evals/fresh.jsonl")
C = 10.0
THRESHOLD = 0.4
#: The specialist's threshold, chosen by ``--cv`` (stratified 5-fold on its training data): the highest crisis
#: recall whose false-crisis rate stays under 8% (recall 0.988, false 0.076; 0.4 gave 0.976 and 0.057).
SPECIALIST_THRESHOLD = 0.3


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


def specialist_data() -> tuple[list[str], list[int]]:
    """``training_data`` plus the clinical examples (see the module docstring)."""
    texts, labels = training_data()
    extra = yaml.safe_load(EXAMPLES_FILE.read_text(encoding="utf-8"))
    calm = [t for group in extra["clinical_not_crisis"].values() for t in group]
    return [*texts, *extra["crisis_clinical"], *calm], [*labels, *[1] * len(extra["crisis_clinical"]), *[0] * len(calm)]


def _embed(settings: Settings, texts: list[str]) -> Any:
    import numpy as np

    from ingest.embedding import get_embedder

    embedder = get_embedder(settings)
    embed = getattr(embedder, "embed_queries", embedder.embed_documents)
    return np.asarray(embed(texts), dtype="float64")


def train(settings: Settings, specialist: bool = False) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    texts, labels = specialist_data() if specialist else training_data()
    X = _embed(settings, texts)
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=5000).fit(X, labels)
    digest = hashlib.sha256("\n".join(f"{y}\t{t}" for t, y in zip(texts, labels)).encode()).hexdigest()[:16]
    threshold = SPECIALIST_THRESHOLD if specialist else THRESHOLD
    return {"embedding_model": settings.index.embedding_model, "threshold": threshold, "C": C,
            "n_train": len(texts), "n_crisis": int(sum(labels)), "training_digest": digest,
            "bias": float(model.intercept_[0]), "weights": [round(float(w), 6) for w in model.coef_[0]]}


def cross_validate(settings: Settings, specialist: bool = True, cs: tuple[float, ...] = (3.0, 10.0, 30.0),
                   thresholds: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5)) -> list[dict[str, Any]]:
    """Stratified 5-fold CV on the training data: crisis recall and false-crisis rate for each (C, threshold)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    texts, labels = specialist_data() if specialist else training_data()
    X, y = _embed(settings, texts), np.asarray(labels)
    rows = []
    for c in cs:
        p = np.zeros(len(y))
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
            p[te] = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
        rows += [{"C": c, "threshold": t, "recall": round(float((p[y == 1] >= t).mean()), 3),
                  "false_crisis": round(float((p[y == 0] >= t).mean()), 4)} for t in thresholds]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", action="store_true", help="report the specialist's cross-validation instead of training")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.cv:
        for row in cross_validate(settings):
            print(json.dumps(row))
        return 0
    for path, specialist in ((MODEL_FILE, False), (SPECIALIST_FILE, True)):
        data = train(settings, specialist)
        path.write_text(json.dumps(data) + "\n", encoding="utf-8")
        print(f"wrote {path} ({data['n_train']} examples, {data['n_crisis']} crisis)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
