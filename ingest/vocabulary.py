"""The vocabularies as data (``corpus/vocabulary.yaml``): spelling folds, synonyms, follow-up and
scope words, question cues. Loaded and checked once; every pattern must compile."""

from __future__ import annotations

import re
from functools import cached_property, lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ingest.safe_yaml import load_data_file
from ingest.text import Tokenizer

VOCABULARY_FILE = "vocabulary.yaml"


def _compiles(pattern: str) -> str:
    """A pattern must compile and must not match everything (an empty match would fire on any question)."""
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc}): {pattern[:60]!r}") from None
    if compiled.search("") is not None or compiled.search("xq") is not None:
        raise ValueError(f"the pattern matches an empty string, so it would fire on every question: {pattern[:60]!r}")
    return pattern


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Spelling(_Frozen):
    ise_stems: tuple[str, ...] = Field(default=(), description="Word starts whose British -is- is folded to -iz-.")


class FollowupWords(_Frozen):
    leading: str = Field(description="Openers of an elliptical follow-up ('and what about', 'ok').")
    subject: str = Field(description="Words that name an explicit subject, so a pronoun need not point back.")
    pronoun: str = Field(description="Pronouns that may point back to an earlier turn.")

    _check = field_validator("leading", "subject", "pronoun")(lambda cls, v: _compiles(v))


class OutOfScope(_Frozen):
    id: str | None = Field(None, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$",
                           description="Names a refusal category that the semantic refusal check "
                                       "(``corpus/refusals.yaml``) can also decide.")
    reason: str = Field(min_length=3)
    pattern: str
    skip_crisis_classifier: bool = Field(False, description="Code, injections and trivia skip the crisis classifier "
                                                            "(the crisis rules still apply).")
    nearest: tuple[str, ...] = Field((), description="'<theme>/<strategy>' topics the evidence does cover, "
                                                      "offered instead.")

    _check = field_validator("pattern")(lambda cls, v: _compiles(v))


class ScopeWords(_Frozen):
    anchor: str = Field(description="Words that tie a question to peer work in mental health services.")
    evidence_words: tuple[str, ...] = Field(description="Stemmed words that only ask about the evidence itself.")
    out_of_scope: tuple[OutOfScope, ...] = Field(description="Requests plainly outside the evidence base.")
    ruled_out: str | None = Field(None, description="Phrases that name a refused request only to rule it out "
                                                    "('without trying to diagnose him'): removed before the "
                                                    "out-of-scope patterns run, so the policy question is answered.")

    _check = field_validator("anchor")(lambda cls, v: _compiles(v))
    _check_ruled_out = field_validator("ruled_out")(lambda cls, v: v if v is None else _compiles(v))


class Cues(_Frozen):
    enumerate: tuple[str, ...] = Field(description="'Which studies looked at X?' and similar.")
    asks_findings: str = Field(description="Questions about what the studies found.")

    @field_validator("enumerate")
    @classmethod
    def _each(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_compiles(p) for p in v)

    _check = field_validator("asks_findings")(lambda cls, v: _compiles(v))


class Aspect(_Frozen):
    """A setting, group or time a question may name (see corpus/vocabulary.yaml)."""

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    label: str = Field(min_length=3)
    terms: tuple[str, ...] = Field(min_length=1)
    card_terms: tuple[str, ...] = Field(min_length=1)

    def in_question(self, text: str) -> bool:
        return bool(_words_pattern(self.terms).search(text))

    def in_card_text(self, text: str) -> bool:
        return bool(_words_pattern(self.card_terms).search(text))


@lru_cache(maxsize=512)
def _words_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """Any of ``words`` as a whole word, longest first (built once per word list, not per question)."""
    alts = sorted((re.escape(w.lower()) for w in words), key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(alts) + r")\b", re.IGNORECASE)


class Vocabulary(_Frozen):
    """Every vocabulary of the answer path, validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    spelling: Spelling = Spelling()
    synonyms: dict[str, str] = Field(default_factory=dict)
    followup: FollowupWords
    scope: ScopeWords
    cues: Cues
    aspects: tuple[Aspect, ...] = ()
    generic_words: frozenset[str] = Field(frozenset(), description="Stemmed words that name no topic.")
    descriptive_designs: frozenset[str] = Field(frozenset(), description="Designs that measure no effect.")

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return Tokenizer(self.spelling.ise_stems)

    @cached_property
    def synonym_re(self) -> re.Pattern[str] | None:
        keys = sorted((re.escape(k) for k in self.synonyms), key=len, reverse=True)
        return re.compile(r"\b(" + "|".join(keys) + r")\b", re.IGNORECASE) if keys else None

    def expand_query(self, query: str) -> str:
        """Append the card vocabulary for manager words found in the query."""
        if self.synonym_re is None:
            return query
        extra = [self.synonyms[m.group(1).lower()] for m in self.synonym_re.finditer(query)]
        return f"{query} {' '.join(extra)}" if extra else query


def load_vocabulary(path: Path) -> Vocabulary:
    """Read and check the vocabulary file; raises CorpusError naming every problem."""
    return load_data_file(path, Vocabulary)
