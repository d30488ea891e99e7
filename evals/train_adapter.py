"""Train the question adapter shipped in ``assistant/query_adapter.npz`` (see ``assistant.adapter``).

Training data, each question paired with the passages of the section it was written for: the curated
"questions this section answers" of ``corpus/questions/`` (indexed beside the cards) and the further
questions of ``corpus/adapter_questions/`` (the same format; used only here, not indexed). Both are
written from the card text alone. Beside them, weighted ``LABELLED_WEIGHT`` each, the answerable questions
of ``LABELLED_FILES`` with their expected cards' sections: ``evals/manager_train.jsonl`` (299 manager
questions worded from public guides by three helpers who saw no code and no card, each batch labelled
by two helpers who saw only the cards) and ``evals/holdout.jsonl`` and ``holdout2.jsonl`` (training sets of the
classifiers already). The gold tune split is never trained on here, and a question that also appears
in a held-out set is dropped. The map ``W`` starts at the
identity and minimises, over all questions at once, the cross-entropy of a softmax over every
summary and strategy passage (cosine x ``SCALE``), plus ``L2`` x ||W - I||^2; Adam, ``STEPS`` steps.

``--cv`` reports, on the gold *tune* split (never a training set here), how well the dense cosine
alone ranks each question's expected cards, raw and adapted, for a few weights of the labelled
questions, step counts and penalties: the shipped values were chosen from it (weight 0: best-cut F1
0.710, MAP 0.666; weight 8, 100 steps: 0.775, 0.753). Run: ``python -m evals.train_adapter [--cv]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import yaml

from assistant.adapter import MODEL_FILE, QueryAdapter
from assistant.settings import PROJECT_ROOT, Settings, get_settings
from evals.classifier_training import embed, held_out_questions, labelled_rows
from evals.metrics import expected_strategies
from ingest.types import Passage

#: Folders of ``corpus/`` whose ``<card>.yaml`` files hold section questions.
QUESTION_DIRS = ("questions", "adapter_questions")
#: Labelled manager questions (never a held-out set): each answerable one, without a history, is paired with
#: the passages of its expected cards' expected sections (every summary and strategy passage of the card when
#: the item names no strategy), weighted ``LABELLED_WEIGHT`` against one card question.
LABELLED_FILES = ("evals/manager_train.jsonl", "evals/holdout.jsonl", "evals/holdout2.jsonl")
#: Chosen by ``--cv`` on the gold tune split (see the module docstring).
STEPS = 100
L2 = 1e-3
LABELLED_WEIGHT = 8.0
SCALE = 20.0
LEARNING_RATE = 1e-3


def training_pairs(settings: Settings, labelled_weight: float = LABELLED_WEIGHT,
                   ) -> tuple[list[str], list[str], list[list[int]], list[float]]:
    """(questions, passage texts, for each question the indices of its section's passages, and its weight)."""
    from ingest.cards import load_corpus
    from ingest.split import split_corpus

    index = settings.index
    passages = [p for p in split_corpus(load_corpus(index.corpus_dir, index.max_card_bytes).cards,
                                        index.chunk_size, index.chunk_overlap)
                if p.section in ("summary", "strategy")]
    by_section: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(passages):
        key = (p.card_id, _section_id(p))
        by_section.setdefault(key, []).append(i)
    held = held_out_questions()
    questions: list[str] = []
    targets: list[list[int]] = []
    for folder in QUESTION_DIRS:
        for path in sorted((index.corpus_dir / folder).glob("*.yaml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            for section, items in (data.get("sections") or {}).items():
                rows = by_section.get((data["card"], section), [])
                if not rows:
                    raise ValueError(f"{folder}/{path.name}: no passage of card {data['card']!r} is section {section!r}")
                for q in items:
                    q = " ".join(q.split())
                    if q not in held:
                        questions.append(q)
                        targets.append(rows)
    weights = [1.0] * len(questions)
    for item in labelled_rows(LABELLED_FILES):
        if item["type"] != "answerable" or not item.get("expected_cards") or item.get("history") \
                or item["question"] in held:
            continue
        cards, strategies = set(item["expected_cards"]), expected_strategies(item)
        themes = {s.split("/")[0] for s in strategies}
        rows = [i for i, p in enumerate(passages) if p.card_id in cards and (
            not strategies or p.section == "summary" or _section_id(p) in strategies
            or (p.theme in themes and not p.strategy))]
        if rows:
            questions.append(" ".join(item["question"].split()))
            targets.append(rows)
            weights.append(labelled_weight)
    return questions, [p.embed_text() for p in passages], targets, weights


def _section_id(p: Passage) -> str:
    """The key a questions file uses for the passage's section: ``summary``, ``theme/strategy`` or,
    for a theme-level heading, ``theme``."""
    if p.section == "summary":
        return "summary"
    return f"{p.theme}/{p.strategy}" if p.strategy else str(p.theme)


def training_digest(questions: Sequence[str], texts: Sequence[str], targets: Sequence[Sequence[int]],
                    weights: Sequence[float]) -> str:
    blob = json.dumps([list(questions), list(texts), [list(t) for t in targets], list(weights), STEPS, L2, SCALE,
                       LEARNING_RATE])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fit(Q: np.ndarray, P: np.ndarray, targets: Sequence[Sequence[int]], steps: int = STEPS, l2: float = L2,
        weights: Sequence[float] | None = None) -> np.ndarray:
    """The adapter matrix for question rows ``Q`` and passage rows ``P`` (both L2-normalised); ``weights``:
    each question's weight in the mean loss (default 1)."""
    import torch

    torch.manual_seed(0)
    q = torch.tensor(Q, dtype=torch.float32)
    p = torch.nn.functional.normalize(torch.tensor(P, dtype=torch.float32), dim=-1)
    eye = torch.eye(q.shape[1])
    goal = torch.zeros(len(Q), len(P))
    for i, rows in enumerate(targets):
        goal[i, list(rows)] = 1.0 / len(rows)
    weight = torch.tensor(list(weights) if weights is not None else [1.0] * len(Q), dtype=torch.float32)
    weight = weight / weight.sum()
    w = torch.nn.Parameter(eye.clone())
    opt = torch.optim.Adam([w], lr=LEARNING_RATE)
    for _ in range(steps):
        logits = torch.nn.functional.normalize(q @ w.T, dim=-1) @ p.T * SCALE
        loss = -((goal * torch.log_softmax(logits, dim=-1)).sum(-1) * weight).sum() + l2 * ((w - eye) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return np.asarray(w.detach().numpy(), dtype="float32")


def train(settings: Settings) -> QueryAdapter:
    questions, texts, targets, weights = training_pairs(settings)
    matrix = fit(embed(settings, questions), _embed_passages(settings, texts), targets, weights=weights)
    return QueryAdapter(matrix, settings.index.embedding_model, training_digest(questions, texts, targets, weights))


def _embed_passages(settings: Settings, texts: Sequence[str]) -> np.ndarray:
    from ingest.embedding import get_embedder

    return np.asarray(get_embedder(settings.index).embed_documents(list(texts)), dtype="float64")


def tune_inputs(settings: Settings) -> tuple[list[Passage], np.ndarray, list[dict[str, Any]], np.ndarray]:
    """What ``ranking_quality`` scores, embedded once: the summary and strategy passages and their
    vectors, the gold tune split's answerable items and their question vectors."""
    from evals.run import load_gold
    from ingest.cards import load_corpus
    from ingest.split import split_corpus

    index = settings.index
    passages = [p for p in split_corpus(load_corpus(index.corpus_dir, index.max_card_bytes).cards,
                                        index.chunk_size, index.chunk_overlap) if p.section in ("summary", "strategy")]
    items = [i for i in load_gold(PROJECT_ROOT / "evals" / "gold.jsonl")
             if i.get("split") == "tune" and i["type"] == "answerable" and i.get("expected_cards")]
    return (passages, _embed_passages(settings, [p.embed_text() for p in passages]), items,
            embed(settings, [i["question"] for i in items]))


def ranking_quality(settings: Settings, matrix: np.ndarray | None,
                    inputs: tuple[list[Passage], np.ndarray, list[dict[str, Any]], np.ndarray] | None = None,
                    ) -> dict[str, float]:
    """On the gold tune split's answerable items: each card scored by its best summary or strategy
    passage's cosine with the question (adapted by ``matrix`` when given); the mean over items of the
    best F1 any cut-off of that ranking reaches, and the mean average precision. ``inputs``: from
    ``tune_inputs`` (computed here when not given)."""
    passages, P, items, Q = inputs if inputs is not None else tune_inputs(settings)
    if matrix is not None:
        Q = Q @ matrix.T.astype("float64")
        Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    f1s, aps = [], []
    for item, scores in zip(items, Q @ P.T, strict=True):
        best: dict[str, float] = {}
        for p, s in zip(passages, scores, strict=True):
            best[p.card_id] = max(best.get(p.card_id, -1.0), float(s))
        expected = set(item["expected_cards"])
        hits, ap, f1 = 0, 0.0, 0.0
        for k, card in enumerate(sorted(best, key=lambda c: -best[c]), 1):
            if card in expected:
                hits += 1
                ap += hits / k
                f1 = max(f1, 2 * hits / (k + len(expected)))
        f1s.append(f1)
        aps.append(ap / len(expected))
    return {"best_cut_f1": round(float(np.mean(f1s)), 4), "map": round(float(np.mean(aps)), 4), "items": len(items)}


def cross_validate(settings: Settings) -> list[dict[str, Any]]:
    questions, texts, targets, _ = training_pairs(settings)
    Q, P = embed(settings, questions), _embed_passages(settings, texts)
    tune = tune_inputs(settings)
    rows: list[dict[str, Any]] = [{"adapter": "none", **ranking_quality(settings, None, tune)}]
    for weight in (0.0, 1.0, 4.0, 8.0, 16.0):
        weights = training_pairs(settings, labelled_weight=weight)[3]
        for steps in (50, 100):
            for l2 in (0.0, 1e-3):
                rows.append({"labelled_weight": weight, "steps": steps, "l2": l2,
                             **ranking_quality(settings, fit(Q, P, targets, steps, l2, weights), tune)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", action="store_true", help="report tune-split ranking quality instead of writing the model")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.cv:
        for row in cross_validate(settings):
            print(json.dumps(row))
        return 0
    adapter = train(settings)
    adapter.save(MODEL_FILE)
    print(f"wrote {MODEL_FILE} (digest {adapter.training_digest})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
