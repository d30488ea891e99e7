"""The grounded composer: deterministic, offline, and every sentence of evidence is card text.

Retrieved passages are grouped by theme and strategy (themes in the order of the review's model:
leadership first). For each strategy the card sentences that best match the question are quoted,
each with a citation marker; an evidence line says how many sources, of which designs and from
where; a short "what the evidence does not say" follows when coverage is thin. Everything that is
not card text is a fixed connective template.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

from assistant.compose.base import CitationBook, Composition, evidence_summary
from assistant.compose.sentences import best_sentences
from assistant.retrieval import RetrievalResult
from assistant.settings import ComposeSettings
from assistant.types import StrategyItem
from ingest.taxonomy import Taxonomy
from ingest.types import ScoredPassage
from ingest.vocabulary import Vocabulary


def is_guidance(meta: dict[str, object]) -> bool:
    return meta.get("kind") == "guidance"


def source_counts(passages: Iterable[ScoredPassage]) -> tuple[int, int]:
    """(research sources, guidance documents) among the cards of ``passages``."""
    kinds = {sp.passage.card_id: is_guidance(sp.passage.meta) for sp in passages}
    return sum(not g for g in kinds.values()), sum(kinds.values())


def count_phrase(n_research: int, n_guidance: int) -> str:
    """ "2 studies, 1 practice guideline" (research and guidance are always counted apart)."""
    parts = []
    if n_research:
        parts.append(f"{n_research} stud{'y' if n_research == 1 else 'ies'}")
    if n_guidance:
        parts.append(f"{n_guidance} practice guideline{'s' if n_guidance != 1 else ''}")
    return ", ".join(parts)


def _evidence_line(members: Sequence[ScoredPassage]) -> str:
    research = [sp for sp in members if not is_guidance(sp.passage.meta)]
    guidance = [sp for sp in members if is_guidance(sp.passage.meta)]
    parts = []
    if research:
        ev = evidence_summary(research)
        n = ev["n_sources"]
        designs = ", ".join(f"{c} {d}" for d, c in ev["designs"].items())
        parts.append(f"{n} research source{'s' if n != 1 else ''} ({designs})")
    if guidance:
        n = len({sp.passage.card_id for sp in guidance})
        parts.append(f"{n} practice guideline{'s' if n != 1 else ''} (guidance, not research findings)")
    countries = ", ".join(evidence_summary(members)["countries"])
    return f"*Evidence: {'; '.join(parts)}; {countries}.*"


def _thin_notes(research: Sequence[ScoredPassage], group_sizes: Sequence[int],
                descriptive: frozenset[str]) -> list[str]:
    """Template sentences on how strong the research behind the answer is."""
    notes = []
    ev = evidence_summary(research)
    n = int(ev["n_sources"])
    designs = set(ev["designs"])
    if n == 0:
        notes.append("No research study in this evidence base speaks to this; what is shown is practice guidance.")
    elif n == 1:
        notes.append("Only one research source in this evidence base speaks to this, so treat it as a lead rather "
                     "than a settled finding.")
    elif group_sizes and max(group_sizes) == 1:
        notes.append("Each strategy here rests on a single source.")
    if designs and designs <= descriptive:
        notes.append("The research is qualitative or descriptive: it reports what organisations did and what "
                     "people found helpful, not measured effects of these strategies.")
    if len(ev["countries"]) == 1 and n > 1:
        notes.append(f"All of it comes from {next(iter(ev['countries']))}, so check how well it fits your "
                     "own service system.")
    return notes


def _markers(nums: Sequence[int]) -> str:
    return "".join(f"[{n}]" for n in nums)


class GroundedComposer:
    """Quotes card sentences under taxonomy strategies; see the module docstring."""

    def __init__(self, settings: ComposeSettings, taxonomy: Taxonomy, vocabulary: Vocabulary,
                 idf: Callable[[str], float]) -> None:
        self.settings = settings
        self.taxonomy = taxonomy
        self.tokenize = vocabulary.tokenizer
        self.asks_findings = re.compile(vocabulary.cues.asks_findings, re.IGNORECASE)
        self.descriptive = vocabulary.descriptive_designs
        self.idf = idf

    def _best(self, text: str, q_tokens: set[str], n: int = 1) -> list[str]:
        return best_sentences(text, q_tokens, self.idf, self.tokenize, n, first_bonus=self.settings.first_sentence_bonus,
                              position_penalty=self.settings.position_penalty)

    def compose(self, question: str, result: RetrievalResult) -> Composition:
        """Build the answer from retrieved passages only; every quote is an exact card sentence."""
        q_tokens = set(self.tokenize(question))
        book = CitationBook()
        if result.enumerated_cards:
            return self._enumeration(result.passages, q_tokens, book)
        return self._strategies(question, result.passages, q_tokens, book, result.mentioned_cards)

    def _strategies(self, question: str, passages: Sequence[ScoredPassage], q_tokens: set[str], book: CitationBook,
                    mentioned_cards: Sequence[str]) -> Composition:
        """Bottom line first (the strategies that answer, each with its markers and how much evidence
        is behind it), then the quoted evidence under each strategy, grouped by theme in the
        review's order, then how strong the evidence is."""
        taxonomy, s = self.taxonomy, self.settings
        groups: dict[tuple[str, str | None], list[ScoredPassage]] = {}
        summaries: list[ScoredPassage] = []
        for sp in passages:
            p = sp.passage
            if p.section == "strategy" and p.theme in taxonomy.themes:
                groups.setdefault((p.theme, p.strategy), []).append(sp)
            elif p.section == "summary":
                summaries.append(sp)
        ranked = sorted(groups.items(), key=lambda kv: -max(sp.score for sp in kv[1]))[:s.max_groups]
        theme_order = {t: i for i, t in enumerate(taxonomy.order)}
        ranked.sort(key=lambda kv: (theme_order[kv[0][0]], -max(sp.score for sp in kv[1])))
        # A summary is quoted when the question asks what studies found or names one, or when no
        # strategy section answers; otherwise a card is cited for what it says about a strategy.
        asks = bool(mentioned_cards) or bool(self.asks_findings.search(question))
        findings = [sp for sp in summaries if asks or not ranked]
        findings = findings[:s.max_findings if ranked else s.max_per_group]

        strategies: list[StrategyItem] = []
        sections: list[str] = []
        used: list[ScoredPassage] = []
        bottom: list[str] = []
        group_sizes: list[int] = []

        def quoted(members: Sequence[ScoredPassage], n_sentences: int = 1) -> tuple[str, list[int]]:
            parts, nums, seen = [], [], set()
            for sp in members:
                for quote in self._best(sp.passage.text, q_tokens, n=n_sentences):
                    if quote in seen:
                        continue
                    seen.add(quote)
                    n = book.cite(sp, quote)
                    nums.append(n)
                    label = " (practice guidance)" if is_guidance(sp.passage.meta) else ""
                    parts.append(f"{quote} [{n}]{label}")
            return " ".join(parts), nums

        if findings and (asks or not ranked):
            text, nums = quoted(findings, 2 if len(findings) == 1 else 1)
            strategies.append(StrategyItem(theme="", title="What the studies found", text=text, citations=nums))
            sections += ["\n#### What the studies found", text, _evidence_line(findings)]
            bottom.append(f"what the studies found {_markers(nums)} ({count_phrase(*source_counts(findings))})")
            used += findings
            group_sizes.append(len(findings))
            findings = []

        current_theme = None
        for (theme, strategy), members in ranked:
            members = members[:s.max_per_group]
            text, nums = quoted(members)
            if not nums:
                continue
            used += members
            group_sizes.append(len({sp.passage.card_id for sp in members}))
            title = taxonomy.strategy_title(theme, strategy) if strategy else taxonomy.themes[theme].title
            strategies.append(StrategyItem(theme=theme, title=title, text=text, citations=nums))
            if theme != current_theme:
                sections.append(f"\n#### {taxonomy.themes[theme].title}")
                current_theme = theme
            sections.append(f"**{title}.** {text}")
            sections.append(_evidence_line(members))
            bottom.append(f"**{title}** {_markers(nums)} ({count_phrase(*source_counts(members))})")

        research = [sp for sp in used if not is_guidance(sp.passage.meta)]
        notes = _thin_notes(research, group_sizes, self.descriptive)
        n_research, n_guidance = source_counts(used)
        n_strat = sum(1 for st in strategies if st.theme)
        what = (f"{n_strat} strateg{'y' if n_strat == 1 else 'ies'}" if n_strat else "these findings")
        head = f"**Bottom line.** The evidence here ({count_phrase(n_research, n_guidance)}) points to {what}: "
        body = [head + "; ".join(bottom) + ".", *sections]
        if notes:
            body.append("\n**How strong the evidence is.** " + " ".join(notes))
        return Composition("\n".join(body).strip(), strategies, book.items, evidence_summary(used), thin=bool(notes),
                           notes=notes)

    def _enumeration(self, passages: Sequence[ScoredPassage], q_tokens: set[str], book: CitationBook) -> Composition:
        taxonomy = self.taxonomy
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
                quote = self._best(sp.passage.text, q_tokens)[0]
                n = book.cite(sp, quote)
                nums.append(n)
                m = sp.passage.meta
                items.append(f"- **{m.get('short_cite')}**, {m.get('country')}, {m.get('design_type')}: {quote} [{n}]")
            lines.append(f"\n#### {title} ({taxonomy.themes[theme].title}): {len(members)} "
                         f"source{'s' if len(members) != 1 else ''}")
            lines.extend(items)
            strategies.append(StrategyItem(theme=theme, title=title, text="\n".join(items), citations=nums))
        ev = evidence_summary(passages)
        n_src = int(ev["n_sources"])
        head = f"{n_src} source{'s' if n_src != 1 else ''} in the evidence base report a strategy on this:"
        return Composition("\n".join([head, *lines]).strip(), strategies, book.items, ev)
