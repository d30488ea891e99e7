"""Hand-made passages for stage tests (no corpus, no index)."""

from __future__ import annotations

from typing import Any

from ingest.types import Passage, ScoredPassage


def passage(card_id: str, ordinal: int = 0, text: str = "Peer workers valued supervision.", *,
            theme: str | None = None, strategy: str | None = None, section: str | None = None,
            **meta: Any) -> Passage:
    """A passage of ``card_id``; a strategy passage when ``theme`` and ``strategy`` are given."""
    section = section or ("strategy" if strategy else "summary")
    heading = f"{theme}/{strategy}: A strategy" if strategy else section.title()
    year = int(card_id.rsplit("-", 1)[-1][:4]) if card_id[-4:].isdigit() else 2020
    card_meta = {"title": f"A study by {card_id}", "year": year, "authors": "Smith, A.", "country": "UK",
                 "design": "qualitative; interviews", "design_type": "qualitative", "kind": "study",
                 "short_cite": f"{card_id.split('-')[0].title()} ({year})", "doi": f"10.9999/{card_id}", "url": "", **meta}
    return Passage(id=f"{card_id}#{ordinal}", card_id=card_id, section=section, heading=heading, text=text,
                   theme=theme, strategy=strategy, strategy_title="A strategy" if strategy else None,
                   ordinal=ordinal, meta=card_meta)


def scored(p: Passage, score: float) -> ScoredPassage:
    return ScoredPassage(p, score)
