"""Snapshot files per index generation: what the answer path needs in memory, written at ingest.

Why: loading every passage page by page from Chroma at start-up took 14 s at 50,000 passages, and
BM25 through rank_bm25 is a Python loop over every document per query. A snapshot holds, under
``index_dir/snapshots/<generation>/``:

- ``passages.json``: the passages in card order (fields per passage, card metadata once per card);
- ``vectors.npy``: their stored vectors, float32, row i is passage i (loaded with ``mmap_mode="r"``);
- ``bm25/``: a bm25s sparse index over the passages' BM25 tokens (today's stemming tokenizer),
  scored like rank_bm25's ``BM25Okapi`` (same k1, b, idf and epsilon floor), loaded memory-mapped;
- ``meta.json``: counts, the tokenizer's fingerprint and the collection (model + splitter), written last.

A snapshot is written to a temporary directory and renamed into place, so a reader sees a whole
one or none. The newest two are kept (a reader may still be loading the previous one).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ingest.split import from_metadata, to_metadata
from ingest.text import Tokenizer
from ingest.types import Passage

log = logging.getLogger(__name__)

SNAPSHOTS = "snapshots"
PASSAGES = "passages.json"
FORMAT = 2
KEEP = 2
#: rank_bm25's BM25Okapi defaults (the ranking the eval baseline was measured with).
K1, B, EPSILON = 1.5, 0.75, 0.25


def tokenizer_fingerprint(tokenizer: Tokenizer) -> str:
    """What shapes the BM25 tokens: a changed spelling list means the BM25 index is rebuilt."""
    return hashlib.sha256(json.dumps(["v1", list(tokenizer.ise_stems)]).encode()).hexdigest()[:12]


class LexicalIndex:
    """BM25 over the passages as a bm25s sparse matrix of precomputed term scores.

    bm25s's own scorers differ from rank_bm25 (no ``k1 + 1`` factor, negative idf clamped to 0),
    so the matrix is computed here and bm25s holds, saves and memory-maps it.

    ``get_scores(tokens)`` gives the same numbers as rank_bm25's ``BM25Okapi.get_scores`` (a query
    token counted as often as it occurs; idf ``log((N - n + 0.5) / (n + 0.5))``, and a negative
    idf replaced by ``0.25 x`` the mean idf), so rankings and the relevance gate are unchanged; a
    query costs one sparse column sum instead of a Python loop over every passage.
    """

    def __init__(self, vocab: dict[str, int], data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
                 n_docs: int, idf: dict[str, float], model: Any = None) -> None:
        self.model = model  # the bm25s object after a build (what saves the files), None after a load
        self.idf = idf
        self.vocab = vocab
        # Plain ndarray views of memory-mapped files (no copy): slicing an np.memmap makes a memmap
        # object per slice, which costs more than the few additions a query does with it.
        self._data, self._indices, self._indptr = np.asarray(data), np.asarray(indices), np.asarray(indptr)
        self.n_docs = int(n_docs)

    @classmethod
    def build(cls, corpus_tokens: Sequence[Sequence[str]]) -> LexicalIndex:
        """Compute every (term, passage) score exactly as BM25Okapi does, element by element, and
        hold them in a bm25s index (its CSC layout, save and memory-mapped load)."""
        import bm25s

        vocab: dict[str, int] = {}  # first-occurrence order, as BM25Okapi's idf dict
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[int] = []
        for i, doc in enumerate(corpus_tokens):
            for t, c in Counter(doc).items():
                rows.append(i)
                cols.append(vocab.setdefault(t, len(vocab)))
                tfs.append(c)
        n = len(corpus_tokens)
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=len(vocab)) if cols else np.zeros(0, dtype=np.int64)
        idf_list = [math.log(n - int(f) + 0.5) - math.log(int(f) + 0.5) for f in df]
        floor = EPSILON * (sum(idf_list) / len(idf_list)) if idf_list else 0.0
        idf = np.asarray([floor if v < 0 else v for v in idf_list], dtype="float64")
        doc_len = np.asarray([len(d) for d in corpus_tokens], dtype="float64")
        avgdl = float(sum(len(d) for d in corpus_tokens)) / max(n, 1)
        r = np.asarray(rows, dtype=np.int64)
        c_ = np.asarray(cols, dtype=np.int64)
        tf = np.asarray(tfs, dtype="float64")
        dl = doc_len[r] if r.size else np.zeros(0)
        # The same expression, in the same order, as rank_bm25's BM25Okapi.get_scores.
        data = idf[c_] * (tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / avgdl))) if r.size else np.zeros(0)
        order = np.lexsort((r, c_))
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(c_, minlength=len(vocab)), out=indptr[1:])
        model = bm25s.BM25(method="robertson", k1=K1, b=B, dtype="float64", int_dtype="int64")
        model.scores = {"data": data[order], "indices": r[order], "indptr": indptr, "num_docs": n}
        model.vocab_dict = vocab
        model.nonoccurrence_array = None
        inv = list(vocab)
        scores = model.scores
        return cls(vocab, scores["data"], scores["indices"], scores["indptr"], n,
                   {inv[j]: float(idf[j]) for j in range(len(inv))}, model=model)

    def save(self, path: Path) -> None:
        if self.model is None:
            raise ValueError("only a built index is saved (a loaded one is already on disk)")
        self.model.save(str(path))
        (path / "okapi_idf.json").write_text(json.dumps(self.idf), encoding="utf-8")

    @classmethod
    def load(cls, path: Path, mmap: bool = True) -> LexicalIndex:
        """Read the files bm25s saved (its documented layout) with NumPy, memory-mapped, without
        importing bm25s: its import (scipy.sparse and more) costs about a second of start-up.
        tests/ingest/test_snapshot.py checks the layout against ``bm25s.BM25.load(mmap=True)``."""
        data, indices, indptr = (np.load(path / f"{name}.csc.index.npy", mmap_mode="r" if mmap else None,
                                         allow_pickle=False) for name in ("data", "indices", "indptr"))
        vocab = orjson.loads((path / "vocab.index.json").read_bytes())
        params = orjson.loads((path / "params.index.json").read_bytes())
        idf = orjson.loads((path / "okapi_idf.json").read_bytes())
        return cls(vocab, data, indices, indptr, int(params["num_docs"]), idf)

    def get_scores(self, tokens: Sequence[str]) -> np.ndarray:
        out = np.zeros(self.n_docs, dtype="float64")
        for t in tokens:
            j = self.vocab.get(t)
            if j is None:
                continue
            lo, hi = int(self._indptr[j]), int(self._indptr[j + 1])
            if hi > lo:  # the passages of one term's column are distinct, so += is exact
                out[self._indices[lo:hi]] += self._data[lo:hi]
        return out


_FIELDS = ("id", "card_id", "section", "heading", "text", "theme", "strategy", "strategy_title", "ordinal")


def _encode_passages(passages: Sequence[Passage]) -> bytes:
    """Passages as one JSON document: a row of fields per passage and each distinct card-metadata
    dict once (a card's passages share it). Each passage goes through the store's metadata round
    trip first, so a snapshot gives exactly the Passage objects Chroma would."""
    seen: dict[bytes, int] = {}
    metas: list[dict[str, Any]] = []
    rows = []
    for p in passages:
        q = from_metadata(to_metadata(p))
        key = orjson.dumps(q.meta, option=orjson.OPT_SORT_KEYS)
        if key not in seen:
            seen[key] = len(metas)
            metas.append(q.meta)  # keys in their own order
        rows.append([*(getattr(q, f) for f in _FIELDS), seen[key]])
    return orjson.dumps({"fields": [*_FIELDS, "meta"], "metas": metas, "rows": rows})


def _decode_passages(blob: bytes) -> list[Passage]:
    doc = orjson.loads(blob)
    if doc.get("fields") != [*_FIELDS, "meta"]:
        raise ValueError("unknown passage layout")
    metas = doc["metas"]
    # Passages of one card share one metadata dict (read-only everywhere), which also saves memory.
    return [Passage(*row[:9], metas[row[9]]) for row in doc["rows"]]  # type: ignore[call-arg]


@dataclass
class Snapshot:
    """A loaded snapshot: passages in card order, their vectors (memory-mapped), the BM25 index."""

    generation: str
    passages: list[Passage]
    vectors: np.ndarray | None
    lexical: LexicalIndex
    path: Path | None = None


def snapshot_dir(index_dir: Path, generation: str) -> Path:
    return Path(index_dir) / SNAPSHOTS / generation


def write_snapshot(index_dir: Path, generation: str, passages: Sequence[Passage],
                   vectors: np.ndarray | None, tokenizer: Tokenizer, collection: str = "",
                   lexical: LexicalIndex | None = None) -> Path:
    """Write the snapshot of ``generation`` atomically (temp dir, then rename) and prune old ones."""
    root = Path(index_dir) / SNAPSHOTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / generation
    if (final / "meta.json").is_file():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".{generation}.", dir=root))
    try:
        (tmp / PASSAGES).write_bytes(_encode_passages(passages))
        if vectors is not None:
            np.save(tmp / "vectors.npy", np.ascontiguousarray(vectors, dtype="float32"), allow_pickle=False)
        if lexical is None:
            lexical = LexicalIndex.build([tokenizer(p.embed_text()) for p in passages])
        lexical.save(tmp / "bm25")
        meta = {"format": FORMAT, "generation": generation, "n_passages": len(passages),
                "vectors": vectors is not None, "tokenizer": tokenizer_fingerprint(tokenizer), "collection": collection}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; readers may run as another user
        if (final / "meta.json").is_file():  # another process wrote the same generation meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
            return final
        if final.exists():  # an incomplete one left by a killed run
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune(index_dir, keep=KEEP)
    return final


def prune(index_dir: Path, keep: int = KEEP) -> None:
    """Delete all but the newest ``keep`` complete snapshots (generations sort by time), and any
    temporary directory a killed writer left."""
    root = Path(index_dir) / SNAPSHOTS
    if not root.is_dir():
        return
    complete = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                      and (d / "meta.json").is_file())
    for d in complete[:-keep] if keep else complete:
        shutil.rmtree(d, ignore_errors=True)
    for d in root.iterdir():
        try:
            # A temporary directory an hour old belongs to a writer that was killed.
            if d.name.startswith(".") and d.is_dir() and time.time() - d.stat().st_mtime > 3600:
                shutil.rmtree(d, ignore_errors=True)
        except OSError:
            pass


def load_snapshot(index_dir: Path, generation: str, tokenizer: Tokenizer, collection: str = "") -> Snapshot | None:
    """The snapshot of ``generation``, or None when it is missing, incomplete, damaged, or was
    written with another tokenizer or for another collection (the caller then builds one from the
    store)."""
    path = snapshot_dir(index_dir, generation)
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT or meta.get("tokenizer") != tokenizer_fingerprint(tokenizer):
            return None
        if collection and meta.get("collection") != collection:
            return None
        passages = _decode_passages((path / PASSAGES).read_bytes())
        vectors = np.load(path / "vectors.npy", mmap_mode="r", allow_pickle=False) if meta.get("vectors") else None
        if len(passages) != meta.get("n_passages") or (vectors is not None and vectors.shape[0] != len(passages)):
            return None
        lexical = LexicalIndex.load(path / "bm25")
        if lexical.n_docs != len(passages):
            return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.info("snapshot %s unusable (%s); building from the store", path, exc)
        return None
    return Snapshot(generation, passages, vectors, lexical, path)


def from_store(store: Any, generation: str | None, index_dir: Path | None, tokenizer: Tokenizer,
               save: bool = True) -> Snapshot:
    """Build a snapshot from the store's passages and vectors (at ingest, or once by a reader that
    found none), saving it under ``generation`` when one is known and ``save`` is set (best effort:
    a read-only index directory still gets the in-memory snapshot)."""
    lister = getattr(store, "passages_with_vectors", None)
    if callable(lister):
        pairs = lister()
        passages = [p for p, _ in pairs]
        listed = [v for _, v in pairs]
        vectors = (np.asarray(listed, dtype="float32") if listed and all(v is not None for v in listed) else None)
    else:  # a store that cannot list vectors
        passages, vectors = list(store.passages()), None
    lexical = LexicalIndex.build([tokenizer(p.embed_text()) for p in passages]) if passages else None
    path = None
    if save and generation and index_dir is not None and passages and lexical is not None:
        try:
            path = write_snapshot(index_dir, generation, passages, vectors, tokenizer,
                                  str(getattr(store, "name", "")), lexical=lexical)
        except OSError as exc:
            log.warning("could not write the index snapshot (%s); it is rebuilt at the next start", exc)
    if lexical is None:
        lexical = LexicalIndex.build([[]])
    return Snapshot(generation or "", passages, vectors, lexical, path)
