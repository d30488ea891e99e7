"""The grounded composer: deterministic, offline, and every sentence of evidence is card text.

Retrieved passages are grouped by theme and strategy (themes in the order of the review's model:
leadership first). For each strategy the card sentences that best match the question are quoted,
each with a citation marker; an evidence line says how many sources, of which designs and from
where; a short "what the evidence does not say" follows when coverage is thin. Everything that is
not card text is a fixed connective template.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from assistant.compose.base import CitationBook, Composition, evidence_summary
from assistant.compose.sentences import best_sentences
from assistant.retrieval import RetrievalResult
from assistant.settings import ComposeSettings
from assistant.types import StrategyItem
from ingest.taxonomy import Taxonomy
from ingest.text import Tokenizer
from ingest.types import ScoredPassage
from ingest.vocabulary import Vocabulary

DESCRIPTIVE_DESIGNS = {"qualitative", "programme evaluation", "framework", "narrative review", "scoping review"}


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


class GroundedComposer:
    """Quotes card sentences under taxonomy strategies; see the module docstring."""

    def __init__(self, settings: ComposeSettings, taxonomy: Taxonomy, vocabulary: Vocabulary,
                 idf: Callable[[str], float]) -> None:
        self.settings = settings
        self.taxonomy = taxonomy
        self.tokenize = vocabulary.tokenizer
        self.asks_findings = re.compile(vocabulary.cues.asks_findings, re.IGNORECASE)
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
        taxonomy, s = self.taxonomy, self.settings
        groups: dict[tuple[str, str], list[ScoredPassage]] = {}
        others: list[ScoredPassage] = []
        for sp in passages:
            p = sp.passage
            if p.section == "strategy" and p.theme in taxonomy.themes and p.strategy:
                groups.setdefault((p.theme, p.strategy), []).append(sp)
            elif p.section == "summary":
                others.append(sp)
        # Best groups first by relevance, then shown in the order of the review's model.
        ranked = sorted(groups.items(), key=lambda kv: -max(sp.score for sp in kv[1]))[:s.max_groups]
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
            findings = others[:s.max_per_group]
        elif mentioned_cards or self.asks_findings.search(question):
            findings = [sp for sp in others if sp.passage.id in top_ids or sp.passage.card_id in mentioned_cards][:s.max_findings]
        else:
            findings = []
        if findings:
            parts, nums = [], []
            for sp in findings:
                for quote in self._best(sp.passage.text, q_tokens, n=2 if len(findings) == 1 else 1):
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
            members = members[:s.max_per_group]
            parts, nums = [], []
            seen_quotes: set[str] = set()
            for sp in members:
                for quote in self._best(sp.passage.text, q_tokens):
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
        n_src = int(ev["n_sources"])  # type: ignore[arg-type]
        head = f"{n_src} source{'s' if n_src != 1 else ''} in the evidence base report a strategy on this:"
        return Composition("\n".join([head, *lines]).strip(), strategies, book.items, ev)
