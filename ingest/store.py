"""The vector store adapter: Chroma (embedded or server) written through LangChain's indexing API.

Chroma, LangChain and SQLAlchemy types stay inside this module; callers see Passages and floats.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ingest.errors import IndexNotBuiltError, StoreUnavailableError
from ingest.settings import IndexSettings, NestsIndexSettings, enforce_offline, index_settings
from ingest.split import from_metadata, to_metadata
from ingest.types import Embedder, Passage

if TYPE_CHECKING:  # pragma: no cover
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

log = logging.getLogger(__name__)

GET_PAGE = 2000

#: The collection-metadata key holding the index generation (see ingest.pipeline.current_generation).
GENERATION_KEY = "peer_generation"


def open_client(settings: IndexSettings | NestsIndexSettings) -> ClientAPI:
    """A Chroma client: a server when ``chroma_host`` is set, else the embedded store in index_dir."""
    settings = index_settings(settings)
    enforce_offline()
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma_host:
            headers = {}
            if settings.chroma_token is not None:
                headers["Authorization"] = f"Bearer {settings.chroma_token.get_secret_value()}"
            client = chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port,
                                         headers=headers, settings=chroma_settings)
            client.heartbeat()
            return client
        path = settings.index_dir / "chroma"
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
    except Exception as exc:  # connection and open errors vary by transport
        where = f"{settings.chroma_host}:{settings.chroma_port}" if settings.chroma_host else str(settings.index_dir)
        raise StoreUnavailableError(f"Cannot open the Chroma store at {where}: {exc}") from exc


def as_langchain(embedder: Embedder) -> Any:
    """Our Embedder behind LangChain's Embeddings interface (LangChain imported only here)."""
    from langchain_core.embeddings import Embeddings

    class _Adapter(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return embedder.embed_documents(texts)

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed_query(text)

    return _Adapter()


class EvidenceStore:
    """One Chroma collection of passages plus its SQL record manager."""

    def __init__(self, settings: IndexSettings | NestsIndexSettings, client: ClientAPI | None = None, collection_name: str | None = None) -> None:
        self.settings = settings = index_settings(settings)
        self._client = client
        self.name = collection_name or settings.collection_name()
        self._stale_warned = False

    @property
    def client(self) -> ClientAPI:
        """Opened on first use: a reader answering from snapshot files never imports Chroma."""
        if self._client is None:
            self._client = open_client(self.settings)
        return self._client

    # ---- collection ------------------------------------------------------------------------
    def exists(self) -> bool:
        client = self.client  # outside the try: an unreachable store is StoreUnavailableError, not "missing"
        try:
            client.get_collection(self.name)
            return True
        except Exception:  # noqa: BLE001 - NotFoundError / ValueError across versions
            return False

    def collection(self, create: bool = False) -> Collection:
        client = self.client  # outside the try: an unreachable store is StoreUnavailableError, not "missing"
        try:
            if create:
                return client.get_or_create_collection(
                    self.name, embedding_function=None,
                    metadata={"hnsw:space": "cosine", **{f"peer_{k}": str(v) for k, v in
                                                         self.settings.vector_fingerprint().items()}})
            return client.get_collection(self.name, embedding_function=None)
        except Exception as exc:  # create and get fail differently across Chroma versions
            if create:
                raise StoreUnavailableError(f"Cannot create collection {self.name}: {exc}") from exc
            raise IndexNotBuiltError(f"The evidence index '{self.name}' does not exist yet.") from exc

    def count(self) -> int:
        return self.collection().count() if self.exists() else 0

    def generation(self) -> str | None:
        """The index generation recorded in the collection's metadata (None when absent)."""
        if not self.exists():
            return None
        value = (self.collection().metadata or {}).get(GENERATION_KEY)
        return str(value) if value else None

    def set_generation(self, generation: str) -> None:
        """Record ``generation`` in the collection's metadata, keeping its other keys."""
        col = self.collection()
        meta = {k: v for k, v in (col.metadata or {}).items() if not k.startswith("hnsw:")}
        col.modify(metadata={**meta, GENERATION_KEY: generation})

    def _pages(self, include: list[Any]) -> Iterator[dict[str, Any]]:
        """The whole collection, page by page (Chroma caps one ``get``)."""
        col = self.collection()
        offset = 0
        while True:
            batch = col.get(include=include, limit=GET_PAGE, offset=offset)
            yield dict(batch)
            if len(batch["ids"]) < GET_PAGE:
                return
            offset += GET_PAGE

    def ids(self) -> set[str]:
        if not self.exists():
            return set()
        return {pid for batch in self._pages([]) for pid in batch["ids"]}

    def passages(self) -> list[Passage]:
        """Every passage in the collection, in card order."""
        out = [from_metadata(dict(m)) for batch in self._pages(["metadatas"]) for m in batch["metadatas"] or []]
        out.sort(key=lambda p: (p.card_id, p.ordinal))
        return out

    def passages_with_vectors(self) -> list[tuple[Passage, Sequence[float] | None]]:
        """Every passage with its stored vector, read together page by page (so a reindex in another
        process can never pair a passage with a vector it has already deleted). An embedded reader
        whose vector index went stale under a reindex in another process cannot read vectors: it
        gets the passages alone (vector None) and a warning."""
        from chromadb.errors import ChromaError

        try:
            out: list[tuple[Passage, Sequence[float] | None]] = []
            for batch in self._pages(["metadatas", "embeddings"]):
                vectors = batch["embeddings"] if batch["embeddings"] is not None else []
                out.extend((from_metadata(dict(m)), v) for m, v in zip(batch["metadatas"] or [], vectors)
                           if m is not None)
        except ChromaError as exc:
            log.warning("could not read passage vectors (%s); relevance uses query cosines only", exc)
            return [(p, None) for p in self.passages()]
        out.sort(key=lambda pv: (pv[0].card_id, pv[0].ordinal))
        return out

    def query(self, vector: Sequence[float], k: int, where: dict[str, Any] | None = None) -> list[tuple[Passage, float]]:
        """Nearest passages with their cosine similarity."""
        col = self.collection()
        n = min(k, max(col.count(), 1))
        embedding: Sequence[float] = [float(v) for v in vector]
        res = col.query(query_embeddings=[embedding], n_results=n, where=where, include=["metadatas", "distances"])
        metas = (res.get("metadatas") or [[]])[0]
        dists = (res.get("distances") or [[]])[0]
        # A hit without metadata is a vector another process has deleted since this process loaded the
        # embedded store's vector index (a reader running across a reindex): skip it rather than fail.
        stale = sum(m is None for m in metas)
        if stale and not self._stale_warned:
            self._stale_warned = True
            log.warning("skipped %d passages deleted by a reindex in another process; restart or reload to see "
                        "the new index", stale)
        return [(from_metadata(dict(m)), 1.0 - float(d)) for m, d in zip(metas, dists) if m is not None]

    def delete_ids(self, ids: Sequence[str]) -> None:
        if ids and self.exists():
            col = self.collection()
            for start in range(0, len(ids), GET_PAGE):
                col.delete(ids=list(ids[start:start + GET_PAGE]))

    def drop(self) -> None:
        """Delete the record-manager namespace and the collection.

        Records go first: a run killed in between leaves vectors without records (removed by the next
        ``sync``), never records without vectors (which the indexing API would skip as already written).
        """
        rm = self.record_manager()
        _delete_keys(rm, rm.list_keys())
        if self.exists():
            self.client.delete_collection(self.name)

    # ---- record manager ----------------------------------------------------------------------
    def record_manager(self) -> Any:
        from langchain_classic.indexes import SQLRecordManager

        self.settings.index_dir.mkdir(parents=True, exist_ok=True)
        rm = SQLRecordManager(f"chroma/{self.name}",
                              db_url=f"sqlite:///{self.settings.index_dir / 'records.sqlite'}")
        rm.create_schema()
        return rm

    # ---- writing -----------------------------------------------------------------------------
    def sync(self, passages: Iterable[Passage], embedder: Embedder, *, batch_size: int = 512,
             on_batch: Callable[[int], None] | None = None, force: bool = False) -> dict[str, int]:
        """Bring the collection in line with ``passages`` (LangChain indexing API, full cleanup).

        Unchanged passages are skipped without embedding (``force``: every passage is embedded and
        written again, in place, so readers keep a complete collection); passages no longer in the
        corpus are deleted. Records whose vector is missing are forgotten first (so those passages are
        written again), and afterwards any vector the record manager does not know (left by a killed
        run) is removed.
        """
        from langchain_chroma import Chroma
        from langchain_core.documents import Document
        from langchain_core.indexing import index

        self.collection(create=True)
        vector_store = Chroma(client=self.client, collection_name=self.name,
                              embedding_function=as_langchain(embedder),
                              collection_metadata={"hnsw:space": "cosine"})
        rm = self.record_manager()
        missing = sorted(set(rm.list_keys()) - self.ids())
        if missing:
            log.warning("re-adding %d passages recorded as written but missing from the collection", len(missing))
            _delete_keys(rm, missing)

        def docs() -> Iterator[Document]:
            for i, p in enumerate(passages, 1):
                if on_batch is not None and i % batch_size == 0:
                    on_batch(batch_size)
                yield Document(page_content=p.embed_text(), metadata=to_metadata(p))

        # The key encoder is our content address: sha256 over card id, heading, text and card metadata.
        result = index(docs(), rm, vector_store, batch_size=batch_size, cleanup="full", force_update=force,
                       source_id_key="card_id", key_encoder=lambda d: d.metadata["passage_id"])
        orphans = self.ids() - set(rm.list_keys())
        if orphans:
            log.warning("removing %d vectors left behind by an interrupted run", len(orphans))
            self.delete_ids(sorted(orphans))
        return {"added": result["num_added"] + result["num_updated"], "skipped": result["num_skipped"],
                "deleted": result["num_deleted"], "orphans_removed": len(orphans), "records_repaired": len(missing)}


def _delete_keys(rm: Any, keys: Sequence[str], batch: int = GET_PAGE) -> None:
    """Delete record-manager keys in batches (SQLite limits the parameters of one statement)."""
    keys = list(keys)
    for start in range(0, len(keys), batch):
        rm.delete_keys(keys[start:start + batch])
