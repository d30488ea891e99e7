"""The reindex job: load → validate everything → split → (embed → write) incrementally.

Nothing touches the store until every card is valid. A manifest written after each successful run
lets an unchanged re-run finish without loading the model or writing anything.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
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
                  state: str) -> dict[str, Any]:
    by_card: dict[str, list[str]] = {c.id: [] for c in cards}
    for p in passages:
        by_card[p.card_id].append(p.id)
    return {
        "state": state,
        "collection": collection,
        "fingerprint": settings.vector_fingerprint(),
        "chroma": f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else "embedded",
        "n_passages": len(passages),
        "cards": {c.id: {"hash": c.content_hash, "passages": by_card[c.id]} for c in cards},
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


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
    passages = split_corpus(corpus.cards, settings.chunk_size, settings.chunk_overlap)
    collection = settings.collection_name()
    index_dir = settings.index_dir

    if dry_run:
        previous = read_manifest(index_dir)
        same_vectors = previous is not None and previous.get("collection") == collection and not full
        report = plan_changes(previous if same_vectors else None, corpus.cards, passages)
        report.dry_run, report.rebuilt, report.collection = True, not same_vectors, collection
        report.seconds = time.perf_counter() - t0
        return report

    with writer_lock(index_dir, lock_timeout):
        previous = read_manifest(index_dir)

        same_vectors = previous is not None and previous.get("collection") == collection
        report = plan_changes(previous if same_vectors else None, corpus.cards, passages)
        report.collection = collection
        clean = (same_vectors and previous is not None and previous.get("state") == "complete"
                 and report.added == 0 and report.deleted == 0 and not full)
        if clean and _recorded_count(settings, collection) == len(passages):
            # Nothing changed since the last complete run: no model, no writes, no store round trip.
            report.seconds = time.perf_counter() - t0
            return report
        store = EvidenceStore(settings, collection_name=collection)
        if clean and store.count() == len(passages):
            # Nothing changed since the last complete run: no model, no writes.
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
        report.added, report.skipped, report.deleted = stats["added"], stats["skipped"], stats["deleted"]
        report.orphans_removed = stats["orphans_removed"]
        report.records_repaired = stats["records_repaired"]
        report.model_loaded = bool(getattr(embedder, "loaded", stats["added"] > 0))
        write_manifest(index_dir, _manifest_for(settings, collection, corpus.cards, passages, "complete"))
        for old in {(previous or {}).get("collection"), (previous or {}).get("previous_collection")} - {None, collection}:
            _drop_old(settings, str(old))
        report.seconds = time.perf_counter() - t0
        return report


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
