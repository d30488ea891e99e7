"""The abstention template: what the evidence does not cover, and the nearest topics it does."""

from __future__ import annotations

from typing import Sequence


def abstention_text(reason: str, topics: Sequence[str]) -> str:
    text = f"The evidence in this assistant does not cover that ({reason})."
    text += " It covers how mental health services introduce and support peer workers"
    return text + (f", for example: {'; '.join(topics)}." if topics else ".")
