"""Every way an answer or a card is shown: terminal text (CLI), Markdown for the UI, the Markdown download.

One module owns the rules, so the three never drift apart:

- names: a citation names its card by the card's own short citation (``Card.short_cite``:
  "Gates & Akabas (2007)", "Chinman et al. (2008)"); the card viewer lists every author;
- links: through :func:`ingest.types.card_link` (the DOI via doi.org, else the card's URL), and only
  http(s) addresses become Markdown links;
- escaping: user text is inert (Markdown punctuation backslash-escaped, then HTML-escaped); card and
  citation metadata is HTML-escaped; the Chatbot and Markdown components also sanitise.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from assistant.types import Answer, Citation
from ingest.types import card_link

if TYPE_CHECKING:  # pragma: no cover
    from ingest.types import Card

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~=$:])")
_SAFE_URL = re.compile(r"^https?://[^\s\"'<>\\`]+$")


# ------------------------------------------------------------------------------------------------
# Escaping


def escape_user_text(text: str) -> str:
    """User text as inert Markdown: Markdown punctuation backslash-escaped, then HTML-escaped.

    ``<script>x</script>`` shows as that literal text; ``**bold**`` shows with its asterisks.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return html.escape(text, quote=True)


def escape_html(text: Any) -> str:
    """Card or citation metadata inside Markdown: no raw HTML (Markdown formatting is left alone)."""
    return html.escape(str(text or ""), quote=False)


# ------------------------------------------------------------------------------------------------
# Names and links


def cite_name(c: Citation) -> str:
    """How a citation names its source: the card's short citation, else its id and year."""
    return c.short_cite or f"{c.card_id} ({c.year})"


GUIDANCE_LABEL = "practice guidance, not research"


def kind_note(kind: str) -> str:
    """" (practice guidance, not research)" for a guidance card: a manager always sees which is which."""
    return f" ({GUIDANCE_LABEL})" if kind == "guidance" else ""


def citation_link(c: Citation) -> str | None:
    """The DOI through doi.org, else the card's URL (``ingest.types.card_link``)."""
    return card_link(c.doi, c.link)


def link_markdown(label: str, url: str | None) -> str:
    """``[label](url)`` for an http(s) address; anything else shows as the label alone (escaped)."""
    if not url or not _SAFE_URL.match(url):
        return escape_html(label)
    if url.count("(") != url.count(")"):  # an unbalanced parenthesis would end the link early
        url = url.replace("(", "%28").replace(")", "%29")
    return f"[{escape_html(label)}]({url})"


def citation_link_markdown(c: Citation) -> str:
    """The link line of a source: ``[doi:10...](https://doi.org/10...)`` or ``[https://...](https://...)``."""
    url = citation_link(c)
    if not url:
        return ""
    return link_markdown(f"doi:{c.doi}" if c.doi else url, url)


def card_choice_label(card: Card, numbers: Iterable[int] = ()) -> str:
    """A card in the picker: ``[1, 3] Gates & Akabas (2007) — Title`` (the numbers that cite it first)."""
    ns = ", ".join(str(n) for n in numbers)
    return f"{f'[{ns}] ' if ns else ''}{card.short_cite} — {card.title}"


def section_label(section: str, theme_titles: dict[str, str]) -> str:
    """``leadership/peer-leadership-positions: Create ...`` → ``Leadership championing: Create ...``."""
    m = re.match(r"^([a-z-]+)/[a-z0-9-]+:\s*(.+)$", section or "")
    if m and m.group(1) in theme_titles:
        return f"{theme_titles[m.group(1)]}: {m.group(2)}"
    return section or ""


# ------------------------------------------------------------------------------------------------
# Terminal text and the Markdown download


def reference_line(c: Citation) -> str:
    """One reference: short citation, title, link, card and section (CLI text and the download)."""
    link = citation_link(c) or ""
    return (f"[{c.n}] {cite_name(c)}{kind_note(c.kind)}. {c.title}. {link} — {c.card_id}, "
            f"section “{c.section}”").strip()


def answer_to_markdown(answer: Answer) -> str:
    """The answer as a Markdown document: question, answer, references with the quoted passages."""
    out = [f"# {escape_user_text(answer.question)}", ""]
    if answer.status == "crisis":
        out.append("> **Crisis message**")
    elif answer.status == "abstained":
        out.append("> **Not covered by the evidence base**")
    out += [answer.answer, ""]
    if answer.citations:
        out += ["## References", ""]
        for c in answer.citations:
            out.append(f"{reference_line(c)}  ")
            out.append(f"  > {c.quote}")
            out.append("")
    return "\n".join(out).strip() + "\n"


def answer_to_text(answer: Answer, map_context: list[str] | None = None, shown: str = "") -> str:
    """Readable terminal text: the answer, a numbered sources list, then (when given) where the answer's
    strategies sit on the evidence map. ``shown``: the start of the answer already printed while it
    streamed, left out here."""
    body = answer.answer[len(shown):] if shown and answer.answer.startswith(shown) else answer.answer
    text = re.sub(r"^#### (.*)$", lambda m: m.group(1).upper(), body, flags=re.MULTILINE)
    text = text.replace("**", "")
    text = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"\1", text)
    lines = []
    if answer.status == "crisis":
        lines.append("!! CRISIS — please read this first")
    elif answer.status == "abstained":
        lines.append("(Not covered by the evidence base)")
    if answer.standalone_question and answer.standalone_question != answer.question:
        lines.append(f"(Understood as: {answer.standalone_question})")
    lines.append(text)
    if answer.citations:
        lines.append("\nSources:")
        for c in answer.citations:
            lines.append("  " + reference_line(c))
    if map_context:
        lines.append("\nOn the evidence map:")
        lines += [f"  - {line}" for line in map_context]
    return "\n".join(lines)


def map_context_markdown(map_context: list[str]) -> str:
    """The evidence-map lines under an answer's sources (UI)."""
    if not map_context:
        return ""
    return "**On the evidence map**  \n" + "  \n".join(f"· {escape_html(line)}" for line in map_context)


# ------------------------------------------------------------------------------------------------
# The chat UI's Markdown


def chat_markdown(answer: Answer) -> str:
    """The assistant's chat message: the answer, a note when a follow-up was rewritten, a short reference list
    (so the Chatbot's copy button copies a self-contained answer)."""
    parts = []
    if answer.standalone_question and answer.standalone_question != answer.question:
        parts.append(f"_Follow-up, read as: “{escape_user_text(answer.standalone_question)}”_")
    parts.append(answer.answer)
    if answer.citations:
        refs = [f"[{c.n}] {escape_html(cite_name(c))}{kind_note(c.kind)}, *{escape_html(c.title)}*"
                for c in answer.citations]
        parts.append("**Sources**  \n" + "  \n".join(refs))
    return "\n\n".join(parts)


def sources_markdown(answer: Answer, theme_titles: dict[str, str]) -> str:
    """The sources panel for one answer: each citation with its card details and quoted passage."""
    if answer.status == "crisis":
        return "_No evidence was searched for this message: it was routed to crisis information._"
    if not answer.citations:
        if answer.status == "abstained" and answer.nearest_topics:
            topics = "\n".join(f"- {escape_html(t)}" for t in answer.nearest_topics)
            return f"_No sources: the evidence base does not cover this question._\n\nClosest covered topics:\n{topics}"
        return "_No sources for this answer._"
    ev = answer.evidence or {}
    designs = ", ".join(f"{n} {escape_html(d)}" for d, n in (ev.get("designs") or {}).items())
    out = [f"**{len(answer.citations)} citation(s) from {ev.get('n_sources', '?')} source(s)**"
           + (f" ({designs})" if designs else "")]
    for c in answer.citations:
        label = "**Practice guidance, not research**" if c.kind == "guidance" else ""
        meta = " · ".join([escape_html(x) for x in (cite_name(c), c.country, c.design) if x] + ([label] if label else []))
        lines = [f"**[{c.n}] {escape_html(c.title)}**  ", f"{meta}  "]
        link = citation_link_markdown(c)
        if link:
            lines.append(f"{link}  ")
        section = escape_html(section_label(c.section, theme_titles))
        lines.append(f"_Card `{escape_html(c.card_id)}`, section: {section}_")
        lines.append("")
        lines.append(f"> {escape_html(c.quote)}")
        out.append("\n".join(lines))
    return "\n\n".join(out)


def card_markdown(card: Card, theme_titles: dict[str, str]) -> str:
    """A whole evidence card as Markdown (every author, unlike a citation)."""
    authors = "; ".join(card.authors)
    lines = [f"### {escape_html(card.title)}", "",
             f"**{escape_html(authors)}** ({card.year}). *{escape_html(card.venue)}*.  "]
    if card.link:
        lines.append(f"**Link:** {link_markdown(card.link, card.link)}  ")
    lines.append(f"**Design:** {escape_html(card.design)}  ")
    lines.append(f"**Country:** {escape_html(card.country)} · **Setting:** {escape_html(card.setting)}  ")
    if card.participants:
        lines.append(f"**Participants:** {escape_html(card.participants)}  ")
    themes = ", ".join(escape_html(theme_titles.get(t, t)) for t in card.themes)
    lines.append(f"**Themes:** {themes}  ")
    if card.kind == "guidance":
        lines.append(f"**Practice guidance, not research:** {escape_html(card.document_type or 'guidance')}"
                     + (f", {escape_html(card.published)}" if card.published else "") + "  ")
    lines.append(f"**Kind:** {escape_html(card.kind)} · **In Zeng & McNamara (2021):** "
                 f"{escape_html(card.review_inclusion)} · **Card id:** `{escape_html(card.id)}`")
    for s in card.sections:
        if s.name == "strategy" and s.theme:
            heading = f"{theme_titles.get(s.theme, s.theme)}: {s.title or s.heading}"
        else:
            heading = s.heading.lstrip("#").strip() or s.name.title()
        lines += ["", f"#### {escape_html(heading)}", "", escape_html(s.text)]
    return "\n".join(lines)


def map_cell_markdown(cards: Iterable[Card], heading: str) -> str:
    """The cards of one evidence-map cell, one list item each: title, year, country, design, inclusion."""
    items = [f"- **{escape_html(card.title)}**  \n  {escape_html(card.short_cite)} · {card.year} · "
             f"{escape_html(card.country)} · {escape_html(card.design_type)} · in Zeng & McNamara (2021): "
             f"{escape_html(card.review_inclusion)}" for card in cards]
    return f"**{escape_html(heading)}**\n\n" + "\n".join(items)


def abstain_banner(answer: Answer) -> str:
    """The banner over an abstained answer, with up to three covered topics near the question."""
    text = "**Not covered by the evidence base.** The evidence in this assistant does not answer that question"
    if answer.nearest_topics:
        text += "; it does cover, for example: " + "; ".join(escape_html(t) for t in answer.nearest_topics[:3])
    return text + "."
