"""reference_line (assistant/render.py): the one way a reference is written (kept small: the UI and
render are being reworked elsewhere)."""

from __future__ import annotations

from assistant.render import reference_line
from assistant.types import Citation


def citation(**changes: object) -> Citation:
    fields: dict[str, object] = {
        "n": 2, "card_id": "gates-2007", "doi": "10.1007/s10488-006-0109-4", "year": 2007,
        "title": "Developing strategies to integrate peer providers", "section": "Summary", "quote": "...",
        "short_cite": "Gates & Akabas (2007)", "link": "https://doi.org/10.1007/s10488-006-0109-4"}
    fields.update(changes)
    return Citation(**fields)  # type: ignore[arg-type]


def test_a_reference_with_a_doi() -> None:
    assert reference_line(citation()) == ("[2] Gates & Akabas (2007). Developing strategies to integrate peer "
                                          "providers. https://doi.org/10.1007/s10488-006-0109-4 — gates-2007, "
                                          "section “Summary”")


def test_without_a_doi_the_url_is_the_link() -> None:
    line = reference_line(citation(doi=None, link="https://example.org/guide"))
    assert "https://example.org/guide — gates-2007" in line and "doi.org" not in line


def test_without_a_short_cite_the_card_id_and_year_stand_in() -> None:
    assert reference_line(citation(short_cite="")).startswith("[2] gates-2007 (2007). Developing")
