"""Composers: turn retrieved evidence into an answer (grounded by default, optional LLM)."""

from assistant.compose.base import MARKER_RE, CitationBook, Composer, Composition, evidence_summary, markers
from assistant.compose.grounded import GroundedComposer

__all__ = ["MARKER_RE", "CitationBook", "Composer", "Composition", "GroundedComposer", "evidence_summary", "markers"]
