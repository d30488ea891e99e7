"""The reindex job: load → validate everything → split → (embed → write) incrementally.

Nothing touches the store until every card is valid. A manifest written after each successful run
lets an unchanged re-run finish without loading the model or writing anything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ingest import embedding
from ingest.cards import Corpus, load_corpus
from ingest.errors import IndexBusyError
from ingest.settings import IndexSettings, NestsIndexSettings, index_settings
from ingest.split import split_corpus
from ingest.store import EvidenceStore
from ingest.types import Card, Embedder, Passage

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


@dataclass
class IngestReport:
    """What a reindex did (or, with ``dry_run``, would do).

    ``added``, ``skipped`` and ``deleted`` count passages; ``updated`` counts cards whose passages
    were replaced. ``changes`` names the cards behind each number. ``orphans_removed`` and
    ``records_repaired`` count what an interrupted earlier run left behind (vectors without a record,
    records without a vector) and this run cleaned up.
    """

    cards: int
    passages: int
    added: int = 0
    updated: int = 0
    skipped: int = 0
    deleted: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    rebuilt: bool = False
    model_loaded: bool = False
    collection: str = ""
    changes: dict[str, list[str]] = field(default_factory=lambda: {"added": [], "updated": [], "deleted": []})
    orphans_removed: int = 0
    records_repaired: int = 0
    drafts_skipped: int = 0  # cards with `status: draft`: never indexed
    drafts: list[str] = field(default_factory=list)
    generation: str | None = None  # the index generation after this run (None for a dry run)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        verb = "Would change" if self.dry_run else "Indexed"
        lines = [
            f"{verb} {self.cards} cards / {self.passages} passages in collection {self.collection}"
            + (" (rebuilt)" if self.rebuilt else ""),
            f"  passages: {self.added} added, {self.skipped} skipped, {self.deleted} deleted",
            f"  cards: {len(self.changes['added'])} added, {self.updated} updated, {len(self.changes['deleted'])} deleted",
        ]
        for kind in ("added", "updated", "deleted"):
            if self.changes[kind]:
                lines.append(f"  {kind}: {', '.join(self.changes[kind])}")
        if self.drafts_skipped:
            lines.append(f"  drafts: {self.drafts_skipped} skipped (status: draft, not indexed): {', '.join(self.drafts)}")
        lines.append(f"  {self.seconds:.2f} s")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Manifest and lock


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ------------------------------------------------------------------------------------------------
# Index generations
#
# Every completed ingest that changes what the index holds gets a new generation string, written
# into the manifest and into the Chroma collection's metadata (so a server-mode replica without the
# local manifest can see it). Long-lived readers compare it between requests to notice a reindex;
# snapshot files live under snapshots/<generation>/. An unchanged reindex keeps the generation.

def content_hash(collection: str, passage_ids: Iterable[str]) -> str:
    """What an index generation holds: the collection (model + splitter) and its passage ids, which
    are content addresses (card id, heading, text and card metadata), so equal hashes mean equal
    content."""
    h = hashlib.sha256(collection.encode())
    for pid in sorted(passage_ids):
        h.update(b"\0" + pid.encode())
    return h.hexdigest()[:12]


def new_generation(digest: str, now: float | None = None) -> str:
    """``<UTC timestamp to the microsecond>-<content hash>``: sortable by time, unique per change."""
    t = time.time() if now is None else now
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(t)) + f"{int(t * 1e6) % 1_000_000:06d}Z-{digest}"


def generation_hash(generation: str | None) -> str | None:
    """The content-hash part of a generation string."""
    return generation.rsplit("-", 1)[-1] if generation and "-" in generation else None


def current_generation(index_dir: Path, store: Any = None) -> str | None:
    """The generation of the last completed ingest, or None when there is none.

    Cheap: reads the manifest. With a ``store`` in server mode (``chroma_host`` set) it asks the
    collection's metadata instead, since a replica may have no local manifest; a store that cannot
    be reached or holds no generation falls back to the manifest.
    """
    if store is not None and getattr(getattr(store, "settings", None), "chroma_host", None):
        try:
            gen = store.generation()
        except Exception as exc:  # noqa: BLE001 - transport errors vary; the manifest is the fallback
            log.debug("could not read the generation from the store: %s", exc)
            gen = None
        if gen:
            return str(gen)
    manifest = read_manifest(Path(index_dir))
    gen = (manifest or {}).get("generation")
    return str(gen) if gen else None


def write_manifest(index_dir: Path, data: dict[str, Any]) -> None:
    """Atomic write: a crash leaves either the old manifest or the new one, never half of one."""
    index_dir.mkdir(parents=True, exist_ok=True)
    tmp = index_dir / f".{MANIFEST}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, index_dir / MANIFEST)


@contextmanager
def writer_lock(index_dir: Path, timeout: float = 0.0) -> Iterator[None]:
    """One writer at a time per index directory; a second writer gets IndexBusyError."""
    from filelock import FileLock, Timeout

    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / "ingest.lock"))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise IndexBusyError(f"The index at {index_dir} is being rebuilt by another process.") from None
    try:
        yield
    finally:
        lock.release()


def _manifest_for(settings: IndexSettings, collection: str, cards: list[Card], passages: list[Passage],
                  state: str, generation: str | None = None, split: str | None = None) -> dict[str, Any]:
    by_card: dict[str, list[str]] = {c.id: [] for c in cards}
    for p in passages:
        by_card[p.card_id].append(p.id)
    return {
        "state": state,
        "collection": collection,
        "fingerprint": settings.vector_fingerprint(),
        "chroma": f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else "embedded",
        "n_passages": len(passages),
        **({"split": split} if split else {}),
        "cards": {c.id: {"hash": c.content_hash, "passages": by_card[c.id]} for c in cards},
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **({"generation": generation} if generation else {}),
    }


# What decides a card's passages besides its own bytes (which its content hash covers): the code that
# parses and splits cards, the taxonomy file and the text splitter used for over-long sentences.
SPLIT_SOURCES = ("cards.py", "safe_yaml.py", "split.py", "taxonomy.py", "text.py", "types.py")


def split_fingerprint(settings: IndexSettings) -> str:
    """A hash of everything besides a card's bytes that shapes its passages: the chunk settings, the
    source of ``SPLIT_SOURCES``, ``themes.yaml`` and the installed LangChain text splitter (its files'
    path, size and mtime, found without importing it). Equal fingerprints and equal card content
    hashes mean equal passages, so an unchanged reindex can take its passage ids from the manifest
    instead of splitting every card (and importing LangChain to do it)."""
    import importlib.util

    h = hashlib.sha256(json.dumps([settings.chunk_size, settings.chunk_overlap]).encode())
    here = Path(__file__).parent
    for name in SPLIT_SOURCES:
        h.update(b"\0" + name.encode() + b"\0" + (here / name).read_bytes())
    try:
        h.update(b"\0themes\0" + settings.themes_file().read_bytes())
    except OSError:
        h.update(b"\0no themes")
    spec = importlib.util.find_spec("langchain_text_splitters")
    origin = Path(spec.origin) if spec is not None and spec.origin else None
    for name in ("base.py", "character.py"):
        try:
            st = (origin.parent / name).stat() if origin is not None else None
        except OSError:
            st = None
        stamp = [str(origin.parent / name), st.st_size, st.st_mtime_ns] if origin is not None and st else None
        h.update(b"\0" + json.dumps(stamp).encode())
    return h.hexdigest()[:16]


def unchanged_report(previous: dict[str, Any] | None, cards: list[Card], collection: str,
                     split: str) -> IngestReport | None:
    """The report of a run with nothing to do, read from the manifest without splitting any card:
    the last run completed for this collection and this split fingerprint, and the cards are the
    ones it recorded, each with the content hash it recorded. None otherwise (the caller splits the
    corpus and compares passage ids, as before)."""
    if (not previous or previous.get("state") != "complete" or previous.get("collection") != collection
            or previous.get("split") != split):
        return None
    old = previous.get("cards")
    if not isinstance(old, dict) or len(old) != len(cards):
        return None
    ids: list[str] = []
    for card in cards:
        before = old.get(card.id)
        if not isinstance(before, dict) or before.get("hash") != card.content_hash:
            return None
        ids.extend(before.get("passages") or [])
    if len(set(ids)) != len(ids) or previous.get("n_passages") != len(ids):
        return None
    return IngestReport(cards=len(cards), passages=len(ids), skipped=len(ids), collection=collection)


def plan_changes(previous: dict[str, Any] | None, cards: list[Card], passages: list[Passage]) -> IngestReport:
    """Compare the corpus with the last successful run: which cards and passages would change."""
    report = IngestReport(cards=len(cards), passages=len(passages))
    old_cards: dict[str, Any] = (previous or {}).get("cards", {})
    new_ids: dict[str, set[str]] = {}
    for p in passages:
        new_ids.setdefault(p.card_id, set()).add(p.id)
    old_all = {pid for c in old_cards.values() for pid in c.get("passages", [])}
    new_all = {p.id for p in passages}
    for card in cards:
        before = old_cards.get(card.id)
        if before is None:
            report.changes["added"].append(card.id)
        elif set(before.get("passages", [])) != new_ids.get(card.id, set()):
            report.changes["updated"].append(card.id)
    report.changes["deleted"] = sorted(set(old_cards) - {c.id for c in cards})
    report.updated = len(report.changes["updated"])
    report.added = len(new_all - old_all)
    report.deleted = len(old_all - new_all)
    report.skipped = len(new_all & old_all)
    return report


# ------------------------------------------------------------------------------------------------
# The job


def run_ingest(settings: IndexSettings | NestsIndexSettings, *, full: bool = False, dry_run: bool = False, embedder: Embedder | None = None,
               progress: Callable[[int, int], Any] | None = None, corpus: Corpus | None = None,
               lock_timeout: float = 0.0) -> IngestReport:
    """Validate the whole corpus, then bring the index in line with it.

    Raises CorpusError (listing every problem) before anything is written, IndexBusyError when
    another writer holds the lock, StoreUnavailableError when Chroma cannot be reached.
    ``progress(done, total)`` is called as passages are written.
    """
    settings = index_settings(settings)
    t0 = time.perf_counter()
    corpus = corpus or load_corpus(settings.corpus_dir, settings.max_card_bytes)
    report = _sync(settings, corpus, t0, full=full, dry_run=dry_run, embedder=embedder, progress=progress,
                   lock_timeout=lock_timeout)
    report.drafts = sorted(d.id for d in corpus.drafts)
    report.drafts_skipped = len(report.drafts)
    return report


def _sync(settings: IndexSettings, corpus: Corpus, t0: float, *, full: bool, dry_run: bool, embedder: Embedder | None,
          progress: Callable[[int, int], Any] | None, lock_timeout: float) -> IngestReport:
    collection = settings.collection_name()
    index_dir = settings.index_dir
    split = split_fingerprint(settings)

    if dry_run:
        previous = read_manifest(index_dir)
        quick = None if full else unchanged_report(previous, corpus.cards, collection, split)
        if quick is not None:
            quick.dry_run = True
            quick.seconds = time.perf_counter() - t0
            return quick
        passages = split_corpus(corpus.cards, settings.chunk_size, settings.chunk_overlap)
        same_vectors = previous is not None and previous.get("collection") == collection and not full
        report = plan_changes(previous if same_vectors else None, corpus.cards, passages)
        report.dry_run, report.rebuilt, report.collection = True, not same_vectors, collection
        report.seconds = time.perf_counter() - t0
        return report

    with writer_lock(index_dir, lock_timeout):
        previous = read_manifest(index_dir)
        quick = None if full else unchanged_report(previous, corpus.cards, collection, split)
        if quick is not None and _recorded_count(settings, collection) == quick.passages:
            # Nothing changed since the last complete run, and the manifest says which passages the
            # cards make: no splitting, no model, no writes, no store round trip.
            quick.generation = (previous or {}).get("generation")
            embedding.ensure_query_encoder(settings)
            quick.seconds = time.perf_counter() - t0
            return quick
        passages = split_corpus(corpus.cards, settings.chunk_size, settings.chunk_overlap)

        same_vectors = previous is not None and previous.get("collection") == collection
        report = plan_changes(previous if same_vectors else None, corpus.cards, passages)
        report.collection = collection
        clean = (same_vectors and previous is not None and previous.get("state") == "complete"
                 and report.added == 0 and report.deleted == 0 and not full)
        if clean and _recorded_count(settings, collection) == len(passages):
            # Nothing changed since the last complete run: no model, no writes, no store round trip.
            report.generation = (previous or {}).get("generation")
            _refresh_manifest(settings, previous, collection, corpus.cards, passages, split)
            embedding.ensure_query_encoder(settings)
            report.seconds = time.perf_counter() - t0
            return report
        store = EvidenceStore(settings, collection_name=collection)
        if clean and store.count() == len(passages):
            # Nothing changed since the last complete run: no model, no writes.
            report.generation = (previous or {}).get("generation")
            _refresh_manifest(settings, previous, collection, corpus.cards, passages, split)
            embedding.ensure_query_encoder(settings)
            report.seconds = time.perf_counter() - t0
            return report

        if full or not same_vectors:
            report.rebuilt = True
            if previous and previous.get("collection") and previous["collection"] != collection:
                log.info("vector settings changed: rebuilding instead of mixing vectors")
            report = _rebuilt_report(report, previous if same_vectors else None, corpus.cards, passages)

        # Mark the index dirty before changing anything, so a run killed at any point (even while
        # dropping) leaves state "writing" and the next run repairs it. Keep the card list only when it
        # describes this collection, and remember an older collection so a later run can drop it even if
        # this one is killed.
        old_collection = (previous or {}).get("collection")
        leftover = (previous or {}).get("previous_collection")
        write_manifest(index_dir, {
            **({k: v for k, v in (previous or {}).items() if k != "cards"}),
            "cards": (previous or {}).get("cards", {}) if same_vectors else {},
            "state": "writing", "collection": collection,
            "previous_collection": leftover or (old_collection if old_collection != collection else None),
        })
        if not same_vectors:
            # A new collection starts empty. A --full rebuild of the current collection is done in place
            # (every passage embedded and written again), so readers never see it missing or half-empty.
            store.drop()
        if embedder is None:

            embedder = embedding.get_embedder(settings)
        done = 0

        def on_batch(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(min(done, len(passages)), len(passages))

        stats = store.sync(passages, embedder, on_batch=on_batch, force=full and same_vectors,
                           batch_size=settings.index_batch_size)
        if progress is not None:
            progress(len(passages), len(passages))
        embedding.ensure_query_encoder(settings, embedder)
        report.added, report.skipped, report.deleted = stats["added"], stats["skipped"], stats["deleted"]
        report.orphans_removed = stats["orphans_removed"]
        report.records_repaired = stats["records_repaired"]
        report.model_loaded = bool(getattr(embedder, "loaded", stats["added"] > 0))
        digest = content_hash(collection, (p.id for p in passages))
        old_gen = (previous or {}).get("generation")
        generation = str(old_gen) if old_gen and generation_hash(str(old_gen)) == digest else new_generation(digest)
        if settings.snapshots:
            _write_snapshot(settings, store, generation)
        try:
            store.set_generation(generation)
        except Exception as exc:  # noqa: BLE001 - the manifest below still carries it
            log.warning("could not record the index generation in the collection metadata: %s", exc)
        write_manifest(index_dir, _manifest_for(settings, collection, corpus.cards, passages, "complete", generation,
                                                split))
        report.generation = generation
        for old in {(previous or {}).get("collection"), (previous or {}).get("previous_collection")} - {None, collection}:
            _drop_old(settings, str(old))
        report.seconds = time.perf_counter() - t0
        return report


def _refresh_manifest(settings: IndexSettings, previous: dict[str, Any] | None, collection: str, cards: list[Card],
                      passages: list[Passage], split: str) -> None:
    """After an unchanged run that had to split the corpus (a manifest from before split
    fingerprints, changed splitting code that made the same passages, a card edit that changed no
    passage): record this run's card hashes and split fingerprint, so the next unchanged run can
    skip splitting (``unchanged_report``). The index, its generation and the passage lists stay as
    they are; nothing is written when the manifest already says this."""
    if previous is None:
        return
    fresh = _manifest_for(settings, collection, cards, passages, "complete", previous.get("generation"), split)
    if fresh.get("split") == previous.get("split") and fresh["cards"] == previous.get("cards"):
        return
    fresh["updated_at"] = previous.get("updated_at", fresh["updated_at"])
    write_manifest(settings.index_dir, fresh)


def _write_snapshot(settings: IndexSettings, store: EvidenceStore, generation: str) -> None:
    """The snapshot files of ``generation`` (best effort: readers build one from the store without)."""
    from ingest import snapshot
    from ingest.vocabulary import VOCABULARY_FILE, load_vocabulary

    if (snapshot.snapshot_dir(settings.index_dir, generation) / "meta.json").is_file():
        return
    try:
        tokenizer = load_vocabulary(settings.data_file(VOCABULARY_FILE)).tokenizer
        snapshot.from_store(store, generation, settings.index_dir, tokenizer)
    except Exception as exc:  # noqa: BLE001 - the index itself is complete; a snapshot is an optimisation
        log.warning("could not write the index snapshot for %s: %s", generation, exc)


def _recorded_count(settings: IndexSettings, collection: str) -> int | None:
    """Passages the record manager holds for ``collection`` (plain sqlite3: no LangChain or Chroma import).

    Only used in embedded mode, where a complete manifest plus a matching record count means the
    last run finished (every run reconciles the collection with the record manager before it
    writes a complete manifest). In server mode the store itself is asked.
    """
    if settings.chroma_host:
        return None

    path = settings.index_dir / "records.sqlite"
    if not path.exists() or not (settings.index_dir / "chroma").is_dir():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT count(*) FROM upsertion_record WHERE namespace = ?",
                               (f"chroma/{collection}",)).fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row else None


def _rebuilt_report(report: IngestReport, previous: dict[str, Any] | None, cards: list[Card],
                    passages: list[Passage]) -> IngestReport:
    fresh = plan_changes(None, cards, passages)
    fresh.collection, fresh.rebuilt = report.collection, True
    if previous:
        # Report card-level changes against the previous run even when every vector is rewritten.
        fresh.changes = report.changes
        fresh.updated = report.updated
    return fresh


def _drop_old(settings: IndexSettings, name: str) -> None:

    try:
        EvidenceStore(settings, collection_name=name).drop()
    except Exception as exc:  # noqa: BLE001 - best effort: the new index is already complete
        log.warning("could not remove the old collection %s: %s", name, exc)


def index_is_built(settings: IndexSettings | NestsIndexSettings) -> bool:
    """True when a complete index for the current vector settings exists (cheap: reads the manifest)."""
    settings = index_settings(settings)
    manifest = read_manifest(settings.index_dir)
    return bool(manifest and manifest.get("state") == "complete"
                and manifest.get("collection") == settings.collection_name())
