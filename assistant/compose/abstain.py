"""The abstention template: why the assistant declines, what the evidence does not address, what to
do instead, and the nearest topics it does cover. Fixed wording around curated text only."""

from __future__ import annotations

from collections.abc import Sequence


def abstention_text(reason: str | None, topics: Sequence[str], *, not_covered: Sequence[str] = (),
                    instead: Sequence[str] = ()) -> str:
    """``reason`` None: the question's main aspect is a known gap, and the gap sentence leads."""
    parts = [] if reason is None else [f"The evidence in this assistant does not cover that ({reason})."]
    parts += [f"The evidence here does not address {t}." for t in not_covered]
    parts += [f"Instead, {i}." for i in instead]
    parts.append("It covers how mental health services introduce and support peer workers"
                 + (f", for example: {'; '.join(topics)}." if topics else "."))
    return " ".join(parts)
