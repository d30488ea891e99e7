"""`peer-assist eval`: answer quality over the gold set, with a report, a plot and a baseline check.

Per question it records the answer (status, citations, themes) and, for answerable questions, the
card ranking of three retrievers (BM25 only, dense only, hybrid) so the report shows what each
part buys. Metrics are aggregated per split (tune / test / all); the baseline check uses ``test``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.settings import PROJECT_ROOT, Settings
from evals import metrics as M

log = logging.getLogger(__name__)

GOLD = PROJECT_ROOT / "evals" / "gold.jsonl"
BASELINE = PROJECT_ROOT / "evals" / "baseline.json"
EXPECTED_STATUS = {"answerable": "answered", "out_of_scope": "abstained", "crisis": "crisis"}
MODES = ("bm25", "dense", "hybrid")
LOWER_IS_BETTER = {"false_crisis_rate", "false_abstention_rate"}
TYPES = ("answerable", "out_of_scope", "crisis", "risk_adjacent")


def load_gold(path: Path) -> list[dict[str, Any]]:
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("type") not in TYPES or not isinstance(row.get("question"), str):
            raise ValueError(f"{path}:{lineno}: each line needs a question and a type in {TYPES}")
        rows.append(row)
    return rows


def status_ok(row: dict[str, Any], status: str) -> bool:
    if row["type"] == "risk_adjacent":
        return status != "crisis"
    return status == EXPECTED_STATUS[row["type"]]


def run_questions(settings: Settings, gold: Sequence[dict[str, Any]], assistant: Any = None,
                  progress: bool = True) -> list[dict[str, Any]]:
    """Ask every gold question; return one result row per question."""
    from assistant.chat import Assistant
    from ingest.cards import load_corpus
    from ingest.gaps import GAPS_FILE, load_gaps

    assistant = assistant or Assistant(settings)
    card_texts = {c.id: c.full_text() for c in load_corpus(settings.index.corpus_dir, settings.index.max_card_bytes).cards}
    gap_topics = {g.id: g.topic for g in load_gaps(settings.index.data_file(GAPS_FILE)).gaps}
    passage_texts = {p.id: p.text for p in assistant.retriever.passages}
    iterator: Any = gold
    if progress:
        from tqdm import tqdm

        iterator = tqdm(gold, desc="Evaluating", unit="question", file=sys.stderr, disable=not sys.stderr.isatty())
    rows = []
    for item in iterator:
        history = item.get("history") or []
        t = time.perf_counter()
        answer = assistant.ask(item["question"], history=history)
        latency = (time.perf_counter() - t) * 1000
        data = answer.to_dict()
        check = M.check_answer(data, card_texts)
        expected_cards = set(item.get("expected_cards") or [])
        expected_themes = set(item.get("expected_themes") or [])
        row: dict[str, Any] = {
            "id": item["id"], "split": item.get("split", "test"), "type": item["type"], "question": item["question"],
            "history": history, "status": data["status"], "status_ok": status_ok(item, data["status"]),
            "expected_cards": sorted(expected_cards), "expected_themes": sorted(expected_themes),
            "cited_cards": check.cited_cards, "themes": check.themes, "citation_valid": check.valid,
            "quotes": check.quotes, "quotes_found": check.quotes_found, "latency_ms": round(latency, 2),
            "answer": data["answer"], "retrieval": {},
        }
        row["not_covered"] = data.get("not_covered", [])
        row["expected_not_covered"] = [gap_topics.get(g, g) for g in item.get("expected_not_covered") or []]
        row["gaps_named"] = [t for t in row["not_covered"] if t in gap_topics.values()]
        row["near_domain"] = bool(item.get("near_domain"))
        if item["type"] == "answerable" and expected_cards:
            row["expected_card_cited"] = bool(expected_cards & set(check.cited_cards))
            strategies = M.expected_strategies(item)
            row["card_precision"] = M.card_precision(check.cited_cards, expected_cards)
            row["card_recall"] = M.card_recall(check.cited_cards if data["status"] == "answered" else [],
                                               expected_cards)
            row["quotes_relevant"] = sum(M.quote_relevant(c, expected_cards, strategies) for c in data["citations"])
            row["theme_hit"] = bool(expected_themes & set(check.themes)) if expected_themes else None
            row["theme_coverage"] = (len(expected_themes & set(check.themes)) / len(expected_themes)
                                     if expected_themes else None)
            query = assistant.followup(item["question"], history).retrieval_query
            for mode in MODES:
                result = assistant.retriever.retrieve(query, k=20, mode=mode, enumerate_all=False)
                ranked = M.ranked_cards(sp.passage.card_id for sp in result.passages)
                row["retrieval"][mode] = {
                    "recall@5": M.recall_at(ranked, expected_cards, 5), "recall@10": M.recall_at(ranked, expected_cards, 10),
                    "mrr": M.mrr(ranked, expected_cards), "ndcg@10": M.ndcg_at(ranked, expected_cards, 10),
                    "ranked": ranked[:10],
                }
        if data["status"] == "answered":
            # Per-claim support, for either composer: a quoted card sentence always passes; an LLM
            # sentence passes when enough of its words are in the passages it cites.
            full = {**data, "citations": [dataclasses.asdict(c) for c in answer.citations]}
            row["claims"], row["claims_supported"] = M.claim_support(
                full, passage_texts, assistant.vocabulary.tokenizer, settings.llm.llm_min_support)
        llm = answer.trace.get("llm")
        if llm is not None:
            row["llm"] = {"generated": llm["generated"], "kept": llm["kept"], "dropped": llm["dropped"],
                          "fallback": llm["fallback"], "error": llm["error"]}
        rows.append(row)
    return rows


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Flat metric name -> value for one set of rows."""
    ans = [r for r in rows if r["type"] == "answerable"]
    answered = [r for r in ans if r["status"] == "answered" and r["expected_cards"]]
    out: dict[str, Any] = {"n_questions": len(rows), **{f"n_{t}": sum(r["type"] == t for r in rows) for t in TYPES}}
    out["status_accuracy"] = M.share(r["status_ok"] for r in rows)
    out["answerable_answered_rate"] = M.share(r["status"] == "answered" for r in ans)
    p, rec = M.precision_recall([r["status"] == "abstained" for r in rows], [r["type"] == "out_of_scope" for r in rows])
    out["abstention_precision"], out["abstention_recall"] = p, rec
    out["crisis_recall"] = M.share(r["status"] == "crisis" for r in rows if r["type"] == "crisis")
    out["false_crisis_rate"] = M.share(r["status"] == "crisis" for r in rows if r["type"] != "crisis")
    out["expected_card_cited_rate"] = M.share(r["expected_card_cited"] for r in answered)
    out["card_precision"] = M.share(r["card_precision"] for r in answered if r.get("card_precision") is not None)
    out["card_recall"] = M.share(r["card_recall"] for r in ans if r.get("card_recall") is not None)
    n_quotes = sum(r["quotes"] for r in answered)
    out["quote_relevance"] = round(sum(r.get("quotes_relevant", 0) for r in answered) / n_quotes, 4) if n_quotes else None
    out["false_abstention_rate"] = M.share(r["status"] == "abstained" for r in ans)
    near = [r for r in rows if r.get("near_domain")]
    out["near_domain_abstention"] = M.share(r["status"] == "abstained" for r in near)
    gaps = [r for r in rows if r.get("expected_not_covered")]
    out["not_covered_named"] = M.share(set(r["expected_not_covered"]) <= set(r.get("not_covered") or [])
                                       for r in gaps)
    # A known gap named where the question asks about none (answerable and risk-adjacent questions).
    out["false_gap_rate"] = M.share(bool(r.get("gaps_named")) for r in rows
                                    if r["type"] in ("answerable", "risk_adjacent") and not r.get("expected_not_covered"))
    out["theme_hit_rate"] = M.share(r["theme_hit"] for r in answered if r.get("theme_hit") is not None)
    out["theme_coverage"] = M.share(r["theme_coverage"] for r in answered if r.get("theme_coverage") is not None)
    with_cites = [r for r in rows if r["status"] == "answered"]
    out["citation_validity"] = M.share(r["citation_valid"] for r in with_cites)
    quotes = sum(r["quotes"] for r in with_cites)
    out["grounding"] = round(sum(r["quotes_found"] for r in with_cites) / quotes, 4) if quotes else None
    n_claims = sum(r.get("claims", 0) for r in rows)
    out["claims"] = n_claims
    out["claim_support"] = round(sum(r.get("claims_supported", 0) for r in rows) / n_claims, 4) if n_claims else None
    llm = [r["llm"] for r in rows if r.get("llm")]
    if llm:
        out["llm_answers"] = len(llm)
        out["llm_sentences_generated"] = sum(x["generated"] for x in llm)
        out["llm_sentences_kept"] = sum(x["kept"] for x in llm)
        out["llm_sentences_dropped"] = sum(len(x["dropped"]) for x in llm)
        out["fallback_rate"] = M.share(x["fallback"] != "none" for x in llm)
        out["fallback_appended"] = sum(x["fallback"] == "appended" for x in llm)
    for mode in MODES:
        scored = [r["retrieval"][mode] for r in ans if mode in r["retrieval"]]
        for metric in ("recall@5", "recall@10", "mrr", "ndcg@10"):
            out[f"{mode}.{metric}"] = M.share(s[metric] for s in scored)
    lat = sorted(r["latency_ms"] for r in rows if r["status"] != "crisis")
    if lat:
        out["answer_ms_p50"] = round(lat[len(lat) // 2], 2)
        out["answer_ms_p95"] = round(lat[min(len(lat) - 1, int(len(lat) * 0.95))], 2)
    return out


GATED = ["status_accuracy", "abstention_precision", "abstention_recall", "crisis_recall", "false_crisis_rate",
         "card_precision", "card_recall", "quote_relevance", "false_abstention_rate", "not_covered_named",
         "theme_hit_rate", "citation_validity", "grounding", "hybrid.recall@5", "hybrid.recall@10", "hybrid.mrr",
         "hybrid.ndcg@10"]


def compare(current: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """Regressions of the test split against the baseline (beyond its tolerance, or below a floor)."""
    tol = float(baseline.get("tolerance", 0.03))
    base = baseline["metrics"]
    problems = []
    for name in GATED:
        cur, ref = current.get(name), base.get(name)
        if cur is None or ref is None:
            continue
        if name in LOWER_IS_BETTER:
            if cur > ref + tol:
                problems.append(f"{name}: {cur:.3f} > baseline {ref:.3f} + {tol}")
        elif cur < ref - tol:
            problems.append(f"{name}: {cur:.3f} < baseline {ref:.3f} - {tol}")
    for name, floor in (baseline.get("floors") or {}).items():
        cur = current.get(name)
        if cur is not None and (cur > floor if name in LOWER_IS_BETTER else cur < floor):
            problems.append(f"{name}: {cur:.3f} breaks the required {'ceiling' if name in LOWER_IS_BETTER else 'floor'} {floor}")
    return problems


def diff_rows(previous: Sequence[dict[str, Any]], current: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Which gold answers changed between two reports: status changes, citations added or lost."""
    before = {r["id"]: r for r in previous}
    changes = []
    for r in current:
        old = before.get(r["id"])
        if old is None:
            changes.append({"id": r["id"], "question": r["question"], "change": "new question"})
            continue
        added = sorted(set(r["cited_cards"]) - set(old["cited_cards"]))
        lost = sorted(set(old["cited_cards"]) - set(r["cited_cards"]))
        if old["status"] != r["status"] or added or lost:
            changes.append({"id": r["id"], "question": r["question"], "status": [old["status"], r["status"]],
                            "cards_added": added, "cards_lost": lost})
    return changes


# ------------------------------------------------------------------------------------------------
# Report


#: What the LLM composer's report shows beside the grounded composer's.
SIDE_BY_SIDE = ("status_accuracy", "citation_validity", "grounding", "claims", "claim_support", "fallback_rate",
                "llm_sentences_generated", "llm_sentences_kept", "llm_sentences_dropped", "fallback_appended",
                "card_precision", "card_recall", "answer_ms_p50", "answer_ms_p95")


def _fmt(v: Any) -> str:
    return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def write_report(report: dict[str, Any], out: Path, baseline: dict[str, Any] | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    test, tune = report["metrics"]["test"], report["metrics"]["tune"]
    base = (baseline or {}).get("metrics", {})
    lines = [
        "# Evaluation report", "",
        (f"Gold set: `{report['gold']}` ({report['metrics']['all']['n_questions']} questions). "
         f"Settings hash `{report['settings_hash']}`, composer `{report['composer']}`, {report['created']}."), "",
        "## Answers (test split; tune split for reference)", "",
        "| metric | test | tune | baseline (test) |", "|---|---|---|---|",
    ]
    for name in ("status_accuracy", "answerable_answered_rate", "card_precision", "card_recall", "quote_relevance",
                 "abstention_precision", "abstention_recall", "false_abstention_rate", "near_domain_abstention",
                 "not_covered_named", "false_gap_rate", "crisis_recall", "false_crisis_rate", "expected_card_cited_rate",
                 "theme_hit_rate", "theme_coverage", "citation_validity", "grounding", "claims", "claim_support",
                 "llm_answers", "llm_sentences_generated", "llm_sentences_kept", "llm_sentences_dropped",
                 "fallback_rate", "fallback_appended", "answer_ms_p50", "answer_ms_p95"):
        if name in test:
            lines.append(f"| {name} | {_fmt(test.get(name))} | {_fmt(tune.get(name))} | {_fmt(base.get(name))} |")
    if report.get("grounded_metrics"):
        lines += ["", "## LLM composer beside the grounded composer (all splits)", "",
                  "| metric | llm | grounded |", "|---|---|---|"]
        llm_all, grounded_all = report["metrics"]["all"], report["grounded_metrics"]["all"]
        for name in SIDE_BY_SIDE:
            lines.append(f"| {name} | {_fmt(llm_all.get(name))} | {_fmt(grounded_all.get(name))} |")
    lines += ["", "## Retrieval: what each part buys (answerable questions, test split)", "",
              "| retriever | Recall@5 | Recall@10 | MRR | nDCG@10 |", "|---|---|---|---|---|"]
    for mode in MODES:
        lines.append(f"| {mode} | " + " | ".join(_fmt(test.get(f"{mode}.{m}")) for m in
                                                ("recall@5", "recall@10", "mrr", "ndcg@10")) + " |")
    if report.get("regressions") is not None:
        lines += ["", "## Baseline check", ""]
        lines += [f"- REGRESSION {p}" for p in report["regressions"]] or ["No regression beyond the tolerance."]
    if report.get("diff") is not None:
        lines += ["", f"## Answers changed since the previous report ({len(report['diff'])})", ""]
        for d in report["diff"][:50]:
            lines.append(f"- `{d['id']}` {d['question']} — {d.get('status', d.get('change'))}; "
                         f"added {d.get('cards_added', [])}, lost {d.get('cards_lost', [])}")
    worst = [r for r in report["rows"] if r["type"] == "answerable" and r["split"] == "test"
             and (not r["status_ok"] or (r.get("card_precision") or 0.0) < 0.5 or (r.get("card_recall") or 0.0) < 0.5)]
    worst.sort(key=lambda r: (r.get("card_precision") or 0.0) + (r.get("card_recall") or 0.0))
    lines += ["", (f"## Worst test questions ({len(worst)} answerable with a wrong status, or card precision or "
                   "recall under 0.5)"), ""]
    for r in worst[:8]:
        lines += [f"### `{r['id']}` {r['question']}", "",
                  (f"status **{r['status']}**; expected {r['expected_cards']}; cited {r['cited_cards']} "
                   f"(precision {_fmt(r.get('card_precision'))}, recall {_fmt(r.get('card_recall'))}); "
                   f"hybrid top-10 {r['retrieval'].get('hybrid', {}).get('ranked', [])}"), "",
                  "> " + r["answer"][:700].replace("\n", "\n> "), ""]
    wrong = [r for r in report["rows"] if r["type"] != "answerable" and not r["status_ok"] and r["split"] == "test"]
    if wrong:
        lines += ["## Wrong status on non-answerable test questions", ""]
        lines += [f"- `{r['id']}` ({r['type']}) → {r['status']}: {r['question']}" for r in wrong]
    lines += ["", "![metrics against the baseline](metrics.png)", ""]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    plot(test, base, out / "metrics.png")


def plot(current: dict[str, Any], baseline: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in GATED + ["bm25.recall@10", "dense.recall@10"] if current.get(n) is not None]
    y = range(len(names))
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(names) + 1.2))
    ax.barh([i + 0.2 for i in y], [current[n] for n in names], height=0.4, label="this run", color="#2a7ab9")
    ax.barh([i - 0.2 for i in y], [baseline.get(n) or 0 for n in names], height=0.4, label="baseline", color="#bbbbbb")
    ax.set_yticks(list(y), names)
    ax.set_xlim(0, 1.05)
    ax.invert_yaxis()
    ax.set_title("Answer quality, test split (false_crisis_rate: lower is better)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------


def evaluate(settings: Settings, gold_path: Path = GOLD, assistant: Any = None, progress: bool = True) -> dict[str, Any]:
    gold = load_gold(gold_path)
    rows = run_questions(settings, gold, assistant, progress)
    return {
        "gold": str(gold_path.relative_to(PROJECT_ROOT) if gold_path.is_relative_to(PROJECT_ROOT) else gold_path),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings_hash": settings.settings_hash(), "composer": settings.compose.composer,
        "metrics": {split: aggregate([r for r in rows if split == "all" or r["split"] == split])
                    for split in ("tune", "test", "all")},
        "rows": rows,
    }


def main(settings: Settings, *, gold: Path | None = None, out: Path | None = None, baseline: Path | None = None,
         as_json: bool = False, diff: Path | None = None, write_baseline: Path | None = None,
         assistant: Any = None) -> int:
    from ingest.pipeline import index_is_built, run_ingest

    if not index_is_built(settings):
        print("Building the index first...", file=sys.stderr)
        run_ingest(settings)
    report = evaluate(settings, gold or GOLD, assistant=assistant)
    if settings.compose.composer == "llm":  # the grounded composer side by side, on the same questions
        report["grounded_metrics"] = evaluate(settings.replace(composer="grounded"), gold or GOLD,
                                              progress=False)["metrics"]
    base = json.loads(baseline.read_text(encoding="utf-8")) if baseline else None
    report["regressions"] = compare(report["metrics"]["test"], base) if base else None
    if diff is not None:
        previous = json.loads(diff.read_text(encoding="utf-8"))
        report["diff"] = diff_rows(previous["rows"], report["rows"])
    out = out or Path("eval-out")
    write_report(report, out, base)
    if write_baseline is not None:
        write_baseline.write_text(json.dumps({
            "split": "test", "tolerance": settings.evals.eval_tolerance, "settings_hash": report["settings_hash"],
            "floors": {"crisis_recall": 1.0, "citation_validity": 1.0, "grounding": 1.0},
            "metrics": {k: v for k, v in report["metrics"]["test"].items() if k in GATED or "." in k},
        }, indent=1) + "\n", encoding="utf-8")
    summary = {"metrics": report["metrics"]["test"], "regressions": report["regressions"],
               "report": str(out / "report.md")}
    if diff is not None:
        summary["changed_answers"] = len(report["diff"])
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        t = report["metrics"]["test"]
        print(f"Test split: status accuracy {_fmt(t['status_accuracy'])}, card precision "
              f"{_fmt(t['card_precision'])}, card recall {_fmt(t['card_recall'])}, citation validity "
              f"{_fmt(t['citation_validity'])}, "
              f"grounding {_fmt(t['grounding'])}, crisis recall {_fmt(t['crisis_recall'])}, "
              f"hybrid Recall@10 {_fmt(t['hybrid.recall@10'])}")
        if report.get("grounded_metrics"):
            a, g = report["metrics"]["all"], report["grounded_metrics"]["all"]
            print(f"All splits, llm vs grounded: claim support {_fmt(a.get('claim_support'))} vs "
                  f"{_fmt(g.get('claim_support'))}, fallback rate {_fmt(a.get('fallback_rate'))}, citation validity "
                  f"{_fmt(a.get('citation_validity'))} vs {_fmt(g.get('citation_validity'))}")
        if diff is not None:
            print(f"{len(report['diff'])} gold answers changed since {diff}")
        print(f"Report: {out / 'report.md'}")
        for problem in report["regressions"] or []:
            print(f"REGRESSION {problem}", file=sys.stderr)
    return 1 if report["regressions"] else 0
