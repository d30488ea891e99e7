"""A multinomial logistic regression over a question's embedding, trained offline and shipped as JSON.

The refusal check (``assistant/refusal_model.json``) and the known-gap check
(``assistant/gap_model.json``) are both one of these: a "nothing to do" class (``allow``, ``none``)
against named categories. Loading is plain NumPy, so answering needs no scikit-learn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self

import numpy as np


@dataclass(frozen=True)
class SoftmaxModel:
    classes: tuple[str, ...]
    weights: np.ndarray  # (classes, dimensions)
    bias: np.ndarray
    threshold: float
    embedding_model: str
    #: the class that means "none of the categories"
    NEGATIVE: ClassVar[str] = "none"

    @classmethod
    def load(cls, path: Path) -> Self:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(tuple(data["classes"]), np.asarray(data["weights"], dtype="float64"),
                   np.asarray(data["bias"], dtype="float64"), float(data["threshold"]), str(data["embedding_model"]))

    def probabilities(self, vector: Sequence[float]) -> np.ndarray:
        z = self.weights @ np.asarray(vector, dtype="float64") + self.bias
        e = np.exp(z - z.max())
        return np.asarray(e / e.sum())

    def decide(self, vector: Sequence[float]) -> tuple[str, float]:
        """The likeliest named category and the probability of any named category (not ``NEGATIVE``)."""
        p = self.probabilities(vector)
        negative = self.classes.index(self.NEGATIVE)
        named = 1.0 - float(p[negative])
        p[negative] = -1.0
        return self.classes[int(np.argmax(p))], named
