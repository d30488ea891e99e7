"""The grounded composer: deterministic, offline, and every sentence of evidence is card text.

Retrieved passages are grouped by theme and strategy (themes in the order of the review's model:
leadership first). For each strategy the card sentences that best match the question are quoted,
each with a citation marker; an evidence line says how many sources, of which designs and from
where; a short "what the evidence does not say" follows when coverage is thin. Everything that is
not card text is a fixed connective template.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from assistant.retrieve import tokenize
from assistant.types import Citation, ScoredPassage, StrategyItem
from ingest.cards import Taxonomy
from ingest.split import split_sentences

DESCRIPTIVE_DESIGNS = {"qualitative", "programme evaluation", "framework", "narrative review", "scoping review"}
MAX_GROUPS = 5
MAX_PER_GROUP = 3


@dataclass
class Composition:
    answer: str
    strategies: list[StrategyItem]
    citations: list[Citation]
    evidence: dict[str, object]
    thin: bool = False
    notes: list[str] = field(default_factory=list)


class CitationBook:
    """Numbers citations in order of first use; one number per (passage, quote)."""

    def __init__(self) -> None:
        self.items: list[Citation] = []
        self._index: dict[tuple[str, str], int] = {}

    def cite(self, sp: ScoredPassage, quote: str) -> int:
        p = sp.passage
        key = (p.id, quote)
        if key not in self._index:
            n = len(self.items) + 1
            self._index[key] = n
            meta = p.meta
            self.items.append(Citation(
                n=n, card_id=p.card_id, doi=(meta.get("doi") or None), title=str(meta.get("title") or ""),
                year=int(meta.get("year") or 0), section=p.heading, quote=quote, passage_id=p.id,
                authors=str(meta.get("authors") or ""), country=str(meta.get("country") or ""),
                design=str(meta.get("design") or ""),
                link=(f"https://doi.org/{meta['doi']}" if meta.get("doi") else (meta.get("url") or None)),
            ))
        return self._index[key]


_ANAPHOR = re.compile(r"^(this|these|that|those|such|it|its|they|their|there|here|both|the same|in this|in these|"
                      r"in that|on this|for this|from this|this is|as a result|however|but|also)\b", re.IGNORECASE)


def best_sentences(text: str, q_tokens: set[str], idf: Callable[[str], float], n: int = 1) -> list[str]:
    """The ``n`` sentences of ``text`` that share the most (IDF-weighted) words with the question,
    in their original order. Ties favour earlier sentences, which usually state the strategy. A
    chosen sentence that leans on the one before ("This ...", "Such posts ...") is quoted together
    with it, so every quote stands on its own; quotes are always exact substrings of ``text``."""
    sentences = split_sentences(text)
    if len(sentences) <= n:
        return sentences
    scored = []
    for i, sent in enumerate(sentences):
        overlap = sum(idf(t) for t in set(tokenize(sent)) & q_tokens)
        scored.append((overlap + (0.5 if i == 0 else 0.0) - 0.01 * i, i))
    keep = sorted(i for _, i in sorted(scored, reverse=True)[:n])
    spans, pos = [], 0
    for sent in sentences:
        start = text.find(sent, pos)
        spans.append((start, start + len(sent)))
        pos = start + len(sent)
    out = []
    for i in keep:
        start = spans[i - 1][0] if i > 0 and _ANAPHOR.match(sentences[i]) and (i - 1) not in keep else spans[i][0]
        out.append(text[start:spans[i][1]])
    return out


def evidence_summary(passages: Iterable[ScoredPassage]) -> dict[str, object]:
    cards: dict[str, dict[str, object]] = {}
    for sp in passages:
        cards.setdefault(sp.passage.card_id, sp.passage.meta)
    designs = Counter(str(m.get("design_type") or "unknown") for m in cards.values())
    countries = Counter(str(m.get("country") or "unknown") for m in cards.values())
    return {"n_sources": len(cards), "designs": dict(designs.most_common()), "countries": dict(countries.most_common())}


def _evidence_line(ev: dict[str, object]) -> str:
    n = int(ev["n_sources"])  # type: ignore[arg-type]
    designs = ", ".join(f"{c} {d}" for d, c in ev["designs"].items())  # type: ignore[union-attr]
    countries = ", ".join(ev["countries"])  # type: ignore[arg-type]
    return f"*Evidence: {n} source{'s' if n != 1 else ''} ({designs}); {countries}.*"


def _gaps(ev: dict[str, object], group_sizes: Sequence[int]) -> list[str]:
    """Template sentences on what the evidence does not say."""
    notes = []
    n = int(ev["n_sources"])  # type: ignore[arg-type]
    designs = set(ev["designs"])  # type: ignore[arg-type]
    if n == 1:
        notes.append("Only one source in this evidence base speaks to this, so treat it as a lead rather than a "
                     "settled finding.")
    elif group_sizes and max(group_sizes) == 1:
        notes.append("Each strategy here rests on a single source.")
    if designs and designs <= DESCRIPTIVE_DESIGNS:
        notes.append("The sources are qualitative or descriptive: they report what organisations did and what "
                     "people found helpful, not measured effects of these strategies.")
    if len(ev["countries"]) == 1 and n > 1:  # type: ignore[arg-type]
        notes.append(f"All of it comes from {next(iter(ev['countries']))}, so check how well it fits your "  # type: ignore[call-overload]
                     "own service system.")
    return notes


_ASKS_FINDINGS = re.compile(r"\b(find|finds|found|findings?|show|shows|showed|shown|conclud\w*|report(s|ed)?|"
                            r"say|says|said|tell us|learn|result\w*|evidence (on|about|for))\b", re.IGNORECASE)


def compose_grounded(question: str, passages: Sequence[ScoredPassage], taxonomy: Taxonomy,
                     idf: Callable[[str], float], *, enumerated_cards: Sequence[str] = (),
                     mentioned_cards: Sequence[str] = ()) -> Composition:
    """Build the answer from retrieved passages only; every quote is an exact card sentence."""
    q_tokens = set(tokenize(question))
    book = CitationBook()
    if enumerated_cards:
        return _compose_enumeration(passages, taxonomy, q_tokens, idf, book)

    groups: dict[tuple[str, str], list[ScoredPassage]] = {}
    others: list[ScoredPassage] = []
    for sp in passages:
        p = sp.passage
        if p.section == "strategy" and p.theme in taxonomy.themes and p.strategy:
            groups.setdefault((p.theme, p.strategy), []).append(sp)
        elif p.section == "summary":
            others.append(sp)
    # Best groups first by relevance, then shown in the order of the review's model.
    ranked = sorted(groups.items(), key=lambda kv: -max(sp.score for sp in kv[1]))[:MAX_GROUPS]
    theme_order = {t: i for i, t in enumerate(taxonomy.order)}
    ranked.sort(key=lambda kv: (theme_order[kv[0][0]], -max(sp.score for sp in kv[1])))

    strategies: list[StrategyItem] = []
    lines: list[str] = []
    used: list[ScoredPassage] = []
    group_sizes: list[int] = []

    # Study summaries come first when the question asks what research found ("What did the research
    # with psychiatrists find?") or names a study, and are the answer when no strategy matched.
    top_ids = {sp.passage.id for sp in passages[:3]}
    if not groups:
        findings = others[:MAX_PER_GROUP]
    elif mentioned_cards or _ASKS_FINDINGS.search(question):
        findings = [sp for sp in others if sp.passage.id in top_ids or sp.passage.card_id in mentioned_cards][:2]
    else:
        findings = []
    if findings:
        parts, nums = [], []
        for sp in findings:
            for quote in best_sentences(sp.passage.text, q_tokens, idf, n=2 if len(findings) == 1 else 1):
                n = book.cite(sp, quote)
                nums.append(n)
                parts.append(f"{quote} [{n}]")
            used.append(sp)
        text = " ".join(parts)
        strategies.append(StrategyItem(theme="", title="What the studies found", text=text, citations=nums))
        lines.append("\n#### What the studies found")
        lines.append(text)
        lines.append(_evidence_line(evidence_summary(findings)))
        group_sizes.append(len(findings))

    current_theme = None
    for (theme, strategy), members in ranked:
        members = members[:MAX_PER_GROUP]
        parts, nums = [], []
        seen_quotes: set[str] = set()
        for sp in members:
            for quote in best_sentences(sp.passage.text, q_tokens, idf):
                if quote in seen_quotes:
                    continue
                seen_quotes.add(quote)
                n = book.cite(sp, quote)
                nums.append(n)
                parts.append(f"{quote} [{n}]")
        if not parts:
            continue
        used.extend(members)
        group_sizes.append(len({sp.passage.card_id for sp in members}))
        title = taxonomy.strategy_title(theme, strategy)
        text = " ".join(parts)
        strategies.append(StrategyItem(theme=theme, title=title, text=text, citations=nums))
        if theme != current_theme:
            lines.append(f"\n#### {taxonomy.themes[theme].title}")
            current_theme = theme
        lines.append(f"**{title}.** {text}")
        lines.append(_evidence_line(evidence_summary(members)))

    ev = evidence_summary(used)
    notes = _gaps(ev, group_sizes)
    n_src = int(ev["n_sources"])  # type: ignore[arg-type]
    n_strat = sum(1 for s in strategies if s.theme)
    if n_strat:
        head = (f"The evidence base reports {n_strat} relevant strateg{'y' if n_strat == 1 else 'ies'} from {n_src} "
                f"source{'s' if n_src != 1 else ''}, grouped by theme (leadership first, as in the model of "
                "Zeng & McNamara 2021):")
    else:
        head = f"What {n_src} source{'s' if n_src != 1 else ''} in the evidence base report:"
    body = [head, *lines]
    if notes:
        body.append("\n**What the evidence does not say.** " + " ".join(notes))
    return Composition("\n".join(body).strip(), strategies, book.items, ev, thin=bool(notes), notes=notes)


def _compose_enumeration(passages: Sequence[ScoredPassage], taxonomy: Taxonomy, q_tokens: set[str],
                         idf: Callable[[str], float], book: CitationBook) -> Composition:
    """'Which studies looked at X?': every card with a strategy on X, one quoted sentence each."""
    by_strategy: dict[tuple[str, str], list[ScoredPassage]] = {}
    for sp in passages:
        p = sp.passage
        if p.theme and p.strategy:
            by_strategy.setdefault((p.theme, p.strategy), []).append(sp)
    strategies: list[StrategyItem] = []
    lines: list[str] = []
    for (theme, strategy), members in by_strategy.items():
        title = taxonomy.strategy_title(theme, strategy)
        items, nums = [], []
        for sp in sorted(members, key=lambda s: (-int(s.passage.meta.get("year") or 0), s.passage.card_id)):
            quote = best_sentences(sp.passage.text, q_tokens, idf)[0]
            n = book.cite(sp, quote)
            nums.append(n)
            m = sp.passage.meta
            items.append(f"- **{m.get('short_cite')}**, {m.get('country')}, {m.get('design_type')}: {quote} [{n}]")
        lines.append(f"\n#### {title} ({taxonomy.themes[theme].title}): {len(members)} "
                     f"source{'s' if len(members) != 1 else ''}")
        lines.extend(items)
        strategies.append(StrategyItem(theme=theme, title=title, text="\n".join(items), citations=nums))
    ev = evidence_summary(passages)
    n_src = int(ev["n_sources"])  # type: ignore[arg-type]
    head = f"{n_src} source{'s' if n_src != 1 else ''} in the evidence base report a strategy on this:"
    return Composition("\n".join([head, *lines]).strip(), strategies, book.items, ev)


_MARKER = re.compile(r"\[(\d+)\]")


def markers(text: str) -> list[int]:
    """Every citation number used in ``text``."""
    return [int(m) for m in _MARKER.findall(text)]
