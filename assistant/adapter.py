"""A linear map of the question's embedding that brings it nearer the card passages that answer it.

The general-purpose encoder places a manager's question near every passage on the same broad topic;
which card of a strategy answers it is a finer distinction. The adapter is a 384 x 384 matrix
``W`` learned offline (``python -m evals.train_adapter``) from questions written from the card text
(``corpus/questions/`` and ``corpus/adapter_questions/``) and labelled manager questions that are never
measured on (``evals/manager_train.jsonl``, ``holdout.jsonl``, ``holdout2.jsonl``), so that ``normalise(W q)``
scores the sections that answer a question above every other card's passages. Only the relevance gate reads it (as extra features); retrieval,
the scope check and the classifiers keep the encoder's own vector, so their calibration is
unchanged. Shipped as ``assistant/query_adapter.npz``; loading is plain NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_FILE = Path(__file__).with_name("query_adapter.npz")


@dataclass(frozen=True)
class QueryAdapter:
    matrix: np.ndarray  # (dimensions, dimensions), float32
    embedding_model: str
    training_digest: str = ""

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> QueryAdapter:
        with np.load(path, allow_pickle=False) as data:
            return cls(np.asarray(data["matrix"], dtype="float32"), str(data["embedding_model"]),
                       str(data["training_digest"]))

    def save(self, path: Path = MODEL_FILE) -> None:
        np.savez(path, matrix=self.matrix.astype("float32"), embedding_model=np.array(self.embedding_model),
                            training_digest=np.array(self.training_digest))

    def apply(self, vector: Sequence[float] | np.ndarray) -> np.ndarray:
        """The adapted, L2-normalised question vector (float32, like the stored passage vectors)."""
        v = self.matrix @ np.asarray(vector, dtype="float32")
        norm = float(np.linalg.norm(v))
        return v / norm if norm > 0 else v
