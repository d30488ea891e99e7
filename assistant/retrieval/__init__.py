"""Retrieval stages: dense, lexical, fusion, named authors, enumeration, diversity; and the
``HybridRetriever`` that runs them in that order over a loaded ``PassageIndex``."""

from assistant.retrieval.hybrid import HybridRetriever, Mode, RetrievalResult
from assistant.retrieval.index import PassageIndex, StrategyMatch
from assistant.retrieval.stages import diversify, fuse, is_enumerative, mentioned_cards

__all__ = ["HybridRetriever", "Mode", "PassageIndex", "RetrievalResult", "StrategyMatch", "diversify", "fuse",
           "is_enumerative", "mentioned_cards"]
