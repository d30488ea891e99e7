"""What the question-embedding classifiers' trainers share (``train_crisis``, ``train_refusal``,
``train_gaps``): reading the curated card questions and the labelled training sets, embedding the examples, the training-data fingerprint the shipped models carry, the
weighted softmax fit, its out-of-fold probabilities for ``--cv``, the JSON that
``assistant.classifier.SoftmaxModel`` loads, and the command line."""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from assistant.settings import PROJECT_ROOT, Settings, get_settings

#: Sets whose figures are reported as held out: no classifier trains on a question in them (nor on the gold test split).
HELD_OUT_FILES = ("evals/holdout3.jsonl", "evals/fresh.jsonl", "evals/near_domain.jsonl", "evals/off_topic.jsonl")


def held_out_questions() -> set[str]:
    """Every question of the gold test split and of HELD_OUT_FILES."""
    held: set[str] = set()
    for name in ("evals/gold.jsonl", *HELD_OUT_FILES):
        for line in (PROJECT_ROOT / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else None
            if row and (name != "evals/gold.jsonl" or row.get("split") == "test"):
                held.add(row["question"])
    return held


def curated_questions(corpus_dir: Path) -> list[str]:
    """Every curated "question this section answers" in ``corpus/questions/``, file by file."""
    out: list[str] = []
    for path in sorted((corpus_dir / "questions").glob("*.yaml")):
        for questions in (yaml.safe_load(path.read_text(encoding="utf-8")).get("sections") or {}).values():
            out += list(questions)
    return out


def labelled_rows(files: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The labelled questions of ``files`` (paths under the project), without the gold test split."""
    for name in files:
        for line in (PROJECT_ROOT / name).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            if name == "evals/gold.jsonl" and row.get("split") == "test":
                continue  # the gold test split is held out
            yield row


def add_negatives(texts: list[str], labels: list[str], negatives: Iterable[str], label: str) -> None:
    """Append each negative example once, unless it is already a positive one."""
    seen = set(texts)
    for t in negatives:
        if t not in seen:
            seen.add(t)
            texts.append(t)
            labels.append(label)


def embed(settings: Settings, texts: Sequence[str]) -> Any:
    """The texts as the assistant embeds questions (float64 rows)."""
    import numpy as np

    from ingest.embedding import get_embedder

    embedder = get_embedder(settings)
    encode = getattr(embedder, "embed_queries", embedder.embed_documents)
    return np.asarray(encode(list(texts)), dtype="float64")


def digest(texts: Sequence[str], labels: Sequence[Any]) -> str:
    """The fingerprint of (text, label) pairs a shipped model records and its test recomputes."""
    return hashlib.sha256("\n".join(f"{y}\t{t}" for t, y in zip(texts, labels)).encode()).hexdigest()[:16]


def fit_softmax(X: Any, labels: Sequence[str], c: float, negative: str, weight: float) -> Any:
    """Multinomial logistic regression; every class but ``negative`` weighs ``weight``."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight={y: 1.0 if y == negative else weight for y in set(labels)},
                              max_iter=5000).fit(X, list(labels))


def out_of_fold(X: Any, y: Any, c: float, negative: str, weight: float) -> tuple[Any, Any]:
    """Stratified 5-fold: each example's probability of a named class (not ``negative``) and its
    likeliest named class, from the fold that did not train on it."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    p_named = np.zeros(len(y))
    top = np.empty(len(y), dtype=object)
    for train_idx, test_idx in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
        model = fit_softmax(X[train_idx], list(y[train_idx]), c, negative, weight)
        proba = model.predict_proba(X[test_idx])
        neg = list(model.classes_).index(negative)
        p_named[test_idx] = 1.0 - proba[:, neg]
        proba[:, neg] = -1.0
        top[test_idx] = model.classes_[proba.argmax(axis=1)]
    return p_named, top


def softmax_payload(settings: Settings, model: Any, texts: Sequence[str], labels: Sequence[str],
                    **meta: Any) -> dict[str, Any]:
    """The JSON a ``SoftmaxModel`` loads, with its provenance (``meta``: threshold, C and the like)."""
    return {"embedding_model": settings.index.embedding_model, **meta,
            "n_train": len(texts), "counts": {c: list(labels).count(c) for c in sorted(set(labels))},
            "training_digest": digest(texts, labels),
            "classes": [str(c) for c in model.classes_],
            "bias": [round(float(b), 6) for b in model.intercept_],
            "weights": [[round(float(w), 6) for w in row] for row in model.coef_]}


def run_cli(description: str, model_file: Path, train: Callable[[Settings], dict[str, Any]],
            cross_validate: Callable[[Settings], list[dict[str, Any]]], argv: list[str] | None = None) -> int:
    """``--cv`` prints the cross-validation rows; otherwise train and write ``model_file``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cv", action="store_true", help="report cross-validation instead of writing the model")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.cv:
        for row in cross_validate(settings):
            print(json.dumps(row))
        return 0
    data = train(settings)
    model_file.write_text(json.dumps(data) + "\n", encoding="utf-8")
    print(f"wrote {model_file} ({data['n_train']} examples: {data['counts']})")
    return 0
