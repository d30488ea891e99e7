"""Render an Answer as terminal text or as Markdown with a references list."""

from __future__ import annotations

import html
import re

from assistant.types import Answer, Citation
from ingest.types import card_link


def reference_line(c: Citation) -> str:
    """One reference: the card's own short citation (one rule for names), title, link, section."""
    link = card_link(c.doi, None) or c.link or ""
    cite = c.short_cite or f"{c.card_id} ({c.year})"
    return f"[{c.n}] {cite}. {c.title}. {link} — {c.card_id}, section “{c.section}”".strip()


def answer_to_markdown(answer: Answer) -> str:
    """The answer as a Markdown document: question, answer, references with the quoted passages."""
    # The question is user text: escape it so a Markdown viewer never renders it as HTML.
    question = re.sub(r"([\\`*_{}\[\]<>#|])", r"\\\1", html.escape(answer.question, quote=False))
    out = [f"# {question}", ""]
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


def answer_to_text(answer: Answer) -> str:
    """Readable terminal text: the answer, then a numbered sources list."""
    text = re.sub(r"^#### (.*)$", lambda m: m.group(1).upper(), answer.answer, flags=re.MULTILINE)
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
    return "\n".join(lines)
