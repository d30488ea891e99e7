"""What a reindex changed for managers: which gold answers now cite a new card, or lost a citation.

After each diff the index directory keeps ``gold_answers.json``: for every answerable gold question,
its status, the cards its answer cites and the cards its retrieval drew on, plus the card snapshot
(passage ids per card) those answers were given against. The next ingest compares the new manifest
with that snapshot to find the changed cards, then re-asks only the questions they can affect:

- questions whose recorded retrieval or citations include an updated or deleted card;
- questions whose new retrieval (retrieval only: no composing) reaches an added or updated card.

Nothing here runs when nothing changed, so an unchanged reindex loads no model. The ingest layer only
reports which cards changed; this module (the assistant layer) asks the questions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

GOLD_ANSWERS = "gold_answers.json"
FORMAT = 1


def gold_record_path(index_dir: Path) -> Path:
    return index_dir / GOLD_ANSWERS


def read_record(index_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(gold_record_path(index_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("answers"), dict):
        return None
    return data


def write_record(index_dir: Path, data: dict[str, Any]) -> None:
    """Atomic write, like the manifest."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = gold_record_path(index_dir)
    tmp = path.with_name(f".{GOLD_ANSWERS}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def card_snapshot(manifest: dict[str, Any] | None) -> dict[str, str]:
    """Card id -> a hash of its passage ids (what the index holds for it)."""
    out = {}
    for card_id, info in ((manifest or {}).get("cards") or {}).items():
        blob = "\n".join(sorted(info.get("passages", [])))
        out[card_id] = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return out


def changed_cards(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    return {"added": sorted(set(after) - set(before)),
            "updated": sorted(c for c in set(after) & set(before) if after[c] != before[c]),
            "deleted": sorted(set(before) - set(after))}


def answer_entry(assistant: Any, row: dict[str, Any]) -> dict[str, Any]:
    """Ask one gold question: what the diff remembers of its answer."""
    answer = assistant.ask(row["question"], history=row.get("history") or [])
    return {"question": row["question"], "status": answer.status,
            "cited": sorted({c.card_id for c in answer.citations}),
            "retrieved": sorted({r["card_id"] for r in answer.retrieved})}


def _pack(vector: Sequence[float]) -> str:
    import numpy as np  # here, not at the top: an unchanged ingest imports this module and no NumPy

    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _unpack(blob: str) -> list[float]:
    import numpy as np

    return np.frombuffer(base64.b64decode(blob), dtype="<f4").astype(float).tolist()


def retrieved_cards(assistant: Any, row: dict[str, Any], cache: dict[str, Any] | None = None) -> set[str]:
    """The cards one gold question's retrieval reaches (no composing, no safety gate).

    ``cache`` (the recorded entry) keeps the query's vector, so later diffs skip embedding the question;
    the record is only used with the same collection, hence the same model.
    """
    followup = assistant.followup(row["question"], row.get("history") or [])
    query = followup.retrieval_query
    vector = None
    if cache is not None and cache.get("query") == query and isinstance(cache.get("vector"), str):
        vector = _unpack(cache["vector"])
    result = assistant.retriever.retrieve(query, enumerate_all=assistant.retriever.is_enumerative(followup.new),
                                          vector=vector)
    if cache is not None and vector is None:
        cache["query"], cache["vector"] = query, _pack(result.query_vector)
    # The relevance gate judges the fused candidates, not only the top passages: a new card among the
    # best of them may now be cited.
    reach = result.passages + result.candidates[:assistant.settings.evals.diff_reach]
    return {sp.passage.card_id for sp in reach}


@dataclass
class AnswerDiff:
    """The answer diff printed at the end of ``peer-assist ingest``."""

    cards: dict[str, list[str]] = field(default_factory=lambda: {"added": [], "updated": [], "deleted": []})
    questions: int = 0  # answerable gold questions
    affected: int = 0  # re-asked because their evidence touches a changed card
    changes: list[dict[str, Any]] = field(default_factory=list)
    baseline_recorded: int = 0  # questions asked against the previous index first (no earlier record)
    baseline_seconds: float = 0.0
    note: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        if self.note:
            return [f"Answer diff: {self.note}"]
        parts = [f"{kind} {', '.join(ids)}" for kind, ids in self.cards.items() if ids]
        head = (f"Answer diff on the gold questions (cards {'; '.join(parts)}): {self.affected} of "
                f"{self.questions} answerable questions draw on them and were asked again, "
                f"{len(self.changes)} answer(s) changed ({self.seconds:.1f} s)")
        if self.baseline_recorded:
            head += (f"; first, with no earlier record, the {self.baseline_recorded} answers of the previous "
                     f"index were recorded ({self.baseline_seconds:.1f} s)")
        out = [head + "."]
        for ch in self.changes:
            bits = []
            if ch["status"][0] != ch["status"][1]:
                bits.append(f"status {ch['status'][0]} -> {ch['status'][1]}")
            if ch["cards_added"]:
                bits.append(f"now cites {', '.join(ch['cards_added'])}")
            if ch["cards_lost"]:
                bits.append(f"no longer cites {', '.join(ch['cards_lost'])}")
            out.append(f"  {ch['id']}: {'; '.join(bits)}  \"{ch['question']}\"")
        return out


def _answerable(gold: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in gold if r.get("type") == "answerable"]


def _valid(record: dict[str, Any] | None, collection: str, settings_hash: str) -> bool:
    return bool(record and record.get("collection") == collection and record.get("settings_hash") == settings_hash)


def needs_baseline(record: dict[str, Any] | None, collection: str, settings_hash: str) -> bool:
    """True when there is no usable record of earlier gold answers for this index and these settings."""
    return not _valid(record, collection, settings_hash)


def record_baseline(assistant: Any, gold: Sequence[dict[str, Any]], manifest: dict[str, Any] | None,
                    collection: str, settings_hash: str) -> dict[str, Any]:
    """Ask every answerable gold question against the current index (before a reindex)."""
    rows = _answerable(gold)
    return {"format": FORMAT, "collection": collection, "settings_hash": settings_hash,
            "cards": card_snapshot(manifest), "answers": {r["id"]: answer_entry(assistant, r) for r in rows},
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def diff_after_reindex(record: dict[str, Any], assistant_factory: Callable[[], Any], gold: Sequence[dict[str, Any]],
                       manifest: dict[str, Any] | None, collection: str,
                       settings_hash: str) -> tuple[AnswerDiff, dict[str, Any] | None]:
    """Re-ask the gold questions the changed cards can affect; return the diff and the new record
    (None when nothing changed, so nothing is written and nothing is loaded)."""
    t0 = time.perf_counter()
    rows = _answerable(gold)
    after = card_snapshot(manifest)
    cards = changed_cards(record.get("cards") or {}, after)
    diff = AnswerDiff(cards=cards, questions=len(rows))
    if not any(cards.values()):
        diff.note = "no card changed since the recorded gold answers"
        return diff, None
    assistant = assistant_factory()
    old: dict[str, Any] = record["answers"]
    gone = set(cards["updated"]) | set(cards["deleted"])
    fresh = set(cards["added"]) | set(cards["updated"])
    affected: list[dict[str, Any]] = []
    for row in rows:
        prev = old.get(row["id"])
        if (prev is None or prev.get("question") != row["question"]  # not recorded yet: asked, no "change"
                or gone & (set(prev.get("retrieved", [])) | set(prev.get("cited", [])))
                or (fresh and fresh & retrieved_cards(assistant, row, prev))):
            affected.append(row)
    answers = dict(old)
    for row in affected:
        new = answer_entry(assistant, row)
        prev = old.get(row["id"])
        if prev is not None and prev.get("vector"):
            new["query"], new["vector"] = prev.get("query"), prev["vector"]  # same question, same model
        answers[row["id"]] = new
        if prev is None or prev.get("question") != row["question"]:
            continue
        diff.affected += 1
        added = sorted(set(new["cited"]) - set(prev["cited"]))
        lost = sorted(set(prev["cited"]) - set(new["cited"]))
        if added or lost or new["status"] != prev["status"]:
            diff.changes.append({"id": row["id"], "question": row["question"], "status": [prev["status"], new["status"]],
                                 "cards_added": added, "cards_lost": lost})
    ids = {r["id"] for r in rows}
    new_record = {"format": FORMAT, "collection": collection, "settings_hash": settings_hash, "cards": after,
                  "answers": {k: v for k, v in answers.items() if k in ids},
                  "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    diff.seconds = round(time.perf_counter() - t0, 3)
    return diff, new_record
