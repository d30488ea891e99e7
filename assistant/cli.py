"""`peer-assist`: the command line. Thin commands over library functions; errors become friendly text."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError, CorpusError
from assistant.settings import Settings, enforce_offline, get_settings

log = logging.getLogger("assistant.cli")


def _settings(args: argparse.Namespace) -> Settings:
    """Environment settings with the command's flags applied on top."""
    overrides: dict[str, Any] = {}
    for flag, key in (("corpus", "corpus_dir"), ("index_dir", "index_dir"), ("host", "host"), ("port", "port"),
                      ("allow_no_login", "allow_no_login")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    base = get_settings()
    return base.replace(**overrides) if overrides else base


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "chromadb", "sentence_transformers", "urllib3", "gradio", "langchain_core"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    for noisy in ("bibtexparser",):  # its parse warnings repeat what `add` reports per record
        logging.getLogger(noisy).setLevel(max(level, logging.ERROR))


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------------------------
# Commands


def cmd_validate(args: argparse.Namespace) -> int:
    from ingest.cards import load_corpus

    settings = _settings(args)
    corpus = load_corpus(settings.index.corpus_dir, settings.index.max_card_bytes)
    for draft in corpus.drafts:
        if draft.complete:
            print(f"warning: draft {draft.rel} looks complete: remove `status: draft` to have it indexed")
            continue
        print(f"warning: draft {draft.rel} is not indexed; it still lacks:")
        for item in draft.lacks():
            print(f"  - {item}")
    drafts = f"; {len(corpus.drafts)} draft(s) not indexed (warnings above)" if corpus.drafts else ""
    print(f"OK: {len(corpus.cards)} cards in {settings.index.corpus_dir} are valid{drafts}.")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from ingest.literature import add_references, read_references

    settings = _settings(args)
    path, fmt = (Path(args.ris), "ris") if args.ris else (Path(args.bibtex), "bibtex")
    try:
        refs = read_references(path, fmt)  # type: ignore[arg-type]
    except (OSError, UnicodeDecodeError) as exc:
        raise AssistantError(f"Cannot read {path}: {exc}",
                             "Export the references as a UTF-8 RIS (.ris) or BibTeX (.bib) file.") from exc
    if not refs:
        raise AssistantError(f"No records found in {path}.",
                             f"Check that the file is a {'RIS' if fmt == 'ris' else 'BibTeX'} export.")
    corpus_dir = settings.index.corpus_dir
    results = add_references(refs, corpus_dir, args.folder)
    for result in results:
        print(result.line(corpus_dir))
    n = {s: sum(r.status == s for r in results) for s in ("written", "duplicate", "error")}
    print(f"{len(results)} records: {n['written']} draft(s) written, {n['duplicate']} duplicate(s) skipped, "
          f"{n['error']} bad record(s) with nothing written.")
    if n["written"]:
        print("Next: complete each draft (docs/CARD_GUIDE.md), check it with `peer-assist validate`, then remove "
              "`status: draft` and run `peer-assist ingest`.")
    return 1 if n["error"] else 0


KNOWN_GAPS_FILE = "known_gaps.yaml"


def _known_gaps(path: Path) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The known-gaps list (``gaps: [{id, topic, terms, instead, partly_covered_by}]``), read leniently:
    (None, None) when the file does not exist, (None, reason) when it cannot be read."""
    from ingest.safe_yaml import safe_yaml

    if not path.is_file():
        return None, None
    try:
        data = safe_yaml(path.read_text(encoding="utf-8"))
    except Exception as exc:  # noqa: BLE001 - stats must not fail on a half-written data file
        return None, f"{path.name} cannot be read: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    raw = data.get("gaps") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        return None, f"{path.name} has no `gaps:` list"
    gaps = []
    for item in raw:
        if not isinstance(item, dict) or not item.get("id"):
            continue
        covered = item.get("partly_covered_by") or []
        gaps.append({"id": str(item["id"]), "topic": str(item.get("topic") or item["id"]),
                     "partly_covered_by": [str(c) for c in covered] if isinstance(covered, list) else [str(covered)]})
    return gaps, None


def corpus_stats(corpus: Any, gaps_file: Path) -> dict[str, Any]:
    """Card counts by kind and theme, the cards behind each strategy, and the known gaps."""
    by_kind: dict[str, int] = {}
    by_theme: dict[str, set[str]] = {t: set() for t in corpus.taxonomy.themes}
    sections: dict[str, int] = {t: 0 for t in corpus.taxonomy.themes}
    backing: dict[tuple[str, str], dict[str, str]] = {
        (t, sid): {} for t, theme in corpus.taxonomy.themes.items() for sid in theme.strategies}
    for card in corpus.cards:
        by_kind[card.kind] = by_kind.get(card.kind, 0) + 1
        for s in card.sections:
            if s.theme:
                by_theme[s.theme].add(card.id)
                sections[s.theme] += 1
                if s.strategy and (s.theme, s.strategy) in backing:
                    backing[(s.theme, s.strategy)][card.id] = card.kind
    strategies = []
    for (theme, sid), cards in backing.items():
        kinds: dict[str, int] = {}
        for kind in cards.values():
            kinds[kind] = kinds.get(kind, 0) + 1
        strategies.append({"theme": theme, "strategy": sid, "title": corpus.taxonomy.strategy_title(theme, sid),
                           "cards": len(cards), "by_kind": dict(sorted(kinds.items())), "card_ids": sorted(cards)})
    gaps, gaps_problem = _known_gaps(gaps_file)
    return {"cards": len(corpus.cards), "drafts": sorted(d.id for d in corpus.drafts), "by_kind": by_kind,
            "by_theme": {t: {"cards": len(ids), "strategy_sections": sections[t]} for t, ids in by_theme.items()},
            "by_strategy": strategies, "known_gaps": gaps, "known_gaps_file": gaps_file.name,
            "known_gaps_problem": gaps_problem}


def cmd_stats(args: argparse.Namespace) -> int:
    from ingest.cards import load_corpus

    settings = _settings(args)
    corpus = load_corpus(settings.index.corpus_dir, settings.index.max_card_bytes)
    data = corpus_stats(corpus, settings.index.data_file(KNOWN_GAPS_FILE))
    if args.json:
        _print_json(data)
        return 0
    print(f"{data['cards']} cards" + (f" (+ {len(data['drafts'])} drafts, not indexed)" if data["drafts"] else ""))
    for kind, n in sorted(data["by_kind"].items()):
        print(f"  {kind:16} {n}")
    print("by theme (cards with a strategy in it / strategy sections):")
    for theme, d in data["by_theme"].items():
        print(f"  {theme:32} {d['cards']:3} / {d['strategy_sections']}")
    print("by strategy (cards backing it, by kind; fewest first: where new literature is most needed):")
    for st in sorted(data["by_strategy"], key=lambda x: (x["cards"], x["theme"], x["strategy"])):
        kinds = ", ".join(f"{k} {n}" for k, n in st["by_kind"].items()) or "no card"
        print(f"  {st['theme'] + '/' + st['strategy']:60} {st['cards']:3}  ({kinds})")
    if data["known_gaps"] is not None:
        print(f"known gaps ({data['known_gaps_file']}: topics the evidence does not cover):")
        for gap in data["known_gaps"]:
            partly = f"; partly covered by {', '.join(gap['partly_covered_by'])}" if gap["partly_covered_by"] else ""
            print(f"  {gap['id']}: {gap['topic']}{partly}")
    elif data["known_gaps_problem"]:
        print(f"known gaps: {data['known_gaps_problem']}")
    else:
        print(f"known gaps: no {data['known_gaps_file']} in the corpus yet")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.cards import load_corpus
    from ingest.pipeline import index_is_built, read_manifest, run_ingest

    settings = _settings(args)
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if args.json or not sys.stderr.isatty():
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, desc="Embedding passages", unit="passage", file=sys.stderr)
        bar.n = done
        bar.refresh()

    corpus = load_corpus(settings.index.corpus_dir, settings.index.max_card_bytes)
    index_dir = settings.index.index_dir
    diff_on = not args.no_diff and not args.dry_run
    record: dict[str, Any] | None = None
    baseline, baseline_s = 0, 0.0
    collection, settings_hash = settings.index.collection_name(), settings.settings_hash()
    assistants: list[Any] = []

    def assistant() -> Any:
        """One assistant for the whole diff: after the reindex it only reloads the passages."""
        from assistant.chat import Assistant

        if assistants:
            assistants[0].reload()
        else:
            assistants.append(Assistant(settings))
        return assistants[0]

    diff_skipped: str | None = None
    if diff_on:
        from assistant import answer_diff
        from ingest.pipeline import writer_lock

        record = answer_diff.read_record(index_dir)
        if answer_diff.needs_baseline(record, collection, settings_hash):
            record = None
            if index_is_built(settings):
                # No usable record of earlier answers: if this run will change cards, ask the gold questions
                # against the index as it is now, before it changes (once; later runs re-ask only what changed).
                plan = run_ingest(settings, dry_run=True, corpus=corpus)
                if any(plan.changes.values()):
                    with writer_lock(index_dir, args.wait):
                        pass  # another writer: fail now, before asking anything
                    t_base = time.perf_counter()
                    try:
                        record = answer_diff.record_baseline(assistant(), _gold(args), read_manifest(index_dir),
                                                             collection, settings_hash)
                    except Exception as exc:  # noqa: BLE001 - the diff is a report; it never stops an ingest
                        diff_skipped = _diff_failure(exc)
                    else:
                        baseline = len(record["answers"])
                        baseline_s = time.perf_counter() - t_base
    try:
        report = run_ingest(settings, full=args.full, dry_run=args.dry_run, progress=progress,
                            lock_timeout=args.wait, corpus=corpus)
    finally:
        if bar is not None:
            bar.close()
    diff: Any = None
    if diff_on:
        from assistant import answer_diff

        if diff_skipped is not None:
            diff = answer_diff.AnswerDiff(note=diff_skipped)
        elif record is not None:
            try:
                diff, new_record = answer_diff.diff_after_reindex(record, assistant, _gold(args),
                                                                  read_manifest(index_dir), collection, settings_hash)
            except Exception as exc:  # noqa: BLE001 - the index is already up to date; only the report is lost
                diff, new_record = answer_diff.AnswerDiff(note=_diff_failure(exc)), None
            else:
                diff.baseline_recorded, diff.baseline_seconds = baseline, round(baseline_s, 3)
                if new_record is not None:
                    answer_diff.write_record(index_dir, new_record)
                else:
                    diff = None  # nothing changed: nothing to say, nothing loaded
        elif any(report.changes.values()):
            diff = answer_diff.AnswerDiff(note="first build of this index: no earlier answers to compare with "
                                          "(the next ingest that changes cards records them first)")
    if args.json:
        _print_json({**report.to_dict(), "answer_diff": diff.to_dict() if diff is not None else None})
    else:
        print(report.summary())
        if diff is not None:
            print("\n".join(diff.lines()))
    return 0


def _diff_failure(exc: Exception) -> str:
    log.debug("answer diff failed", exc_info=exc)
    reason = exc.friendly() if isinstance(exc, AssistantError) else f"{type(exc).__name__}: {exc}"
    return f"skipped ({' '.join(reason.split())[:300]}); the index itself is up to date"


def _gold(args: argparse.Namespace) -> list[dict[str, Any]]:
    from evals.run import GOLD, load_gold

    return load_gold(args.gold or GOLD)


def _read_question(args: argparse.Namespace) -> str:
    if args.question == "-":
        return sys.stdin.read()
    return args.question or ""


def cmd_ask(args: argparse.Namespace) -> int:
    from assistant.chat import Assistant
    from assistant.render import answer_to_text

    settings = _settings(args)
    assistant = Assistant(settings)
    if args.batch:
        return _ask_batch(assistant, Path(args.batch), args.theme)
    if args.question is None:
        raise AssistantError("No question given.", 'Run `peer-assist ask "your question"`.')
    answer = assistant.ask(_read_question(args), theme=args.theme)
    if args.json:
        _print_json(answer.to_dict())
    else:
        print(answer_to_text(answer, map_context=_map_context(assistant, answer)))
    return 0


def _map_context(assistant: Any, answer: Any) -> list[str]:
    """Where the answer's strategies sit on the evidence map (the assistant's own corpus)."""
    from assistant.evidence_map import answer_context

    if answer.status != "answered" or not answer.strategies:
        return []
    corpus = assistant.corpus
    return answer_context(corpus.cards, corpus.taxonomy, [(s.theme, s.title) for s in answer.strategies])


def cmd_map(args: argparse.Namespace) -> int:
    from assistant.evidence_map import build_map, write_outputs
    from ingest.cards import load_corpus

    settings = _settings(args)
    corpus = load_corpus(settings.index.corpus_dir, settings.index.max_card_bytes)
    m = build_map(corpus.cards, corpus.taxonomy, args.by)
    paths = write_outputs(m, args.out)
    print(f"Evidence map of {len(corpus.cards)} cards: {len(m.rows)} strategy rows × {len(m.columns)} {args.by} "
          f"columns; {len(m.gaps)} empty cells (gaps).")
    for kind, path in paths.items():
        print(f"  {kind}: {path}")
    return 0


def _ask_batch(assistant: Any, path: Path, theme: str | None) -> int:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AssistantError(f"Cannot read the batch file {path}: {exc}",
                             'Give a UTF-8 file of JSON lines like {"id": "q1", "question": "..."}.') from exc
    failures = 0
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        item: Any = None
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or not isinstance(item.get("question"), str):
                raise ValueError("each line needs a JSON object with a 'question' string")  # noqa: TRY004 - bad input, reported per line
            history = item.get("history") or []
            if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
                raise ValueError("'history' must be a list of earlier questions")
            answer = assistant.ask(item["question"], history=history, theme=item.get("theme") or theme)
            out = {"id": item.get("id", lineno), **answer.to_dict()}
        except (ValueError, AssistantError) as exc:
            failures += 1
            msg = exc.friendly() if isinstance(exc, AssistantError) else str(exc)
            out = {"id": item.get("id", lineno) if isinstance(item, dict) else lineno, "error": msg}
        _print_json(out)
    return 1 if failures else 0


def cmd_chat(args: argparse.Namespace) -> int:
    from assistant.chat import Assistant
    from assistant.render import answer_to_text

    settings = _settings(args)
    assistant = Assistant(settings)
    history: list[str] = []
    print("Peer Provision Assistant — ask about supporting peer workers. Empty line or Ctrl-D to quit.")
    while True:
        try:
            question = input("\nyou> ")
        except EOFError:
            print()
            return 0
        if not question.strip():
            return 0
        try:
            answer = assistant.ask(question, history=history, theme=args.theme)
        except AssistantError as exc:
            print(exc.friendly())
            continue
        print(answer_to_text(answer, map_context=_map_context(assistant, answer)))
        if answer.status == "answered":
            history.append(question)


def cmd_serve(args: argparse.Namespace) -> int:
    from assistant.app import serve

    settings = _settings(args)
    serve(settings)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from evals.run import main as eval_main

    return eval_main(_settings(args), gold=args.gold, out=args.out, baseline=args.baseline, as_json=args.json,
                     diff=args.diff, write_baseline=args.write_baseline)


def cmd_bench(args: argparse.Namespace) -> int:
    from evals.bench import main as bench_main

    kwargs = {} if args.scale is None else {"scale": [n for sizes in args.scale for n in sizes]}
    return bench_main(_settings(args), as_json=args.json, quick=args.quick, out=args.out, only=args.only, **kwargs)


def _sizes(text: str) -> list[int]:
    """``10000`` or ``10000,50000`` (a list of scale-run sizes)."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size or comma-separated sizes: {text!r}") from None


# ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="peer-assist", description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, index: bool = True) -> None:
        p.add_argument("--corpus", type=Path, help="corpus directory (default: PEER_ASSIST_CORPUS_DIR or ./corpus)")
        if index:
            p.add_argument("--index-dir", type=Path, help="index directory (default: PEER_ASSIST_INDEX_DIR)")

    p = sub.add_parser("validate", help="check every card against the schema")
    common(p, index=False)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("add", help="draft cards from a RIS or BibTeX export (duplicates skipped, drafts not indexed)")
    common(p, index=False)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ris", metavar="FILE", help="a RIS export (.ris) from a reference manager")
    src.add_argument("--bibtex", metavar="FILE", help="a BibTeX export (.bib)")
    p.add_argument("--folder", choices=("studies", "related", "guidance"), default="studies",
                   help="where the drafts go (default studies: journal articles covered by the review's themes)")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("stats", help="card counts by kind and theme")
    common(p, index=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("ingest", help="validate the corpus, then bring the index in line with it")
    common(p)
    p.add_argument("--full", action="store_true", help="rebuild every vector")
    p.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="wait this long for another running ingest to finish (default: fail at once)")
    p.add_argument("--no-diff", action="store_true",
                   help="skip the answer diff on the gold questions that the changed cards touch")
    p.add_argument("--gold", type=Path, help="gold questions for the answer diff (default evals/gold.jsonl)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="answer one question (or a batch)")
    common(p)
    p.add_argument("question", nargs="?", help="the question ('-' reads it from standard input)")
    p.add_argument("--json", action="store_true", help="print the answer contract as JSON")
    p.add_argument("--batch", metavar="FILE", help="JSON lines {id, question, history}; one answer per line")
    p.add_argument("--theme", help="only use evidence from this theme id")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="the assistant in the terminal, with follow-ups")
    common(p)
    p.add_argument("--theme", help="only use evidence from this theme id")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("serve", help="the chat UI (builds the index first if there is none)")
    common(p)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--allow-no-login", action="store_true", default=None,
                   help="serve a non-loopback --host without a login (anyone who reaches it can use it)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("map", help="the evidence map (strategies × kinds of evidence) as PNG, HTML and CSV")
    common(p, index=False)
    p.add_argument("--by", choices=("design", "country", "year", "kind"), default="kind",
                   help="the map's columns (default kind: review, study, later research, guidance)")
    p.add_argument("--out", type=Path, default=Path("map-out"), help="output directory (default map-out)")
    p.set_defaults(func=cmd_map)

    p = sub.add_parser("eval", help="answer-quality evaluation against the gold set")
    common(p)
    p.add_argument("--gold", type=Path, help="gold question file (default evals/gold.jsonl)")
    p.add_argument("--out", type=Path, default=Path("eval-out"), help="report directory")
    p.add_argument("--baseline", type=Path, help="compare with this baseline; exit 1 on regression")
    p.add_argument("--diff", type=Path, metavar="PREVIOUS_REPORT_JSON",
                   help="show which gold answers changed since this earlier report.json")
    p.add_argument("--write-baseline", type=Path, metavar="FILE", help="write this run as a new baseline")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="performance figures")
    common(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--quick", action="store_true", help="fewer repetitions and a smaller scale run")
    p.add_argument("--scale", type=_sizes, nargs="+", default=None,
                   help="passages in the generated scale corpus: one or more sizes, e.g. 10000 50000 or "
                        "10000,50000 (default 10000 50000 100000 200000; 0 skips)")
    p.add_argument("--out", type=Path, default=Path("bench-out"))
    p.add_argument("--only", nargs="+", choices=("ingest", "noop", "answers", "cold", "serve", "map", "scale",
                                                   "ui-load"),
                   help="run only these benchmarks (default: all)")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    enforce_offline()
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CorpusError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(exc.friendly(), file=sys.stderr)
        return 1
    except AssistantError as exc:
        print(f"Error: {exc.friendly()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # the last line of defence: no tracebacks for users
        log.debug("unexpected error", exc_info=True)
        print(f"Error: unexpected {type(exc).__name__}: {exc}\nRun again with -vv for details, "
              "and report it if it persists.", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
