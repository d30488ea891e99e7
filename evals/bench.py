"""`peer-assist bench`: performance figures, each beside the floor it is compared to.

- ingest throughput (full reindex, model already loaded) vs the raw encoder on the same passages;
- an unchanged reindex in a fresh process (no model load expected);
- warm answer latency p50/p95 over the gold test questions vs the retrieval floor
  (query embedding + vector query alone, same questions);
- cold start: a fresh ``peer-assist ask`` process to its printed answer;
- peak memory of ``peer-assist serve`` after answering requests;
- the evidence map: computing it and rendering its HTML table (every column kind), the PNG on the real
  corpus, and the same on a 10,000-card synthetic corpus (generated Card objects);
- a scale run on a generated corpus (default 10,000, 50,000, 100,000 and 200,000 passages): indexing
  time per 1,000 passages as the store grows, and in a fresh process per size the start-up, query
  p50/p95 and resident memory. It uses the hash embedder so that it measures the store, record
  manager, snapshot files and retrieval; encoder cost per passage is the figure above.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from assistant.settings import Settings

QUESTION = "Who should supervise peer workers?"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)


def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("peer-assist")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "assistant.cli"]


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PEER_ASSIST_INDEX_DIR": str(settings.index.index_dir), "PEER_ASSIST_CORPUS_DIR": str(settings.index.corpus_dir)})
    env.update(extra)
    return env


def bench_ingest(settings: Settings) -> dict[str, Any]:
    """Full ingest with a loaded model vs raw encoding of the same passage texts."""
    from ingest.cards import load_corpus
    from ingest.embedding import get_embedder
    from ingest.pipeline import run_ingest
    from ingest.split import split_corpus

    corpus = load_corpus(settings.index.corpus_dir, settings.index.max_card_bytes)
    passages = split_corpus(corpus.cards, settings.index.chunk_size, settings.index.chunk_overlap)
    texts = [p.embed_text() for p in passages]
    embedder = get_embedder(settings)
    embedder.embed_documents(texts[:8])  # load the model outside the timings
    # One throwaway ingest so that one-time imports (LangChain, Chroma, SQLAlchemy) are not counted.
    run_ingest(settings.replace(index_dir=settings.index.index_dir.with_name("warm-up")),
               embedder=embedder, corpus=corpus)
    encode_s, ingest_s = [], []
    for i in range(2):
        t = time.perf_counter()
        embedder.embed_documents(texts)
        encode_s.append(time.perf_counter() - t)
        # A fresh index each time: every passage is embedded and added, as when a maintainer builds it.
        fresh = settings.replace(index_dir=settings.index.index_dir.with_name(f"fresh-{i}"))
        t = time.perf_counter()
        report = run_ingest(fresh, embedder=embedder, corpus=corpus)
        ingest_s.append(time.perf_counter() - t)
        assert report.added == len(passages), report
    run_ingest(settings, embedder=embedder, corpus=corpus)  # the index the other benchmarks use
    encode = len(passages) / min(encode_s)
    ingest = len(passages) / min(ingest_s)
    return {"passages": len(passages), "encode_passages_per_s": round(encode, 2),
            "ingest_passages_per_s": round(ingest, 2), "ingest_vs_encode_ratio": round(ingest / encode, 3)}


def bench_noop(settings: Settings, runs: int = 3) -> dict[str, Any]:
    times, loaded = [], []
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run([*_cli(), "ingest", "--json"], env=_env(settings), capture_output=True, text=True,
                             check=True)
        times.append(time.perf_counter() - t)
        data = json.loads(out.stdout)
        loaded.append(data["model_loaded"] or data["added"] or data["deleted"])
    return {"noop_reindex_s": round(statistics.median(times), 3), "noop_reindex_wrote_or_loaded": any(loaded)}


def bench_answers(settings: Settings, repeats: int = 3) -> dict[str, Any]:
    """Warm answer latency vs the floor (query embedding + vector query) on the gold test questions."""
    from assistant.chat import Assistant
    from evals.run import GOLD, load_gold

    gold = [g for g in load_gold(GOLD) if g.get("split") == "test" and g["type"] == "answerable"]
    assistant = Assistant(settings)
    assistant.warm_up()
    retriever = assistant.retriever
    for g in gold[:5]:
        assistant.ask(g["question"], history=g.get("history"))
    from assistant.retrieval.stages import exact_dense_hits

    index = retriever.index
    answer_ms, floor_ms, embed_ms = [], [], []
    for _ in range(repeats):
        for g in gold:
            query = assistant.followup(g["question"], g.get("history") or []).retrieval_query
            t = time.perf_counter()
            vector = retriever.embedder.embed_query(query)
            embed_ms.append((time.perf_counter() - t) * 1000)
            # The nearest-neighbour query the answer path makes: exact cosines over the snapshot's
            # vectors (the store's query when there are none).
            cosines = index.cosines(vector)
            if cosines is not None:
                exact_dense_hits(index, cosines, settings.retrieval.candidates, None)
            else:
                retriever.store.query(vector, settings.retrieval.candidates)
            floor_ms.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            assistant.ask(g["question"], history=g.get("history"))
            answer_ms.append((time.perf_counter() - t) * 1000)
    p50, f50 = _pct(answer_ms, 0.5), _pct(floor_ms, 0.5)
    return {"questions": len(gold), "repeats": repeats, "answer_p50_ms": p50, "answer_p95_ms": _pct(answer_ms, 0.95),
            "floor_p50_ms": f50, "floor_p95_ms": _pct(floor_ms, 0.95), "answer_vs_floor_p50": round(p50 / f50, 3),
            "query_embed_p50_ms": _pct(embed_ms, 0.5), "query_embed_p95_ms": _pct(embed_ms, 0.95),
            "query_encoder": type(getattr(retriever.embedder, "_query_model", None)).__name__}


def bench_cold(settings: Settings, runs: int = 3) -> dict[str, Any]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run([*_cli(), "ask", "--json", QUESTION], env=_env(settings), capture_output=True,
                             text=True, check=True)
        times.append(time.perf_counter() - t)
        assert json.loads(out.stdout)["status"] == "answered"
    return {"cold_start_s": round(statistics.median(times), 3), "cold_start_max_s": round(max(times), 3)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _vm_hwm_mb(pid: int) -> float:
    total = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            total = int(line.split()[1]) / 1024
    return round(total, 1)


def bench_serve(settings: Settings, requests: int = 10, timeout: float = 120.0) -> dict[str, Any]:
    """Start `peer-assist serve`, answer requests over HTTP, read the process's peak RSS."""
    port = _free_port()
    proc = subprocess.Popen([*_cli(), "serve", "--port", str(port)], env=_env(settings), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc.poll() is not None:
                return {"serve_peak_rss_mb": None, "serve_error": (proc.stderr.read() if proc.stderr else "")[-500:]}
            try:
                urllib.request.urlopen(f"{base}/gradio_api/info", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        else:
            return {"serve_peak_rss_mb": None, "serve_error": "server did not start in time"}
        latencies = []
        for i in range(requests):
            t = time.perf_counter()
            req = urllib.request.Request(f"{base}/gradio_api/call/ask", method="POST",
                                         data=json.dumps({"data": [f"{QUESTION} ({i})", None, None]}).encode(),
                                         headers={"Content-Type": "application/json"})
            event = json.loads(urllib.request.urlopen(req, timeout=30).read())["event_id"]
            urllib.request.urlopen(f"{base}/gradio_api/call/ask/{event}", timeout=60).read()
            latencies.append((time.perf_counter() - t) * 1000)
        return {"serve_peak_rss_mb": _vm_hwm_mb(proc.pid), "serve_http_p50_ms": _pct(latencies, 0.5)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


SCALE_SIZES = (10_000, 50_000, 100_000, 200_000)


def _synthetic_passages(sentences: list[str], themes: list[str], n: int, start: int, rng: random.Random) -> list[Any]:
    from ingest.split import passage_id
    from ingest.types import Passage

    out = []
    for i in range(start, n):
        text = " ".join(rng.sample(sentences, 3))
        meta = {"title": f"Generated study {i // 6}", "year": 2000 + i % 25, "authors": "Synthetic, A.",
                "short_cite": "Synthetic (2020)", "kind": "study", "country": "USA", "design": "qualitative",
                "design_type": "qualitative", "review_inclusion": "possible", "doi": "", "url": ""}
        theme = themes[i % len(themes)]
        out.append(Passage(id=passage_id(f"gen-{i // 6}", "Summary", text, meta), card_id=f"gen-{i // 6}",
                           section="strategy", heading=f"{theme}/x: generated", text=text, theme=theme,
                           strategy="x", strategy_title="Generated", ordinal=i % 6, meta=meta))
    return out


def bench_scale(settings: Settings, sizes: int | list[int] | tuple[int, ...] = SCALE_SIZES,
                queries: int = 50) -> dict[str, Any]:
    """Grow a generated corpus to each size; at each, write the snapshot files, then measure a fresh
    process answering from them: start-up (process start to index loaded and encoder ready),
    retrieval p50/p95 over ``queries`` corpus sentences, resident memory.

    It uses the hash embedder (384 dimensions, like MiniLM) so that it measures the store, record
    manager, snapshot and retrieval; the encoder's own cost per question is the answers figure.
    Indexing time per 1,000 passages counts the Chroma + record-manager write and the snapshot
    (written whole at each size, so its share is per passage of the whole index).
    """
    from ingest.cards import load_corpus
    from ingest.embedding import HashEmbedder
    from ingest.pipeline import content_hash, new_generation, write_manifest
    from ingest.snapshot import from_store
    from ingest.split import split_corpus
    from ingest.store import EvidenceStore
    from ingest.text import split_sentences
    from ingest.vocabulary import VOCABULARY_FILE, load_vocabulary

    sizes = sorted({int(n) for n in ([sizes] if isinstance(sizes, int) else sizes) if int(n) > 0})
    corpus = load_corpus(settings.index.corpus_dir, settings.index.max_card_bytes)
    sentences = [s for p in split_corpus(corpus.cards) for s in split_sentences(p.text)]
    rng = random.Random(7)
    tmp = Path(tempfile.mkdtemp(prefix="peer-scale-"))
    scale_settings = settings.replace(index_dir=tmp, embedding_model="hash-384", collection_prefix="scale",
                                      chroma_host=None)
    store = EvidenceStore(scale_settings)
    embedder = HashEmbedder(384)
    tokenizer = load_vocabulary(scale_settings.index.data_file(VOCABULARY_FILE)).tokenizer
    themes = list(corpus.taxonomy.themes)
    generated: list[Any] = []
    rows = []
    try:
        for size in sizes:
            generated += _synthetic_passages(sentences, themes, size, len(generated), rng)
            t = time.perf_counter()
            stats = store.sync(generated, embedder, batch_size=512)
            store_s = time.perf_counter() - t
            generation = new_generation(content_hash(store.name, (p.id for p in generated)))
            t = time.perf_counter()
            from_store(store, generation, tmp, tokenizer)  # what ingest does after writing
            snapshot_s = time.perf_counter() - t
            store.set_generation(generation)
            write_manifest(tmp, {"state": "complete", "collection": store.name, "generation": generation,
                                 "n_passages": len(generated)})
            added = max(stats["added"], 1)
            probe = _scale_probe(scale_settings, queries)
            rows.append({"passages": size, "added": stats["added"],
                         "store_s_per_1000_added": round(store_s / added * 1000, 3),
                         "snapshot_s_per_1000": round(snapshot_s / size * 1000, 3),
                         "s_per_1000_added": round((store_s + snapshot_s) / added * 1000, 3),
                         "snapshot_from_store_s": round(snapshot_s, 2), **probe,
                         "load_avg_1m": round(os.getloadavg()[0], 2)})  # other work on the machine
            print(f"  scale {size:>7} passages: {rows[-1]}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"scale": rows, "scale_sizes": sizes, "scale_embedder": "hash-384"}


def _scale_probe(settings: Settings, queries: int) -> dict[str, Any]:
    """A fresh ``python`` process: start-up to a loaded index, then retrieval and answer timings."""
    env = _env(settings, PEER_ASSIST_EMBEDDING_MODEL=settings.index.embedding_model,
               PEER_ASSIST_COLLECTION_PREFIX=settings.index.collection_prefix)
    env.pop("PEER_ASSIST_CHROMA_HOST", None)
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", "from evals.bench import scale_probe_main; scale_probe_main()",
                             str(queries)], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready = proc.stdout.readline()
    startup = time.perf_counter() - t
    out = proc.stdout.read()
    if proc.wait(timeout=600) != 0 or not ready.startswith("ready"):
        raise RuntimeError(f"scale probe failed: {ready} {out[-500:]}")
    return {"startup_s": round(startup, 3), **json.loads(out.strip().splitlines()[-1])}


def scale_probe_main() -> None:
    """The fresh process of :func:`_scale_probe` (settings from the environment)."""
    from assistant.chat import Assistant
    from assistant.settings import get_settings

    queries = int(sys.argv[1])
    a = Assistant(get_settings())
    t = time.perf_counter()
    a.retriever.warm_up()
    load_s = time.perf_counter() - t
    print("ready", flush=True)
    from ingest.text import split_sentences

    rng = random.Random(11)
    sentences = [s for c in a.corpus.cards for sec in c.sections for s in split_sentences(sec.text)]
    qs = [s[:120] for s in rng.sample(sentences, min(queries, len(sentences)))]
    for q in qs[:5]:  # warm: the first answer also loads the corpus cards, coverage and composer
        a.retriever.retrieve(q)
        a.ask(q)
    lat, ans = [], []
    for q in qs:
        t = time.perf_counter()
        a.retriever.retrieve(q)
        lat.append((time.perf_counter() - t) * 1000)
    for q in qs[:max(5, queries // 5)]:
        t = time.perf_counter()
        a.ask(q)
        ans.append((time.perf_counter() - t) * 1000)
    status = Path("/proc/self/status").read_text().splitlines()
    kb = {line.split(":")[0]: int(line.split()[1]) for line in status if line.startswith(("VmRSS", "VmHWM"))}
    print(json.dumps({"query_p50_ms": _pct(lat, 0.5), "query_p95_ms": _pct(lat, 0.95),
                      "answer_p50_ms": _pct(ans, 0.5), "answer_p95_ms": _pct(ans, 0.95),
                      "index_load_s": round(load_s, 3), "from_snapshot": a.retriever.generation is not None,
                      "rss_mb": round(kb.get("VmRSS", 0) / 1024, 1), "peak_rss_mb": round(kb.get("VmHWM", 0) / 1024, 1)}),
          flush=True)


def synthetic_cards(n: int, taxonomy: Any, seed: int = 12) -> list[Any]:
    """``n`` generated cards with 1-4 strategy sections each, spread over kinds, designs, countries, years."""
    from ingest.types import Card, Section

    rng = random.Random(seed)
    strategies = [(t.id, sid, title) for t in taxonomy.themes.values() for sid, title in t.strategies.items()]
    kinds = ["study"] * 6 + ["related-study", "related-review", "guidance"]
    designs = ["qualitative; interviews", "mixed methods; survey", "quantitative; survey", "systematic review; x",
               "scoping review; x", "guidance; practice guide", "randomised trial; cluster"]
    countries = ["USA", "UK", "Australia", "Canada", "Ireland", "New Zealand", "Norway", "multiple"]
    cards = []
    for i in range(n):
        picked = rng.sample(strategies, rng.randint(1, 4))
        sections = tuple(Section("strategy", f"### {t}/{sid}: {title}", "text", t, sid, title) for t, sid, title in picked)
        cards.append(Card(id=f"synthetic-{i}", kind=rng.choice(kinds), title=f"Synthetic card {i}",  # type: ignore[arg-type]
                          authors=("Author, A.",), year=rng.randint(1998, 2025), venue="venue",
                          country=rng.choice(countries), setting="setting", design=rng.choice(designs),
                          review_inclusion="n/a", themes=tuple(sorted({t for t, _, _ in picked})), sources=(),
                          sections=sections, path=Path(f"synthetic-{i}.md"), content_hash=str(i)))
    return cards


def bench_map(settings: Settings, synthetic: int = 10_000, repeats: int = 5) -> dict[str, Any]:
    """The evidence map: build + HTML table for every column kind (best of ``repeats``), the PNG once."""
    from assistant import evidence_map as em
    from ingest.cards import load_corpus

    corpus = load_corpus(settings.index.corpus_dir, settings.index.max_card_bytes)

    def render_ms(cards: list[Any]) -> dict[str, float]:
        out: dict[str, float] = {}
        for by in em.BY_CHOICES:
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                em.to_html_table(em.build_map(cards, corpus.taxonomy, by))
                times.append((time.perf_counter() - t) * 1000)
            out[by] = round(min(times), 2)
        return out

    def png_ms(cards: list[Any]) -> float:
        m = em.build_map(cards, corpus.taxonomy, "kind")
        with tempfile.TemporaryDirectory(prefix="peer-map-") as tmp:
            em.write_png(m, Path(tmp) / "warm.png")  # matplotlib's imports and font cache outside the timing
            t = time.perf_counter()
            em.write_png(m, Path(tmp) / "map.png")
            return round((time.perf_counter() - t) * 1000, 1)

    cards = list(corpus.cards)
    synth = synthetic_cards(synthetic, corpus.taxonomy)
    return {"map_real_cards": len(cards), "map_real_ms": render_ms(cards), "map_real_png_ms": png_ms(cards),
            "map_synthetic_cards": synthetic, "map_synthetic_ms": render_ms(synth),
            "map_synthetic_png_ms": png_ms(synth)}


def to_markdown(results: dict[str, Any]) -> str:
    r = results
    lines = ["# Benchmarks", "", f"Machine: {os.cpu_count()} cores; {r['created']}.", "",
             "| figure | value | compared with | ratio |", "|---|---|---|---|"]
    if "ingest_passages_per_s" in r:
        lines.append(f"| ingest throughput (fresh index, model loaded) | {r['ingest_passages_per_s']} passages/s | "
                     f"raw encoder {r['encode_passages_per_s']} passages/s | {r['ingest_vs_encode_ratio']} (target ≥ 0.9) |")
    if "answer_p50_ms" in r:
        lines.append(f"| warm answer p50 / p95 | {r['answer_p50_ms']} / {r['answer_p95_ms']} ms | floor (query embedding + "
                     f"vector query) p50 {r['floor_p50_ms']} ms | {r['answer_vs_floor_p50']} (target ≤ 1.5) |")
    if "query_embed_p50_ms" in r:
        lines.append(f"| query embedding p50 / p95 ({r.get('query_encoder')}) | {r['query_embed_p50_ms']} / "
                     f"{r['query_embed_p95_ms']} ms | | |")
    if "noop_reindex_s" in r:
        lines.append(f"| unchanged reindex (fresh process) | {r['noop_reindex_s']} s | target about 1 s, no model load | "
                     f"wrote or loaded: {r['noop_reindex_wrote_or_loaded']} |")
    if "cold_start_s" in r:
        lines.append(f"| cold `peer-assist ask` to answer | {r['cold_start_s']} s (max {r['cold_start_max_s']}) | "
                     "target ≤ 8 s | |")
    if "serve_peak_rss_mb" in r:
        lines.append(f"| `peer-assist serve` peak RSS | {r['serve_peak_rss_mb']} MB | | |")
    if "map_real_ms" in r:
        lines += ["", "## Evidence map (build + HTML table, best of 5; PNG once, matplotlib warm)", "",
                  "| corpus | kind ms | design ms | country ms | year ms | PNG ms |", "|---|---|---|---|---|---|"]
        for label, key in ((f"real ({r['map_real_cards']} cards)", "map_real"),
                           (f"synthetic ({r['map_synthetic_cards']:,} cards)", "map_synthetic")):
            ms = r[f"{key}_ms"]
            lines.append(f"| {label} | {ms['kind']} | {ms['design']} | {ms['country']} | {ms['year']} | "
                         f"{r[f'{key}_png_ms']} |")
    if r.get("scale"):
        lines += ["", f"## Scale run (generated corpus, {r.get('scale_embedder', 'hash')} embedder; fresh process per size)",
                  "", ("Query = retrieval (embed, dense, BM25, fusion, strategies, diversity); answer = `Assistant.ask` "
                  "(adds scope, coverage, composing). Start-up = process start to index loaded and encoder ready. "
                  "Targets at 100,000: query p95 <= 50 ms, start-up <= 3 s."), "",
                  ("| passages | query p50 / p95 ms | answer p50 / p95 ms | start-up s | RSS MB (peak) | indexing s per 1,000 "
                  "(store + snapshot) | snapshot from Chroma s | load average |"), "|---|---|---|---|---|---|---|---|"]
        for row in r["scale"]:
            lines.append(f"| {row['passages']:,} | {row['query_p50_ms']} / {row['query_p95_ms']} | "
                         f"{row.get('answer_p50_ms')} / {row.get('answer_p95_ms')} | {row['startup_s']} | "
                         f"{row['rss_mb']} ({row.get('peak_rss_mb')}) | {row['s_per_1000_added']} "
                         f"({row.get('store_s_per_1000_added')} + {row.get('snapshot_s_per_1000')}) | "
                         f"{row.get('snapshot_from_store_s')} | {row.get('load_avg_1m')} |")
    from evals.bench_ui import markdown as ui_markdown

    lines += ui_markdown(r)
    return "\n".join(lines) + "\n"


def main(settings: Settings, *, as_json: bool = False, quick: bool = False, out: Path | None = None,
         scale: int | list[int] | tuple[int, ...] = SCALE_SIZES, only: list[str] | None = None) -> int:
    """Run the benchmarks (``only``: a subset of ingest, noop, answers, cold, serve, map, scale)."""
    def wanted(name: str) -> bool:
        return not only or name in only

    tmp = Path(tempfile.mkdtemp(prefix="peer-bench-"))
    bench_settings = settings.replace(index_dir=tmp / "index")
    results: dict[str, Any] = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        for name, fn in (("ingest", bench_ingest), ("noop", bench_noop), ("answers", bench_answers),
                         ("cold", bench_cold), ("serve", bench_serve)):
            if not wanted(name):
                continue
            print(f"bench: {name}...", file=sys.stderr)
            kwargs: dict[str, Any] = {}
            if quick and name in ("answers",):
                kwargs["repeats"] = 1
            results.update(fn(bench_settings, **kwargs))
        if wanted("map"):
            print("bench: map...", file=sys.stderr)
            results.update(bench_map(settings))
        if wanted("ui-load"):  # evals/bench_ui.py: the UI under concurrent clients vs the Python API
            from evals.bench_ui import bench_ui_load

            print("bench: ui-load...", file=sys.stderr)
            results.update(bench_ui_load(bench_settings, quick=quick))
        if scale and any(scale if not isinstance(scale, int) else [scale]) and wanted("scale"):
            print("bench: scale...", file=sys.stderr)
            results.update(bench_scale(settings, [10_000] if quick else scale))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = out or Path("bench-out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (out / "bench.md").write_text(to_markdown(results), encoding="utf-8")
    if as_json and only == ["scale"]:
        print(json.dumps(results.get("scale", [])))  # just the rows, so the scale run can be rerun alone
    elif as_json:
        print(json.dumps(results))
    else:
        print(to_markdown(results))
    return 0


if __name__ == "__main__":  # pragma: no cover
    from assistant.settings import get_settings

    sys.exit(main(get_settings(), as_json="--json" in sys.argv))
