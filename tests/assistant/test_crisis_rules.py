"""The crisis rules as records (assistant/crisis_rules.yaml): every rule's examples, the loader's
checks, and the wiring of the rules into check_crisis."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.safety import FORMS, CrisisRule, CrisisRulesError, check_crisis, load_crisis_rules

RULES = load_crisis_rules()


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_rule_matches_its_examples_and_not_its_counter_examples(rule: CrisisRule) -> None:
    assert rule.must_match and rule.must_not_match
    assert rule.failures() == []


def test_every_kind_has_rules_and_names_are_unique() -> None:
    assert {r.kind for r in RULES} == set(FORMS)
    assert len({r.name for r in RULES}) == len(RULES)


@pytest.mark.parametrize("rule", [r for r in RULES if r.kind in ("self", "danger")],
                         ids=[r.name for r in RULES if r.kind in ("self", "danger")])
def test_routing_rules_route_their_examples_through_the_gate(rule: CrisisRule) -> None:
    for example in rule.must_match:
        assert check_crisis(example).crisis, example


@pytest.mark.parametrize("question, crisis, rule", [
    ("I want to kill myself", True, "kill-myself"),
    ("a service user has a knife in reception", True, "has-a-weapon"),
    ("my colleague is suicidal right now", True, "risk-now"),
    ("She texted 'thank you for everything' and now she isn't answering", True, "not-answering+thanks-for-everything"),
    ("One of my peer workers told me she keeps self-harming", True, "self-harm-words"),
    ("What should our self-harm policy for staff include?", False, "self-harm-words"),
    ("How do we recruit peer workers?", False, ""),
])
def test_verdict_names_the_deciding_rule(question: str, crisis: bool, rule: str) -> None:
    verdict = check_crisis(question)
    assert (verdict.crisis, verdict.rule) == (crisis, rule), verdict


GOOD = """- name: {name}
  kind: {kind}
  pattern: '{pattern}'
  must_match: ["kill myself"]
  must_not_match: ["kill time"]
"""


@pytest.mark.parametrize("fields, message", [
    ({"pattern": "(unclosed"}, "not a valid regular expression"),
    ({"pattern": "x*"}, "matches an empty string"),
    ({"kind": "feelings"}, "unknown kind"),
    ({"name": "Not Kebab"}, "must be unique"),
])
def test_bad_rules_are_rejected_naming_the_rule(tmp_path: Path, fields: dict[str, str], message: str) -> None:
    values = {"name": "bad-rule", "kind": "self", "pattern": r"\bkill my ?self\b", **fields}
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD.format(**values), encoding="utf-8")
    with pytest.raises(CrisisRulesError, match=message):
        load_crisis_rules(path)


def test_duplicate_names_and_missing_examples_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    one = GOOD.format(name="same", kind="self", pattern="x")
    path.write_text(one + one, encoding="utf-8")
    with pytest.raises(CrisisRulesError, match="'same'"):
        load_crisis_rules(path)
    path.write_text(one.replace('must_not_match: ["kill time"]', "must_not_match: []"), encoding="utf-8")
    with pytest.raises(CrisisRulesError, match="'same'.*must_not_match"):
        load_crisis_rules(path)
