"""Test doubles with the interfaces of the real collaborators."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ingest.errors import IndexNotBuiltError
from ingest.split import to_metadata
from ingest.types import Embedder, Passage


class InMemoryStore:
    """The ``ingest.store.EvidenceStore`` methods the assistant and the pipeline use (``query``,
    ``passages``, ``ids``, ``count``, ``delete_ids``, ``sync``), over a dict and exact cosine.

    ``tests/ingest/test_store_contract.py`` runs one suite against this and the real Chroma store,
    so the two cannot drift apart.
    """

    def __init__(self) -> None:
        self._rows: dict[str, tuple[Passage, np.ndarray]] = {}
        self._created = False

    def _collection(self) -> dict[str, tuple[Passage, np.ndarray]]:
        if not self._created:
            raise IndexNotBuiltError("The evidence index 'in-memory' does not exist yet.")
        return self._rows

    def count(self) -> int:
        return len(self._rows)

    def ids(self) -> set[str]:
        return set(self._rows)

    def passages(self) -> list[Passage]:
        return sorted((p for p, _ in self._collection().values()), key=lambda p: (p.card_id, p.ordinal))

    def query(self, vector: Sequence[float], k: int, where: dict[str, Any] | None = None) -> list[tuple[Passage, float]]:
        q = np.asarray(vector, dtype="float64")
        q = q / (np.linalg.norm(q) or 1.0)
        hits = [(p, float(v @ q)) for p, v in self._collection().values()
                if not where or all(to_metadata(p).get(key) == value for key, value in where.items())]
        hits.sort(key=lambda hit: -hit[1])
        return hits[:k]

    def delete_ids(self, ids: Sequence[str]) -> None:
        for passage_id in ids:
            self._rows.pop(passage_id, None)

    def sync(self, passages: Iterable[Passage], embedder: Embedder, *, batch_size: int = 512,
             on_batch: Callable[[int], None] | None = None, force: bool = False) -> dict[str, int]:
        self._created = True
        wanted = {p.id: p for p in passages}
        todo = [p for pid, p in wanted.items() if force or pid not in self._rows]
        vectors = embedder.embed_documents([p.embed_text() for p in todo]) if todo else []
        for p, v in zip(todo, vectors):
            arr = np.asarray(v, dtype="float64")
            self._rows[p.id] = (p, arr / (np.linalg.norm(arr) or 1.0))
        gone = [pid for pid in self._rows if pid not in wanted]
        self.delete_ids(gone)
        return {"added": len(todo), "skipped": len(wanted) - len(todo), "deleted": len(gone),
                "orphans_removed": 0, "records_repaired": 0}
