"""Choosing which card sentences to quote: exact substrings that stand on their own."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from ingest.text import Tokenizer, split_sentences

_ANAPHOR = re.compile(r"^(this|these|that|those|such|it|its|they|their|there|here|both|the same|in this|in these|"
                      r"in that|on this|for this|from this|this is|as a result|however|but|also)\b", re.IGNORECASE)


@lru_cache(maxsize=4096)
def _parts(text: str, tokenize: Tokenizer) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...],
                                                   tuple[tuple[str, ...], ...]]:
    """A passage's sentences, their spans in ``text`` and their tokens: the same for every
    question, so worked out once per text (keyed by the text itself: nothing to invalidate when
    a reindex changes the passages)."""
    sentences = split_sentences(text)
    spans, pos = [], 0
    for sent in sentences:
        start = text.find(sent, pos)
        spans.append((start, start + len(sent)))
        pos = start + len(sent)
    return tuple(sentences), tuple(spans), tuple(tuple(tokenize(sent)) for sent in sentences)


def best_sentences(text: str, q_tokens: set[str], idf: Callable[[str], float], tokenize: Tokenizer, n: int = 1,
                   *, first_bonus: float = 0.5, position_penalty: float = 0.01) -> list[str]:
    """The ``n`` sentences of ``text`` that share the most (IDF-weighted) words with the question,
    in their original order. Ties favour earlier sentences, which usually state the strategy. A
    chosen sentence that leans on the one before ("This ...", "Such posts ...") is quoted together
    with it, so every quote stands on its own; quotes are always exact substrings of ``text``."""
    sentences, spans, tokens = _parts(text, tokenize)
    if len(sentences) <= n:
        return list(sentences)
    scored = []
    for i in range(len(sentences)):
        overlap = sum(idf(t) for t in set(tokens[i]) & q_tokens)
        scored.append((overlap + (first_bonus if i == 0 else 0.0) - position_penalty * i, i))
    keep = sorted(i for _, i in sorted(scored, reverse=True)[:n])
    out = []
    for i in keep:
        start = spans[i - 1][0] if i > 0 and _ANAPHOR.match(sentences[i]) and (i - 1) not in keep else spans[i][0]
        out.append(text[start:spans[i][1]])
    return out
