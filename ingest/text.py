"""Text utilities shared by both layers: normalising, sentence splitting and word tokens for BM25.

The tokenizer folds British -ise spellings to -ize before stemming, so "organisation" and
"organization" meet; the list of stems to fold is data (``corpus/vocabulary.yaml``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

STOPWORDS = frozenset("""
a an and are as at be been being but by can could did do does doing for from had has have how i if in into is it
its me my of on or our ours should so than that the their them then there these they this those to up us was we
were what when where which who whom why will with would you your yours about any all also just more most other some
such very own same only both each few nor not no too s t don now ve ll re d m o y am
""".split())


def normalise(text: str) -> str:
    """NFKC, straight apostrophes, control characters removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    if not text.isprintable():  # (the common case, all printable, needs no pass per character)
        text = "".join(ch if (ch.isprintable() or ch in "\n\t") else " " for ch in text)
    return " ".join(text.split())


# Abbreviations that end in a period but do not end a sentence.
_ABBREV = re.compile(r"(?:\b(?:e\.g|i\.e|et al|vs|cf|approx|Dr|Prof|Mr|Mrs|Ms|St|No|Fig|incl|esp|etc)|\b[A-Z])\.$")
_BOUNDARY = re.compile(r"[.!?][\"”')\]]*(?=\s+[\"“(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences; every sentence is an exact substring of ``text``."""
    sentences: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        start = 0
        for m in _BOUNDARY.finditer(para):
            if m.group(0)[0] == "." and _ABBREV.search(para[max(start, m.start() - 12):m.start() + 1]):
                continue
            sentence = para[start:m.end()].strip()
            if sentence:
                sentences.append(sentence)
            start = m.end()
        tail = para[start:].strip()
        if tail:
            sentences.append(tail)
    return sentences


_WORD = re.compile(r"[a-z0-9]+")
TEXT_CACHE_MAX = 8192  # texts whose tokens a Tokenizer keeps (then it starts again)


@lru_cache(maxsize=1)
def _snowball() -> object:
    import snowballstemmer

    return snowballstemmer.stemmer("english")


class Tokenizer:
    """Lower-case, stemmed word tokens without stop words; ``ise_stems`` are the word starts whose
    British "-is-" is folded to "-iz-" before stemming."""

    def __init__(self, ise_stems: Iterable[str] = ()) -> None:
        stems = sorted({s.strip().lower() for s in ise_stems if s and s.strip()})
        if any(not re.fullmatch(r"[a-z]+", s) for s in stems):
            raise ValueError(f"spelling stems must be lower-case letters only, got {stems}")
        self.ise_stems = tuple(stems)
        self._fold = re.compile(r"^(" + "|".join(stems) + r")is") if stems else None
        self._cache: dict[str, str] = {}
        # Whole texts too: the answer path tokenizes the same question and passage sentences in
        # several stages. A pure function of the text, so it needs no invalidation; bounded.
        self._texts: dict[str, tuple[str, ...]] = {}

    def stem(self, word: str) -> str:
        out = self._cache.get(word)
        if out is None:
            folded = self._fold.sub(r"\1iz", word) if self._fold else word
            out = str(_snowball().stemWord(folded))  # type: ignore[attr-defined]
            if len(self._cache) < 200_000:
                self._cache[word] = out
        return out

    def __call__(self, text: str) -> list[str]:
        tokens = self._texts.get(text)
        if tokens is None:
            tokens = tuple(self.stem(t) for t in _WORD.findall(text.lower()) if t not in STOPWORDS and len(t) > 1)
            if len(self._texts) >= TEXT_CACHE_MAX:
                self._texts.clear()
            self._texts[text] = tokens
        return list(tokens)
