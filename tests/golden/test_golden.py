"""Behaviour pins: the answers to a fixed question list must not change unless we mean them to.

After an intended change, rerun ``python -m tests.golden.snapshot`` and explain the diff in the commit.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.golden.snapshot import ANSWERS, answer_all

pytestmark = pytest.mark.integration


def test_answers_match_the_snapshots(real_assistant: Any) -> None:
    expected = {r["id"]: r for r in map(json.loads, ANSWERS.read_text(encoding="utf-8").splitlines())}
    got = {r["id"]: r for r in answer_all(real_assistant)}
    assert got.keys() == expected.keys()
    changed = [i for i in expected if got[i] != expected[i]]
    assert not changed, f"{len(changed)} answers changed: {changed[:10]}"
