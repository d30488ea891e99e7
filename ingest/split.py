"""Section-aware splitting: cards become passages that never cross a section boundary."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from ingest.text import split_sentences
from ingest.types import QUESTION_SECTION, Card, Passage


def card_meta(card: Card) -> dict[str, Any]:
    """The card metadata a passage carries, so citations need no second lookup."""
    meta: dict[str, Any] = {
        "title": card.title,
        "year": card.year,
        "authors": "; ".join(card.authors),
        "short_cite": card.short_cite,
        "kind": card.kind,
        "country": card.country,
        "design": card.design,
        "design_type": card.design_type,
        "review_inclusion": card.review_inclusion,
        "doi": card.doi or "",
        "url": card.url or "",
        "document_type": card.document_type or "",
        "published": card.published or "",
    }
    return meta


def _pieces(text: str, chunk_size: int, chunk_overlap: int) -> list[str]:
    """Cut a long section into pieces of whole sentences (never inside "et al." or "e.g."),
    consecutive pieces sharing up to ``chunk_overlap`` characters of whole sentences. Only a
    single sentence longer than ``chunk_size`` is cut by characters."""
    if len(text) <= chunk_size:
        return [text]
    # Sentence spans in the original text, so every piece is an exact substring of the section.
    spans: list[tuple[int, int]] = []
    pos = 0
    for sentence in split_sentences(text):
        start = text.find(sentence, pos)
        end = start + len(sentence)
        pos = end
        if len(sentence) <= chunk_size:
            spans.append((start, end))
            continue
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap,
                                                  separators=["; ", ", ", " ", ""], keep_separator="end",
                                                  add_start_index=True)
        for doc in splitter.create_documents([sentence]):
            piece_start = start + int(doc.metadata["start_index"])
            spans.append((piece_start, piece_start + len(doc.page_content)))
    pieces: list[str] = []
    current: list[tuple[int, int]] = []
    for span in spans:
        if current and span[1] - current[0][0] > chunk_size:
            pieces.append(text[current[0][0]:current[-1][1]])
            overlap: list[tuple[int, int]] = []
            for prev in reversed(current):
                if current[-1][1] - prev[0] > chunk_overlap or span[1] - prev[0] > chunk_size:
                    break
                overlap.insert(0, prev)
            current = overlap
        current.append(span)
    if current:
        pieces.append(text[current[0][0]:current[-1][1]])
    return [p.strip() for p in pieces if p.strip()]


def passage_id(card_id: str, heading: str, text: str, meta: dict[str, Any]) -> str:
    blob = json.dumps([card_id, heading, text, meta], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def split_card(card: Card, chunk_size: int = 800, chunk_overlap: int = 100) -> list[Passage]:
    """Split one card into passages; long sections are cut at paragraph or sentence ends."""
    if chunk_overlap >= chunk_size:
        raise ValueError(f"chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size})")
    meta = card_meta(card)
    passages: list[Passage] = []
    seen: set[tuple[str, str]] = set()
    for section in card.sections:
        for piece in _pieces(section.text, chunk_size, chunk_overlap):
            if (section.heading, piece) in seen:
                continue
            seen.add((section.heading, piece))
            passages.append(Passage(
                id=passage_id(card.id, section.heading, piece, meta),
                card_id=card.id,
                section=section.name,
                heading=section.heading,
                text=piece,
                theme=section.theme,
                strategy=section.strategy,
                strategy_title=section.title,
                ordinal=len(passages),
                meta=meta,
            ))
    by_heading = {section.heading: section for section in card.sections}
    for heading, question in card.questions:
        section = by_heading[heading]
        passages.append(Passage(
            id=passage_id(card.id, f"{QUESTION_SECTION}: {heading}", question, meta), card_id=card.id,
            section=QUESTION_SECTION, heading=heading, text=question, theme=section.theme,
            strategy=section.strategy, strategy_title=section.title, ordinal=len(passages), meta=meta,
        ))
    return passages


def split_corpus(cards: Iterable[Card], chunk_size: int = 800, chunk_overlap: int = 100) -> list[Passage]:
    out: list[Passage] = []
    for card in cards:
        out.extend(split_card(card, chunk_size, chunk_overlap))
    return out


def to_metadata(p: Passage) -> dict[str, str | int | float | bool]:
    """Flat, scalar metadata for the vector store (no None values)."""
    data: dict[str, str | int | float | bool] = {
        "passage_id": p.id, "card_id": p.card_id, "section": p.section, "heading": p.heading,
        "text": p.text, "theme": p.theme or "", "strategy": p.strategy or "",
        "strategy_title": p.strategy_title or "", "ordinal": p.ordinal,
    }
    for key, value in p.meta.items():
        data[key] = value if value is not None else ""
    return data


def from_metadata(meta: dict[str, Any]) -> Passage:
    """Rebuild a Passage from vector-store metadata."""
    card_keys = ("title", "year", "authors", "short_cite", "kind", "country", "design", "design_type",
                 "review_inclusion", "doi", "url", "document_type", "published")
    return Passage(
        id=str(meta["passage_id"]), card_id=str(meta["card_id"]), section=str(meta["section"]),
        heading=str(meta["heading"]), text=str(meta["text"]), theme=meta.get("theme") or None,
        strategy=meta.get("strategy") or None, strategy_title=meta.get("strategy_title") or None,
        ordinal=int(meta.get("ordinal", 0)), meta={k: meta.get(k) for k in card_keys},
    )
