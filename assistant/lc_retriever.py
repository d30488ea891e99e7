"""The hybrid retriever as a LangChain ``BaseRetriever``, for use in other LangChain pipelines.

    from assistant.lc_retriever import PeerEvidenceRetriever
    docs = PeerEvidenceRetriever.from_settings(k=5).invoke("Who should supervise peer workers?")
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from assistant.retrieval import HybridRetriever
from assistant.settings import Settings
from ingest.split import to_metadata


class PeerEvidenceRetriever(BaseRetriever):
    """Dense + BM25 retrieval over the evidence cards, fused by reciprocal rank."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: HybridRetriever
    k: int = Field(4, ge=1, le=100, description="Documents to return.")
    theme: str | None = Field(None, description="Only passages of this theme id.")

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kwargs: Any) -> PeerEvidenceRetriever:
        from assistant.chat import Assistant

        return cls(engine=Assistant(settings).retriever, **kwargs)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        k = int(kwargs.get("k", self.k))
        theme = kwargs.get("theme", self.theme)
        result = self.engine.retrieve(query, k=k, theme=theme, enumerate_all=False)
        docs = []
        for sp in result.passages[:k]:
            meta = {**to_metadata(sp.passage), "score": sp.score}
            docs.append(Document(id=sp.passage.id, page_content=sp.passage.text, metadata=meta))
        return docs
