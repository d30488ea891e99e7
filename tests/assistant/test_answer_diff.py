"""The answer diff's pieces: card snapshots, changed cards, which questions are re-asked, the record."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from assistant import answer_diff as AD
from assistant.settings import Settings


def manifest(**cards: list[str]) -> dict[str, Any]:
    return {"cards": {cid: {"hash": "x", "passages": ps} for cid, ps in cards.items()}}


def test_changed_cards_from_two_snapshots() -> None:
    before = AD.card_snapshot(manifest(a=["1", "2"], b=["3"], c=["4"]))
    after = AD.card_snapshot(manifest(a=["2", "1"], b=["3b"], d=["5"]))
    assert AD.changed_cards(before, after) == {"added": ["d"], "updated": ["b"], "deleted": ["c"]}


class FakeAssistant:
    """Answers from a table: question -> (status, cited, retrieved); counts what it is asked."""

    def __init__(self, table: dict[str, tuple[str, list[str], list[str]]]) -> None:
        self.table, self.asked, self.retrieved = table, [], []
        self.retriever = self
        self.embedded: list[str] = []
        self.settings = Settings()

    def ask(self, question: str, history: Any = None) -> Any:
        self.asked.append(question)
        status, cited, retrieved = self.table[question]
        return SimpleNamespace(status=status, citations=[SimpleNamespace(card_id=c) for c in cited],
                               retrieved=[{"card_id": r} for r in retrieved])

    def followup(self, question: str, history: Any) -> Any:
        return SimpleNamespace(retrieval_query=question, new=question)

    def is_enumerative(self, question: str) -> bool:
        return False

    def retrieve(self, query: str, *, enumerate_all: bool, vector: Any = None) -> Any:
        self.retrieved.append(query)
        if vector is None:
            self.embedded.append(query)
            vector = [float(len(query)), 0.5]
        return SimpleNamespace(query_vector=vector, candidates=[],
                               passages=[SimpleNamespace(passage=SimpleNamespace(card_id=r))
                                         for r in self.table[query][2]])


GOLD = [{"id": "q1", "type": "answerable", "question": "one"}, {"id": "q2", "type": "answerable", "question": "two"},
        {"id": "q3", "type": "answerable", "question": "three"}, {"id": "c1", "type": "crisis", "question": "help"}]


def test_only_affected_questions_are_asked_again(tmp_path: Path) -> None:
    old = FakeAssistant({"one": ("answered", ["a"], ["a", "b"]), "two": ("answered", ["c"], ["c"]),
                         "three": ("answered", ["c"], ["c"])})
    record = AD.record_baseline(old, GOLD, manifest(a=["1"], b=["2"], c=["3"]), "coll", "h")
    assert set(record["answers"]) == {"q1", "q2", "q3"} and len(old.asked) == 3  # the crisis row is not asked
    # b updated; new card n reaches q3 only.
    new = FakeAssistant({"one": ("answered", ["a", "b"], ["a", "b"]), "two": ("answered", ["c"], ["c"]),
                         "three": ("answered", ["n"], ["n", "c"])})
    diff, rec = AD.diff_after_reindex(record, lambda: new, GOLD, manifest(a=["1"], b=["2x"], c=["3"], n=["9"]),
                                      "coll", "h")
    assert diff.cards == {"added": ["n"], "updated": ["b"], "deleted": []}
    assert new.asked == ["one", "three"], "q1 drew on the updated card, q3 now reaches the new one"
    assert new.retrieved == ["two", "three"], "retrieval only for the rest"
    assert [(c["id"], c["cards_added"], c["cards_lost"]) for c in diff.changes] == [("q1", ["b"], []), ("q3", ["n"], ["c"])]
    assert diff.affected == 2 and diff.questions == 3
    lines = diff.lines()
    assert lines[0].startswith("Answer diff on the gold questions (cards added n; updated b): 2 of 3")
    assert lines[1] == '  q1: now cites b  "one"' and lines[2] == '  q3: now cites n; no longer cites c  "three"'
    assert rec is not None and rec["answers"]["q3"]["cited"] == ["n"] and rec["cards"]["n"]
    AD.write_record(tmp_path, rec)
    assert AD.read_record(tmp_path) == rec
    # The next diff reuses the question vectors recorded by this one: no question is embedded again.
    assert new.embedded == ["two", "three"] and rec["answers"]["q2"]["vector"] and rec["answers"]["q3"]["vector"]
    newer = FakeAssistant({"one": ("answered", ["a", "b"], ["a", "b"]), "two": ("answered", ["c"], ["c"]),
                           "three": ("answered", ["n"], ["n", "c"])})
    diff, rec2 = AD.diff_after_reindex(rec, lambda: newer, GOLD, manifest(a=["1"], b=["2x"], c=["3"], n=["9"], m=["7"]),
                                       "coll", "h")
    assert diff.cards["added"] == ["m"] and newer.retrieved == ["one", "two", "three"]
    assert newer.embedded == ["one"], "only the question without a recorded vector is embedded"
    assert AD._unpack(rec2["answers"]["q2"]["vector"]) == [3.0, 0.5]


def test_nothing_changed_loads_nothing() -> None:
    record = {"format": AD.FORMAT, "collection": "coll", "settings_hash": "h",
              "cards": AD.card_snapshot(manifest(a=["1"])), "answers": {}}

    def factory() -> Any:
        raise AssertionError("no assistant may be built when no card changed")

    diff, rec = AD.diff_after_reindex(record, factory, GOLD, manifest(a=["1"]), "coll", "h")
    assert rec is None and diff.note


def test_record_for_other_vectors_or_settings_is_not_used(tmp_path: Path) -> None:
    record = {"format": AD.FORMAT, "collection": "coll", "settings_hash": "h", "cards": {}, "answers": {}}
    assert not AD.needs_baseline(record, "coll", "h")
    assert AD.needs_baseline(record, "other", "h") and AD.needs_baseline(record, "coll", "h2")
    assert AD.needs_baseline(None, "coll", "h")
    (tmp_path / AD.GOLD_ANSWERS).write_text("{not json", encoding="utf-8")
    assert AD.read_record(tmp_path) is None
