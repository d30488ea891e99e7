"""The feedback log: JSON lines, appended under a lock; concurrent writers never corrupt or lose a line."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import pytest

from assistant.feedback import (FIELDS, MAX_COMMENT_CHARS, FeedbackError, lock_path, make_entry, read_feedback,
                                record_feedback)

BIG = "ä€😀 quote, \"escaped\"\nnew line\u2028 " * 400  # ~16 KB per line: far above PIPE_BUF


def _entry(writer: str, i: int) -> dict[str, object]:
    return {"writer": writer, "i": i, "answer": BIG, "rating": "up"}


def _write_many(path: str, writer: str, count: int) -> None:
    for i in range(count):
        record_feedback(path, _entry(writer, i))


def _check_file(path: Path, expected: set[tuple[str, int]]) -> None:
    raw = path.read_bytes().decode("utf-8")
    assert raw.endswith("\n")
    lines = raw[:-1].split("\n")
    seen = set()
    for line in lines:
        item = json.loads(line)  # every line is one complete JSON object
        assert item["answer"] == BIG
        seen.add((item["writer"], item["i"]))
    assert len(lines) == len(expected) and seen == expected  # none lost, none doubled


def test_make_entry_has_every_field_and_checks_the_rating() -> None:
    entry = make_entry(question="q", answer="a [1]", status="answered", citations=[{"n": 1, "card_id": "x-2020"}],
                       rating="up", comment="  c  ", settings_hash="abc")
    assert tuple(entry) == FIELDS
    assert entry["comment"] == "c" and entry["time"].endswith("+00:00")
    assert len(make_entry(question="q", answer="a", status="answered", citations=[], rating="down",
                          comment="x" * 10_000)["comment"]) == MAX_COMMENT_CHARS
    with pytest.raises(ValueError, match="'sideways'"):
        make_entry(question="q", answer="a", status="answered", citations=[], rating="sideways")


def test_round_trip_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "feedback.jsonl"
    assert read_feedback(path) == []
    first = make_entry(question="Who supervises?", answer="Text [1]", status="answered",
                       citations=[{"n": 1, "card_id": "gates-2007"}], rating="up", comment="useful\nthanks")
    record_feedback(path, first)
    record_feedback(path, {**first, "rating": "down"})
    assert read_feedback(path) == [first, {**first, "rating": "down"}]
    assert path.read_text(encoding="utf-8").count("\n") == 2  # newlines inside values stay escaped
    assert lock_path(path).name == "feedback.jsonl.lock"


def test_rejects_non_dict_and_reports_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    with pytest.raises(TypeError):
        record_feedback(path, ["not", "a", "dict"])  # type: ignore[arg-type]
    path.write_text('{"ok": 1}\n{"broken": \n', encoding="utf-8")
    with pytest.raises(FeedbackError, match=":2: not valid JSON"):
        read_feedback(path)


def test_unwritable_location_is_a_friendly_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FeedbackError, match="Cannot write feedback"):
        record_feedback(blocker / "feedback.jsonl", {"a": 1})


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_concurrent_threads_never_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    threads = [threading.Thread(target=_write_many, args=(str(path), f"t{k}", 60)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _check_file(path, {(f"t{k}", i) for k in range(8) for i in range(60)})


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_concurrent_processes_never_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "feedback.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(path), f"p{k}", 80)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    # a writer in this process at the same time as the others finished is covered by the threads test
    _check_file(path, {(f"p{k}", i) for k in range(4) for i in range(80)})


def test_entries_are_bounded_in_size(tmp_path: Path) -> None:
    from assistant.feedback import bounded

    cites = [{"n": i, "card_id": f"card-{i}", "chunk_id": f"c{i}", "quote": "q" * 2000} for i in range(1, 30)]
    entry = make_entry(question="Who supervises?", answer=BIG * 3, status="answered", citations=cites,
                       rating="up", comment="x" * 5000)
    path = tmp_path / "feedback.jsonl"
    record_feedback(path, entry, max_bytes=8_000)
    line = path.read_bytes()
    assert len(line) <= 8_000
    saved = read_feedback(path)[0]
    assert saved["truncated"] is True and saved["rating"] == "up" and saved["question"] == "Who supervises?"
    assert [c["card_id"] for c in saved["citations"]] == [c["card_id"] for c in cites]  # ids kept, quotes dropped
    assert saved["answer"].endswith(" …") and BIG.startswith(saved["answer"][:200])
    small = make_entry(question="q", answer="a", status="answered", citations=[], rating="down")
    assert bounded(small, 8_000) is small  # an entry that fits is written as it is
    with pytest.raises(FeedbackError, match="does not fit"):
        bounded({"rating": "up", "other": "y" * 5000}, 2_000)
