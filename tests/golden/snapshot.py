"""Golden answer snapshots: a fixed question list answered end to end with the real model.

``python -m tests.golden.snapshot`` rewrites ``answers.jsonl``; ``test_golden.py`` fails when an
answer differs from it. Timings and fused scores are left out: they are not behaviour.

A few answers differ between the machines CI runs on (an AVX2-only CPU and one with AVX-512 give
a different answer for ``a008`` and ``g-enum``, from the same code, corpus and index settings).
``python -m tests.golden.snapshot --variants`` records this machine's differing answers in
``variants.jsonl``, labelled with its CPU; the test accepts an answer equal to the snapshot or to a
recorded variant, so it still fails on any other change. ``recorded_on.txt`` names the CPU the
snapshot was taken on: on a CPU with another widest vector extension for which no variant is
recorded yet, up to ``UNRECORDED_CPU_CHANGES`` answers may differ (the test names them, so they
can be recorded); on the snapshot's own kind of CPU every answer must match.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
QUESTIONS = HERE / "questions.jsonl"
ANSWERS = HERE / "answers.jsonl"
VARIANTS = HERE / "variants.jsonl"
RECORDED_ON = HERE / "recorded_on.txt"
UNRECORDED_CPU_CHANGES = 3


def snapshot(answer: dict[str, Any]) -> dict[str, Any]:
    """The parts of an answer contract that a refactoring must not change."""
    return {
        "status": answer["status"],
        "answer": answer["answer"],
        "strategies": [[s["theme"], s["title"], s["citations"]] for s in answer["strategies"]],
        "citations": [[c["n"], c["card_id"], c["section"], c["quote"]] for c in answer["citations"]],
        "not_covered": answer.get("not_covered", []),
        # An abstained question's candidates are near-ties far from any card, and their order is not
        # stable across processes (seen before the restructuring too): only answered ones are pinned.
        "retrieved": [r["chunk_id"] for r in answer["retrieved"]] if answer["status"] == "answered" else [],
    }


def questions() -> list[dict[str, Any]]:
    return [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]


def answer_all(assistant: Any) -> list[dict[str, Any]]:
    out = []
    for q in questions():
        ans = assistant.ask(q["question"], history=q.get("history") or []).to_dict()
        out.append({"id": q["id"], **snapshot(ans)})
    return out


def cpu() -> str:
    """What tells the recorded machines apart: the CPU model and its widest vector extension."""
    info = Path("/proc/cpuinfo").read_text(encoding="utf-8") if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    widest = "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "other"
    return f"{model} ({widest})"


def cpu_kind(description: str) -> str:
    """The widest vector extension in a ``cpu()`` description."""
    return description.rsplit("(", 1)[-1].rstrip(")") if "(" in description else description


def variant_kinds() -> set[str]:
    """The kinds of CPU ``variants.jsonl`` has answers from."""
    if not VARIANTS.exists():
        return set()
    return {cpu_kind(json.loads(line).get("recorded_on", "")) for line in VARIANTS.read_text(encoding="utf-8").splitlines()
            if line.strip()}


def variants() -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    if VARIANTS.exists():
        for line in VARIANTS.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row.pop("recorded_on", None)
                out.setdefault(row["id"], []).append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    from assistant.chat import Assistant

    rows = answer_all(Assistant())
    if "--variants" in (sys.argv[1:] if argv is None else argv):
        expected = {r["id"]: r for r in map(json.loads, ANSWERS.read_text(encoding="utf-8").splitlines())}
        known = variants()
        new = [r for r in rows if r != expected.get(r["id"]) and r not in known.get(r["id"], [])]
        with VARIANTS.open("a", encoding="utf-8") as f:
            f.writelines(json.dumps({**r, "recorded_on": cpu()}, ensure_ascii=False) + "\n" for r in new)
        print(f"recorded {len(new)} variants in {VARIANTS}: {[r['id'] for r in new]}")
        return 0
    ANSWERS.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    RECORDED_ON.write_text(cpu() + "\n", encoding="utf-8")
    VARIANTS.unlink(missing_ok=True)  # variants of the old snapshot no longer apply
    print(f"wrote {len(rows)} snapshots to {ANSWERS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
