"""Index generations as a long-lived assistant sees them: which generation ingest last completed, and
a store opened afresh for a new one.

Every completed ``peer-assist ingest`` that changed the index writes a new generation (the manifest
and, in server mode, the collection's metadata). A running assistant compares it with the one it
loaded, cheaply, between requests (``Assistant._watch``).
"""

from __future__ import annotations

from typing import Any

from ingest import pipeline
from ingest.settings import IndexSettings
from ingest.store import EvidenceStore, open_client


def read_generation(settings: IndexSettings, store: Any | None = None) -> str | None:
    """The generation ingest last completed (None when there is no complete index): from the
    collection's metadata in server mode (pass the store), so replicas with their own index
    directories agree; from the index directory otherwise."""
    return pipeline.current_generation(settings.index_dir, store=store if settings.chroma_host else None)


def fresh_store(settings: IndexSettings) -> EvidenceStore:
    """A store that reads the index as it is on disk now. An embedded Chroma client keeps the vector
    segments it loaded (shared per path inside one process), so a reindex by another process is not
    seen through it: the shared-client cache is dropped first (clients already open keep working on
    what they loaded, so in-flight requests finish on the old generation). A server client always
    reads the server's current data."""
    if not settings.chroma_host:
        from chromadb.api.client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
    return EvidenceStore(settings, client=open_client(settings))
