"""Train the refusal classifier shipped in ``assistant/refusal_model.json``.

Multinomial logistic regression (scikit-learn) on question embeddings from the assistant's own model:
``allow`` against the refusal categories of ``corpus/refusals.yaml`` (diagnosing a person, legal tests,
billing codes, therapy techniques for a client, medication). The patterns in ``corpus/vocabulary.yaml``
catch explicit wording; this catches the paraphrases they miss, while the many ``allow`` examples keep
policy questions on the same topics answered.

Training data (never a set whose figures are reported as held out):
- the written examples in ``corpus/refusals.yaml`` (refuse and allow) and the calm clinical questions of
  ``assistant/crisis_examples.yaml`` (medication, diagnosing a person, therapy for a client), written
  by helpers who saw no code and no question set;
- allow: the ordinary off-topic requests of ``assistant/crisis_examples.yaml``, the curated section questions in
  ``corpus/questions/`` and the answerable and risk-adjacent questions of the gold *tune* split, ``evals/holdout.jsonl`` and
  ``evals/holdout2.jsonl``;
- refuse: out-of-scope questions of those files that a refusal pattern names.
Held out: the gold test split, ``evals/holdout3.jsonl``, ``evals/fresh.jsonl`` and ``evals/near_domain.jsonl``.

``--cv`` reports stratified 5-fold cross-validation on the training data for each C, refusal weight
and threshold (and what the veto over the patterns would change), so the shipped values are chosen
without the held-out sets. Run: ``python -m evals.train_refusal [--cv]``.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from assistant.settings import PROJECT_ROOT, Settings
from evals.classifier_training import (
    add_negatives,
    curated_questions,
    embed,
    fit_softmax,
    labelled_rows,
    out_of_fold,
    run_cli,
    softmax_payload,
)

MODEL_FILE = PROJECT_ROOT / "assistant" / "refusal_model.json"
BANK_FILE = PROJECT_ROOT / "corpus" / "refusals.yaml"
CLINICAL_FILE = PROJECT_ROOT / "assistant" / "crisis_examples.yaml"
TRAIN_FILES = ("evals/gold.jsonl", "evals/holdout.jsonl", "evals/holdout2.jsonl")
ALLOW = "allow"
#: Chosen by ``--cv`` (C, the weight of each refusal example against an allow example, and the threshold):
#: the highest refusal recall whose cross-validated false refusal on allow examples stays <= 1% (recall 0.964,
#: false refusal 0.0089, with the second helper's clinical examples and the off-topic allow examples; with the
#: first helper's clinical examples alone threshold 0.3 was chosen at recall 0.988, false refusal 0.0082, and
#: before any clinical examples 0.6 at recall 0.943, 0.0091). Fully balanced weights refused more policy questions.
C = 64.0
REFUSE_WEIGHT = 10.0
THRESHOLD = 0.6


def load_bank() -> tuple[dict[str, list[str]], list[str]]:
    data = yaml.safe_load(BANK_FILE.read_text(encoding="utf-8"))
    return {k: list(v) for k, v in data["refuse"].items()}, list(data["allow"])


def training_data(settings: Settings) -> tuple[list[str], list[str]]:
    """(texts, labels): a label is ``allow`` or a refusal category id."""
    from assistant.scope import ScopeCheck
    from ingest.vocabulary import load_vocabulary

    refuse, allow = load_bank()
    texts: list[str] = []
    labels: list[str] = []
    written = yaml.safe_load(CLINICAL_FILE.read_text(encoding="utf-8"))
    for category, examples in [*refuse.items(), *written["clinical_not_crisis"].items()]:
        texts += examples
        labels += [category] * len(examples)
    # Ordinary requests unrelated to work ("Who won the league?") are not clinical requests: without them the
    # classifier, which saw only questions about mental health and work, could name a refusal category for them.
    allow_texts = [*allow, *curated_questions(settings.index.corpus_dir), *written["off_topic"]]
    scope = ScopeCheck(settings.scope, load_vocabulary(settings.index.corpus_dir / "vocabulary.yaml"))
    for row in labelled_rows(TRAIN_FILES):
        if row["type"] in ("answerable", "risk_adjacent"):
            allow_texts.append(row["question"])
        elif row["type"] == "out_of_scope":
            reason = scope.plain_reason(row["question"])
            if reason is not None and reason.category:
                texts.append(row["question"])
                labels.append(reason.category)
    add_negatives(texts, labels, allow_texts, ALLOW)
    return texts, labels


def fit(X: Any, labels: list[str], c: float, refuse_weight: float = REFUSE_WEIGHT) -> Any:
    return fit_softmax(X, labels, c, ALLOW, refuse_weight)


def train(settings: Settings) -> dict[str, Any]:
    texts, labels = training_data(settings)
    model = fit(embed(settings, texts), labels, C)
    return softmax_payload(settings, model, texts, labels, threshold=THRESHOLD, C=C, refuse_weight=REFUSE_WEIGHT)


def cross_validate(settings: Settings, cs: tuple[float, ...] = (16.0, 64.0, 256.0),
                   refuse_weights: tuple[float, ...] = (3.0, 10.0),
                   thresholds: tuple[float, ...] = (0.3, 0.5, 0.6, 0.7)) -> list[dict[str, Any]]:
    """Stratified 5-fold CV on the training data: refusal recall and false refusal for each
    (C, refusal weight, threshold)."""
    import numpy as np

    from assistant.scope import ScopeCheck
    from ingest.vocabulary import load_vocabulary

    texts, labels = training_data(settings)
    X = embed(settings, texts)
    y = np.asarray(labels)
    scope = ScopeCheck(settings.scope, load_vocabulary(settings.index.corpus_dir / "vocabulary.yaml"))
    pattern = np.asarray([(r := scope.plain_reason(t)) is not None and r.category is not None for t in texts])
    veto = settings.scope.refusal_veto
    rows = []
    for c, weight in ((c, w) for c in cs for w in refuse_weights):
        p_refuse, top = out_of_fold(X, y, c, ALLOW, weight)
        right_category = top == y
        refuse = y != ALLOW
        vetoed = pattern & (p_refuse < veto)
        rows.append({"C": c, "refuse_weight": weight, "veto": veto, "pattern_refusals_of_allow": int((pattern & ~refuse).sum()),
                     "vetoed_allow": int((vetoed & ~refuse).sum()), "vetoed_refuse": int((vetoed & refuse).sum())})
        for t in thresholds:
            hit = p_refuse >= t
            rows.append({"C": c, "refuse_weight": weight, "threshold": t, "refuse_recall": round(float(hit[refuse].mean()), 3),
                         "category_right": round(float((hit & right_category)[refuse].mean()), 3),
                         "false_refusal": round(float(hit[~refuse].mean()), 4),
                         "n_refuse": int(refuse.sum()), "n_allow": int((~refuse).sum())})
    return rows


def main(argv: list[str] | None = None) -> int:
    return run_cli(__doc__.splitlines()[0], MODEL_FILE, train, cross_validate, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
