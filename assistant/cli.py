"""`peer-assist`: the command line. Thin commands over library functions; errors become friendly text."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError, CorpusError
from assistant.settings import Settings, enforce_offline, get_settings

log = logging.getLogger("assistant.cli")


def _settings(args: argparse.Namespace) -> Settings:
    """Environment settings with the command's flags applied on top."""
    overrides: dict[str, Any] = {}
    for flag, key in (("corpus", "corpus_dir"), ("index_dir", "index_dir"), ("host", "host"), ("port", "port")):
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


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------------------------
# Commands


def cmd_validate(args: argparse.Namespace) -> int:
    from ingest.cards import load_corpus

    settings = _settings(args)
    corpus = load_corpus(settings.index.corpus_dir, settings.index.max_card_bytes)
    print(f"OK: {len(corpus.cards)} cards in {settings.index.corpus_dir} are valid.")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from ingest.cards import load_corpus

    settings = _settings(args)
    corpus = load_corpus(settings.index.corpus_dir, settings.index.max_card_bytes)
    by_kind: dict[str, int] = {}
    by_theme: dict[str, set[str]] = {t: set() for t in corpus.taxonomy.themes}
    strategies: dict[str, int] = {t: 0 for t in corpus.taxonomy.themes}
    for card in corpus.cards:
        by_kind[card.kind] = by_kind.get(card.kind, 0) + 1
        for s in card.sections:
            if s.theme:
                by_theme[s.theme].add(card.id)
                strategies[s.theme] += 1
    themes = {t: {"cards": len(ids), "strategy_sections": strategies[t]} for t, ids in by_theme.items()}
    data = {"cards": len(corpus.cards), "by_kind": by_kind, "by_theme": themes}
    if args.json:
        _print_json(data)
    else:
        print(f"{data['cards']} cards")
        for kind, n in sorted(by_kind.items()):
            print(f"  {kind:16} {n}")
        print("by theme (cards with a strategy in it / strategy sections):")
        for theme, d in themes.items():
            print(f"  {theme:32} {d['cards']:3} / {d['strategy_sections']}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.pipeline import run_ingest

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

    try:
        report = run_ingest(settings, full=args.full, dry_run=args.dry_run, progress=progress,
                            lock_timeout=args.wait)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.summary())
    return 0


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
        print(answer_to_text(answer))
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
        print(answer_to_text(answer))
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

    return bench_main(_settings(args), as_json=args.json, quick=args.quick, out=args.out,
                      scale=args.scale)


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
    p.set_defaults(func=cmd_serve)

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
    p.add_argument("--scale", type=int, default=50_000, help="passages in the generated scale corpus (0 skips)")
    p.add_argument("--out", type=Path, default=Path("bench-out"))
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
