"""Train the crisis classifier shipped in ``assistant/crisis_model.json``.

Logistic regression (scikit-learn) on question embeddings from the same model the assistant uses.
Training data: the written examples in ``assistant/crisis_bank.py`` plus the labelled questions of
the *tune* split of ``evals/gold.jsonl`` and of ``evals/holdout.jsonl`` and ``evals/holdout2.jsonl`` (crisis vs
everything else). Never used here, so that the crisis figures reported for them are honest: the test
split of ``evals/gold.jsonl`` and ``HELD_OUT_FILES`` (``holdout3``, ``fresh``, ``near_domain``, ``off_topic``);
a question that also appears in one of those is dropped from every training source.
Run: ``python -m evals.train_crisis``.

It also trains two specialists, each asked only in its own region (``assistant.safety.SecondOpinion``), from
the same data plus examples of ``assistant/crisis_examples.yaml``:

- the *clinical specialist* (``assistant/crisis_clinical_model.json``): crises in clinical wording (an
  overdose taken, tablets saved up) as crisis, calm clinical questions about someone (a dose, a symptom, a
  diagnosis) as not. It decides the questions the refusal check is confident are clinical requests: the
  main classifier reads medication and symptom talk as risk.
- the *off-topic specialist* (``assistant/crisis_offtopic_model.json``): means-seeking messages that look
  like ordinary questions ("which bridges have no barriers") as crisis, ordinary requests unrelated to
  work (a third with a danger word in its ordinary sense: "kill a process", "my battery died") as not. It
  decides the questions with no word tied to peer work: every training example of the main classifier
  but the off-topic ones is about mental health or work, so it reads plain off-topic text as risk.

``--cv`` reports stratified 5-fold cross-validation of each classifier on its training data; each
specialist's C and threshold is the highest crisis recall whose false-crisis rate stays under 8% (the
main classifier's were chosen before the specialists existed).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from assistant.settings import PROJECT_ROOT, Settings, get_settings
from evals.classifier_training import digest, embed, held_out_questions

MODEL_FILE = PROJECT_ROOT / "assistant" / "crisis_model.json"
SPECIALIST_FILE = PROJECT_ROOT / "assistant" / "crisis_clinical_model.json"
OFFTOPIC_FILE = PROJECT_ROOT / "assistant" / "crisis_offtopic_model.json"
EXAMPLES_FILE = PROJECT_ROOT / "assistant" / "crisis_examples.yaml"
TRAIN_FILES = ("evals/gold.jsonl", "evals/holdout.jsonl", "evals/holdout2.jsonl")
C = 10.0
THRESHOLD = 0.4
#: The specialists' (C, threshold), chosen by ``--cv`` (stratified 5-fold on their training data): the highest
#: crisis recall whose false-crisis rate stays under 8% (clinical: recall 0.961, false 0.0787 with the second
#: helper's harder examples, 0.988 and 0.076 before them; off-topic: recall 0.947, false 0.067).
SPECIALISTS = {"clinical": (3.0, 0.4), "offtopic": (10.0, 0.4)}


def training_data() -> tuple[list[str], list[int]]:
    from assistant.crisis_bank import CRISIS, NON_CRISIS

    held = held_out_questions()
    crisis, non_crisis = [t for t in CRISIS if t not in held], [t for t in NON_CRISIS if t not in held]
    texts = [*crisis, *non_crisis]
    labels = [1] * len(crisis) + [0] * len(non_crisis)
    for name in TRAIN_FILES:
        for line in (PROJECT_ROOT / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if (row.get("split") == "test" and name == "evals/gold.jsonl") or row["question"] in held:
                    continue  # held out (a few questions appear in more than one set)
                texts.append(row["question"])
                labels.append(int(row["type"] == "crisis"))
    return texts, labels


def specialist_data(kind: str = "clinical") -> tuple[list[str], list[int]]:
    """``training_data`` plus the clinical or the off-topic examples (see the module docstring)."""
    texts, labels = training_data()
    extra = yaml.safe_load(EXAMPLES_FILE.read_text(encoding="utf-8"))
    if kind == "clinical":
        crisis, calm = extra["crisis_clinical"], [t for group in extra["clinical_not_crisis"].values() for t in group]
    else:
        crisis, calm = extra["means_seeking"], extra["off_topic"]
    return [*texts, *crisis, *calm], [*labels, *[1] * len(crisis), *[0] * len(calm)]


def train(settings: Settings, specialist: str | None = None) -> dict[str, Any]:
    """The main classifier, or with ``specialist`` ("clinical", "offtopic") that specialist."""
    from sklearn.linear_model import LogisticRegression

    texts, labels = specialist_data(specialist) if specialist else training_data()
    c, threshold = SPECIALISTS[specialist] if specialist else (C, THRESHOLD)
    X = embed(settings, texts)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(X, labels)
    return {"embedding_model": settings.index.embedding_model, "threshold": threshold, "C": c,
            "n_train": len(texts), "n_crisis": int(sum(labels)), "training_digest": digest(texts, labels),
            "bias": float(model.intercept_[0]), "weights": [round(float(w), 6) for w in model.coef_[0]]}


def cross_validate(settings: Settings, specialist: str | None = None, cs: tuple[float, ...] = (3.0, 10.0, 30.0),
                   thresholds: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5)) -> list[dict[str, Any]]:
    """Stratified 5-fold CV on the training data: crisis recall and false-crisis rate for each (C, threshold)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    texts, labels = specialist_data(specialist) if specialist else training_data()
    X, y = embed(settings, texts), np.asarray(labels)
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
    parser.add_argument("--cv", action="store_true", help="report cross-validation instead of training")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.cv:
        for kind in (None, "clinical", "offtopic"):
            for row in cross_validate(settings, kind):
                print(json.dumps({"model": kind or "main", **row}))
        return 0
    for path, specialist in ((MODEL_FILE, None), (SPECIALIST_FILE, "clinical"), (OFFTOPIC_FILE, "offtopic")):
        data = train(settings, specialist)
        path.write_text(json.dumps(data) + "\n", encoding="utf-8")
        print(f"wrote {path} ({data['n_train']} examples, {data['n_crisis']} crisis)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
