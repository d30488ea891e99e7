"""The LangChain retriever passes langchain-tests' standard RetrieversIntegrationTests."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from assistant.lc_retriever import PeerEvidenceRetriever


@pytest.mark.integration
class TestPeerEvidenceRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _engine(self, real_assistant: Any) -> None:
        type(self)._engine_instance = real_assistant.retriever

    @property
    def retriever_constructor(self) -> type[PeerEvidenceRetriever]:
        return PeerEvidenceRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"engine": type(self)._engine_instance}

    @property
    def retriever_query_example(self) -> str:
        return "How should peer workers be supervised?"


@pytest.mark.integration
def test_theme_filter_and_metadata(real_assistant: Any) -> None:
    retriever = PeerEvidenceRetriever(engine=real_assistant.retriever, k=5, theme="leadership")
    docs = retriever.invoke("What can senior managers do?")
    assert len(docs) == 5
    assert {d.metadata["theme"] for d in docs} == {"leadership"}
    assert all(d.metadata["card_id"] and d.id for d in docs)
