"""Feedback on answers: one JSON object per line in ``settings.feedback_file``.

Writers in several threads or processes never corrupt the file: every entry is written while
holding a lock on a sidecar ``<file>.lock`` (filelock), as one ``write()`` of one complete line to a
descriptor opened with ``O_APPEND``. Readers need no lock: a line is either fully there or absent.

Each entry holds ``time, question, answer, status, citations, rating, comment, settings_hash``
(the UI fills them; :func:`make_entry` builds one from an answer). The UI bounds each entry
(``max_feedback_bytes``): an entry that would be longer keeps its citations' ids only and a cut
answer, with ``truncated: true``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock, Timeout

from assistant.errors import AssistantError

Rating = Literal["up", "down"]
RATINGS = ("up", "down")
#: Longest comment kept; longer ones are cut (a feedback log is not a document store).
MAX_COMMENT_CHARS = 2000
FIELDS = ("time", "question", "answer", "status", "citations", "rating", "comment", "settings_hash")


class FeedbackError(AssistantError):
    help_message = "Check that the feedback file's folder exists and is writable (PEER_ASSIST_FEEDBACK_PATH)."


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def make_entry(*, question: str, answer: str, status: str, citations: list[dict[str, Any]], rating: str,
               comment: str = "", settings_hash: str = "") -> dict[str, Any]:
    """A feedback entry with the current UTC time; bad ratings fail here, naming the value."""
    if rating not in RATINGS:
        raise ValueError(f"rating must be one of {RATINGS}, not {rating!r}")
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "question": question,
        "answer": answer,
        "status": status,
        "citations": citations,
        "rating": rating,
        "comment": (comment or "").strip()[:MAX_COMMENT_CHARS],
        "settings_hash": settings_hash,
    }


def _line(entry: dict[str, Any]) -> bytes:
    # ensure_ascii keeps the line free of raw line separators (U+2028 etc.) that could split it.
    return (json.dumps(entry, ensure_ascii=True, separators=(",", ":"), default=str) + "\n").encode("utf-8")


def bounded(entry: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """``entry`` cut to at most ``max_bytes`` as a JSON line, so the log grows by a bounded amount per
    click: citations keep their card ids and numbers only, then the answer text is cut (marked
    ``truncated``). Raises FeedbackError when even that does not fit."""
    if len(_line(entry)) <= max_bytes:
        return entry
    out = dict(entry, truncated=True)
    cites = out.get("citations")
    if isinstance(cites, list):
        out["citations"] = [{k: c.get(k) for k in ("n", "card_id", "chunk_id")} if isinstance(c, dict) else c
                            for c in cites]
    for key in ("answer", "comment", "question"):
        if len(_line(out)) <= max_bytes:
            break
        if not isinstance(out.get(key), str):
            continue
        text = out[key]
        lo, hi = 0, len(text)  # the longest prefix that fits (escaped characters take several bytes)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(_line({**out, key: text[:mid] + " …"})) <= max_bytes:
                lo = mid
            else:
                hi = mid - 1
        out[key] = text[:lo] + " …"
    if len(_line(out)) > max_bytes:
        raise FeedbackError(f"A feedback entry does not fit in {max_bytes:,} bytes.")
    return out


def record_feedback(path: Path | str, entry: dict[str, Any], *, timeout: float = 10.0,
                    max_bytes: int | None = None) -> None:
    """Append ``entry`` as one JSON line (cut to ``max_bytes``); safe with concurrent writers
    (threads and processes)."""
    if not isinstance(entry, dict):
        raise TypeError(f"a feedback entry must be a dict, not {type(entry).__name__}")
    path = Path(path)
    line = _line(bounded(entry, max_bytes) if max_bytes else entry)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock_path(path)), timeout=timeout):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                written = os.write(fd, line)
                while written < len(line):  # a regular file takes it in one go; be exact anyway
                    written += os.write(fd, line[written:])
            finally:
                os.close(fd)
    except Timeout as exc:
        raise FeedbackError(f"The feedback file {path} is locked by another writer.") from exc
    except OSError as exc:
        raise FeedbackError(f"Cannot write feedback to {path}: {exc.strerror or exc}") from exc


def read_feedback(path: Path | str) -> list[dict[str, Any]]:
    """Every entry in the file, oldest first ([] when there is none yet).

    Raises FeedbackError naming the line when a line is not a JSON object.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise FeedbackError(f"Cannot read the feedback file {path}: {exc}") from exc
    entries: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise FeedbackError(f"{path}:{lineno}: not valid JSON ({exc})") from exc
        if not isinstance(item, dict):
            raise FeedbackError(f"{path}:{lineno}: expected a JSON object")
        entries.append(item)
    return entries
