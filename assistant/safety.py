"""The crisis gate, checked before anything else: crisis language is routed to help.

Crisis detection is deliberately rule-based and errs towards routing: a missed crisis is far
worse than a manager seeing a crisis message for an ambiguous question. Questions that mention
suicide or self-harm only as a policy, training or evidence topic are not routed.

The rules are named records kept as data (``assistant/crisis_rules.yaml``), each with examples it
must and must not match; this module joins them by kind and combines the kinds (``check_crisis``).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from assistant.errors import AssistantError
from ingest.safe_yaml import safe_yaml
from ingest.text import normalise

SPECIALIST_MODEL = Path(__file__).with_name("crisis_clinical_model.json")
OFFTOPIC_MODEL = Path(__file__).with_name("crisis_offtopic_model.json")

log = logging.getLogger(__name__)

CRISIS_MESSAGE = (
    "It sounds like someone may be in danger or thinking about suicide or self-harm. "
    "**If anyone is in immediate danger, call your local emergency number now** (for example 911 in the "
    "US and Canada, 999 or 112 in the UK and Ireland, 000 in Australia, 111 in New Zealand). "
    "For urgent support, contact a crisis line: 988 (US, call or text), Samaritans 116 123 (UK and Ireland), "
    "Lifeline 13 11 14 (Australia), 1737 (New Zealand), or your local crisis service. "
    "If this is about a colleague or someone you support, stay with them if it is safe, and follow your "
    "service's emergency or risk procedure.\n\n"
    "This assistant summarises research on supporting peer workers. It cannot give clinical or crisis "
    "advice, so it has not searched the evidence for this message."
)

RuleKind = Literal["self", "danger", "risk-term", "time-after", "time-before", "unreachable", "farewell", "specific",
                   "present-state", "hypothetical"]

#: How the patterns of one kind are written around when joined ("{}": the kind's patterns, joined by "|").
#: A rule's pattern alone is checked the same way, so its examples test what check_crisis runs.
FORMS: dict[str, str] = {
    "self": "{}", "danger": "{}", "risk-term": r"\b({})", "time-after": r"\b({})\b", "time-before": r"\b({})\b",
    "unreachable": "{}", "farewell": r"\b({})\b", "specific": r"\b({})\b", "present-state": "{}",
    "hypothetical": r"\b({})\b",
}
RULES_FILE = Path(__file__).with_name("crisis_rules.yaml")
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class CrisisRulesError(AssistantError):
    help_message = "Fix the rule named above in assistant/crisis_rules.yaml (tests/assistant/test_crisis_rules.py)."


@dataclass(frozen=True)
class CrisisRule:
    """One named crisis pattern with examples it must and must not match (``assistant/crisis_rules.yaml``)."""

    name: str
    kind: RuleKind
    pattern: str
    must_match: tuple[str, ...]
    must_not_match: tuple[str, ...]

    @cached_property
    def regex(self) -> re.Pattern[str]:
        """The pattern as check_crisis uses it (wrapped like its kind)."""
        return re.compile(FORMS[self.kind].format(self.pattern), re.IGNORECASE)

    def failures(self) -> list[str]:
        """Examples that do not behave as stated (checked on normalised, lower-case text, like questions)."""
        out = [f"{self.name}: does not match {e!r}" for e in self.must_match if not self.regex.search(_prepare(e))]
        out += [f"{self.name}: matches {e!r}" for e in self.must_not_match if self.regex.search(_prepare(e))]
        return out


def _prepare(text: str) -> str:
    return normalise(text).lower()


def _examples(rule: dict[str, Any], key: str) -> tuple[str, ...]:
    value = rule.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(e, str) and e.strip() for e in value):
        raise CrisisRulesError(f"crisis rule {rule.get('name')!r}: `{key}` must be a non-empty list of examples")
    return tuple(value)


def load_crisis_rules(path: Path | None = None) -> tuple[CrisisRule, ...]:
    """Read and check the crisis rules: known kinds, unique names, patterns that compile and never
    match an empty question, at least one example each way. Raises CrisisRulesError naming the rule."""
    path = path or RULES_FILE
    data = safe_yaml(path.read_text(encoding="utf-8"))
    if not isinstance(data, list) or not data:
        raise CrisisRulesError(f"{path.name} must be a non-empty list of rules")
    rules: list[CrisisRule] = []
    seen: set[str] = set()
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict) or set(item) != {"name", "kind", "pattern", "must_match", "must_not_match"}:
            raise CrisisRulesError(f"crisis rule {i} must have exactly name, kind, pattern, must_match, must_not_match")
        name, kind, pattern = item["name"], item["kind"], item["pattern"]
        if not isinstance(name, str) or not _NAME.match(name) or name in seen:
            raise CrisisRulesError(f"crisis rule {i}: name {name!r} must be unique lower-case-with-dashes")
        seen.add(name)
        if kind not in FORMS:
            raise CrisisRulesError(f"crisis rule {name!r}: unknown kind {kind!r} (one of {', '.join(FORMS)})")
        if not isinstance(pattern, str) or not pattern:
            raise CrisisRulesError(f"crisis rule {name!r}: pattern must be a non-empty string")
        rule = CrisisRule(name, kind, pattern, _examples(item, "must_match"), _examples(item, "must_not_match"))
        try:
            compiled = rule.regex
        except re.error as exc:
            raise CrisisRulesError(f"crisis rule {name!r}: not a valid regular expression ({exc})") from None
        if compiled.search("") is not None:
            raise CrisisRulesError(f"crisis rule {name!r}: the pattern matches an empty string, so it fires on anything")
        rules.append(rule)
    return tuple(rules)


@dataclass(frozen=True)
class _Gate:
    """The rules of each kind joined into the expressions check_crisis runs."""

    rules: dict[str, tuple[CrisisRule, ...]]
    self_: re.Pattern[str]
    danger: re.Pattern[str]
    risk: re.Pattern[str]
    risk_now: re.Pattern[str]
    unreachable: re.Pattern[str]
    farewell: re.Pattern[str]
    specific: re.Pattern[str]
    present_state: re.Pattern[str]
    hypothetical: re.Pattern[str]

    def rule_at(self, kind: str, text: str, pos: int) -> str:
        """The rule whose pattern matched at ``pos`` (the first of its kind, as in the joined expression)."""
        return next((r.name for r in self.rules[kind] if r.regex.match(text, pos)), kind)


def build_gate(rules: Sequence[CrisisRule]) -> _Gate:
    by_kind: dict[str, tuple[CrisisRule, ...]] = {k: tuple(r for r in rules if r.kind == k) for k in FORMS}
    missing = [k for k, rs in by_kind.items() if not rs]
    if missing:
        raise CrisisRulesError(f"no crisis rules of kind {', '.join(missing)}")

    def joined(kind: str) -> str:
        return FORMS[kind].format("|".join(r.pattern for r in by_kind[kind]))

    def rx(pattern: str) -> re.Pattern[str]:
        return re.compile(pattern, re.IGNORECASE)

    # A risk term followed or preceded by words saying it is happening now.
    term = "(" + "|".join(r.pattern for r in by_kind["risk-term"]) + ")"
    risk_now = rf"\b{term}.{{0,60}}{joined('time-after')}|{joined('time-before')}.{{0,60}}{term}"
    return _Gate(by_kind, rx(joined("self")), rx(joined("danger")), rx(joined("risk-term")), rx(risk_now),
                 rx(joined("unreachable")), rx(joined("farewell")), rx(joined("specific")), rx(joined("present-state")),
                 rx(joined("hypothetical")))


@lru_cache(maxsize=1)
def _gate() -> _Gate:
    return build_gate(load_crisis_rules())


@dataclass(frozen=True)
class SafetyVerdict:
    crisis: bool
    reason: str = ""
    rule: str = ""  # the name of the crisis rule that decided it (assistant/crisis_rules.yaml)


def check_crisis(question: str) -> SafetyVerdict:
    """Crisis language about the asker, a colleague or a service user, direct or indirect."""
    gate = _gate()
    text = _prepare(question)
    m = gate.self_.search(text)
    if m:
        return SafetyVerdict(True, f"self: {m.group(0)}", gate.rule_at("self", text, m.start()))
    m = gate.danger.search(text)
    if m:
        return SafetyVerdict(True, f"danger: {m.group(0)}", gate.rule_at("danger", text, m.start()))
    m = gate.risk_now.search(text)
    if m:
        return SafetyVerdict(True, f"risk now: {m.group(0)}", "risk-now")
    unreachable = gate.unreachable.search(text)
    farewell = gate.farewell.search(text)
    if unreachable and farewell:
        return SafetyVerdict(True, "worrying message, then unreachable",
                             f"{gate.rule_at('unreachable', text, unreachable.start())}+"
                             f"{gate.rule_at('farewell', text, farewell.start())}")
    m = gate.risk.search(text)
    if m:
        # A risk word alone is a topic ("How many people die by suicide each year?", "our self-harm
        # policy"). It is routed when something says it is happening to someone now, unless the
        # question is framed as hypothetical or about the past.
        rule = gate.rule_at("risk-term", text, m.start())
        framed = gate.hypothetical.search(text)
        if (gate.specific.search(text) or gate.present_state.search(text)) and not framed:
            return SafetyVerdict(True, f"risk: {m.group(0)[:80]}", rule)
        return SafetyVerdict(False, "risk mentioned as a topic", rule)
    return SafetyVerdict(False)


class SemanticCrisisCheck:
    """A logistic-regression classifier over the question's embedding (``assistant/crisis_model.json``,
    trained by ``python -m evals.train_crisis`` on written examples and labelled questions).

    It runs after the rules and only adds routings, never removes them. It is used only with the
    embedding model it was trained for; with another model the rules work alone (and a warning says so).
    """

    def __init__(self, embedder: Any, model_file: Path | None = None, threshold: float | None = None) -> None:
        self.embedder = embedder
        self.model_file = model_file or Path(__file__).with_name("crisis_model.json")
        self.threshold = threshold
        self._model: tuple[Any, float, float] | None = None
        self.enabled = True

    def _load(self) -> tuple[Any, float, float] | None:
        if self._model is None and self.enabled:


            data = json.loads(self.model_file.read_text(encoding="utf-8"))
            if data.get("embedding_model") != getattr(self.embedder, "name", None):
                log.warning("crisis classifier was trained for %s, not %s: using the crisis rules only",
                            data.get("embedding_model"), getattr(self.embedder, "name", None))
                self.enabled = False
                return None
            threshold = self.threshold if self.threshold is not None else float(data["threshold"])
            self._model = (np.asarray(data["weights"], dtype="float64"), float(data["bias"]), threshold)
        return self._model

    def probability(self, vector: Sequence[float]) -> float | None:

        model = self._load()
        if model is None:
            return None
        weights, bias, _ = model
        z = float(weights @ np.asarray(vector, dtype="float64")) + bias
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def check(self, vector: Sequence[float]) -> SafetyVerdict:
        p = self.probability(vector)
        if p is not None and self._model is not None and p >= self._model[2]:
            return SafetyVerdict(True, f"classifier: p={p:.2f}")
        return SafetyVerdict(False)


class SecondOpinion:
    """A specialist crisis classifier asked in one region of questions, where the main classifier is known
    to read ordinary wording as risk. Only a classifier routing (never a rule's) is reviewed, and only
    lifted when the specialist, trained on that region's crises and non-crises, says it is not a crisis."""

    name = "specialist"

    def __init__(self, specialist: SemanticCrisisCheck) -> None:
        self.specialist = specialist

    def region(self, question: str, vector: Sequence[float]) -> str | None:
        """Why the question is in this specialist's region, or None."""
        raise NotImplementedError

    def review(self, verdict: SafetyVerdict, question: str, vector: Sequence[float] | None) -> SafetyVerdict:
        if not verdict.crisis or verdict.rule or vector is None:
            return verdict
        why = self.region(question, vector)
        if why is None:
            return verdict
        second = self.specialist.probability(vector)
        if second is None or self.specialist.check(vector).crisis:
            return verdict
        return SafetyVerdict(False, f"{verdict.reason}; {why}, {self.name} p={second:.2f}")


class ClinicalOverride(SecondOpinion):
    """Questions the refusal check is confident are clinical requests (a dose, a symptom, a diagnosis of
    someone): the main classifier reads that wording as risk, so "What's a normal dose of quetiapine?"
    would get the crisis message instead of a careful refusal. The specialist is
    ``assistant/crisis_clinical_model.json``."""

    name = "clinical specialist"

    def __init__(self, specialist: SemanticCrisisCheck, refusal: Any, categories: Sequence[str], min_p: float) -> None:
        super().__init__(specialist)
        self.refusal = refusal  # a RefusalModel, or None (then nothing is overridden)
        self.categories = frozenset(categories)
        self.min_p = min_p

    def region(self, question: str, vector: Sequence[float]) -> str | None:
        if self.refusal is None:
            return None
        category, p = self.refusal.decide(vector)
        return f"a clinical request ({category}, p={p:.2f})" if category in self.categories and p >= self.min_p else None


class OffTopicOverride(SecondOpinion):
    """Questions with no word tied to peer work (``scope.anchor`` in ``corpus/vocabulary.yaml``): the main
    classifier learned non-crisis only from questions about mental health and work, so it read a third of
    plain off-topic requests ("Best things to do in Lisbon?") as risk. The specialist
    (``assistant/crisis_offtopic_model.json``) also learned ordinary requests and means-seeking messages
    that look like them."""

    name = "off-topic specialist"

    def __init__(self, specialist: SemanticCrisisCheck, anchor: re.Pattern[str]) -> None:
        super().__init__(specialist)
        self.anchor = anchor

    def region(self, question: str, vector: Sequence[float]) -> str | None:
        return None if self.anchor.search(question) else "no word tied to peer work"
