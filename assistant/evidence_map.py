"""The evidence map: the taxonomy's strategies (rows, in the review's order) against a property of the
cards (columns: kind, design, country or year band). Each cell is the set of cards with a strategy
section on that row's strategy in that column; an empty cell is a gap in the evidence.

Computed from the loaded corpus and taxonomy every time (never a hand-kept table), so a reindex or a
reload changes the map. Pure functions and frozen dataclasses; matplotlib is imported only by
:func:`write_png`.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # pragma: no cover
    from ingest.taxonomy import Taxonomy
    from ingest.types import Card

MapBy = Literal["kind", "design", "country", "year"]
BY_CHOICES: tuple[MapBy, ...] = ("kind", "design", "country", "year")

#: ``kind`` columns, in this order: the review, its studies, later research, guidance.
KIND_COLUMNS = ("review", "study", "later research", "guidance")
_KIND_OF = {"review": "review", "study": "study", "related-review": "later research",
            "related-study": "later research", "guidance": "guidance"}
#: ``year`` bands: (label, first year, last year).
YEAR_BANDS = (("<2010", -10_000, 2009), ("2010-2014", 2010, 2014), ("2015-2019", 2015, 2019),
              ("2020+", 2020, 10_000))
#: The row of a card section tagged with a theme but no strategy of the taxonomy (e.g. the review).
THEME_LEVEL = ""


def column_of(card: Card, by: MapBy) -> str:
    """The column a card falls in when the map's columns are ``by``."""
    if by == "kind":
        return _KIND_OF.get(card.kind, card.kind)
    if by == "design":
        return card.design_type or "unknown"
    if by == "country":
        return card.country.strip() or "unknown"
    if by == "year":
        return next(label for label, lo, hi in YEAR_BANDS if lo <= card.year <= hi)
    raise ValueError(f"unknown map columns {by!r}: use one of {', '.join(BY_CHOICES)}")


@dataclass(frozen=True)
class Row:
    """One row: a strategy of the taxonomy, or a theme's theme-level row (``strategy == ""``)."""

    theme: str
    strategy: str
    title: str
    theme_title: str

    @property
    def key(self) -> str:
        """``theme/strategy`` (``theme/`` for the theme-level row)."""
        return f"{self.theme}/{self.strategy}"

    @property
    def label(self) -> str:
        return f"{self.theme_title} (theme level)" if self.strategy == THEME_LEVEL else self.title


@dataclass(frozen=True)
class EvidenceMap:
    """Rows × columns, each cell the ids of the cards behind it (sorted)."""

    by: MapBy
    rows: tuple[Row, ...]
    columns: tuple[str, ...]
    cells: dict[tuple[str, str], tuple[str, ...]]  # (row key, column) -> card ids
    column_totals: dict[str, int]  # every card of the corpus in that column (with or without strategies)
    cards: dict[str, Card]

    def cell(self, row_key: str, column: str) -> tuple[str, ...]:
        return self.cells.get((row_key, column), ())

    def count(self, row_key: str, column: str) -> int:
        return len(self.cell(row_key, column))

    def row(self, row_key: str) -> Row:
        for r in self.rows:
            if r.key == row_key:
                return r
        raise KeyError(row_key)

    def row_cards(self, row_key: str) -> tuple[str, ...]:
        """Every card behind a row, whatever its column."""
        return tuple(sorted({cid for col in self.columns for cid in self.cell(row_key, col)}))

    def cell_cards(self, row_key: str, column: str) -> list[Card]:
        return [self.cards[cid] for cid in self.cell(row_key, column)]

    @property
    def max_count(self) -> int:
        return max((len(v) for v in self.cells.values()), default=0)

    @property
    def gaps(self) -> list[tuple[str, str]]:
        """The empty cells, row by row."""
        return [(r.key, c) for r in self.rows for c in self.columns if not self.count(r.key, c)]


def build_map(cards: Sequence[Card], taxonomy: Taxonomy, by: MapBy = "kind") -> EvidenceMap:
    """The map of ``cards`` (rows from ``taxonomy``, in its order; columns of ``by``)."""
    if by not in BY_CHOICES:
        raise ValueError(f"unknown map columns {by!r}: use one of {', '.join(BY_CHOICES)}")
    cells: dict[tuple[str, str], set[str]] = {}
    totals: dict[str, int] = {}
    theme_level: set[str] = set()
    for card in cards:
        col = column_of(card, by)
        totals[col] = totals.get(col, 0) + 1
        for s in card.sections:
            if s.name != "strategy" or not s.theme or s.theme not in taxonomy.themes:
                continue
            strategy = s.strategy if s.strategy in taxonomy.themes[s.theme].strategies else THEME_LEVEL
            if strategy == THEME_LEVEL:
                theme_level.add(s.theme)
            cells.setdefault((f"{s.theme}/{strategy}", col), set()).add(card.id)
    rows: list[Row] = []
    for theme in taxonomy.themes.values():
        if theme.id in theme_level:
            rows.append(Row(theme.id, THEME_LEVEL, theme.title, theme.title))
        rows += [Row(theme.id, sid, title, theme.title) for sid, title in theme.strategies.items()]
    if by == "kind":
        columns = [c for c in KIND_COLUMNS if c in totals] + sorted(c for c in totals if c not in KIND_COLUMNS)
    elif by == "year":
        columns = [label for label, _, _ in YEAR_BANDS if label in totals]
    else:  # most cards first, then by name
        columns = sorted(totals, key=lambda c: (-totals[c], c.lower()))
    return EvidenceMap(by=by, rows=tuple(rows), columns=tuple(columns),
                       cells={k: tuple(sorted(v)) for k, v in cells.items()},
                       column_totals={c: totals[c] for c in columns}, cards={c.id: c for c in cards})


# ------------------------------------------------------------------------------------------------
# From the answer to the map


def row_key_for(taxonomy: Taxonomy, theme: str, title: str) -> str | None:
    """An answer strategy (its theme and title) as a map row key; None when it is not in the taxonomy."""
    t = taxonomy.themes.get(theme)
    if t is None:
        return None
    if title == t.title:
        return f"{theme}/{THEME_LEVEL}"
    for sid, stitle in t.strategies.items():
        if stitle == title or sid == title:
            return f"{theme}/{sid}"
    return None


def _plural(n: int, column: str) -> str:
    if column == "study":
        return "study" if n == 1 else "studies"
    if column == "review":
        return "review" if n == 1 else "reviews"
    return column


def context_line(kind_map: EvidenceMap, row_key: str, country_map: EvidenceMap | None = None) -> str:
    """Where one strategy sits on the map, in one line: "Supervision …: 5 of 35 studies, 2 of 14 later
    research, 0 of 10 guidance, the review: no; none from the UK"."""
    row = kind_map.row(row_key)
    parts = []
    for col in kind_map.columns:
        n, total = kind_map.count(row_key, col), kind_map.column_totals[col]
        parts.append(f"{n} of {total} {_plural(total, col)}")
    line = f"{row.label}: " + ", ".join(parts)
    if country_map is not None:
        top = [c for c in country_map.columns if c not in ("multiple", "unknown")][:3]
        missing = [c for c in top if not country_map.count(row_key, c)]
        if missing:
            line += "; none from " + " or ".join("the " + c if c in ("UK", "USA") else c for c in missing)
        elif top:
            line += f"; cards from each of {', '.join(top)}"
    return line


def answer_context(cards: Sequence[Card], taxonomy: Taxonomy, strategies: Iterable[tuple[str, str]]) -> list[str]:
    """One short line per answered strategy ((theme, title) pairs, as in ``Answer.strategies``) saying
    where it sits on the evidence map; strategies outside the taxonomy are left out."""
    kind_map = build_map(cards, taxonomy, "kind")
    country_map = build_map(cards, taxonomy, "country")
    lines: list[str] = []
    seen: set[str] = set()
    for theme, title in strategies:
        key = row_key_for(taxonomy, theme, title)
        if key is None or key in seen:
            continue
        seen.add(key)
        try:
            lines.append(context_line(kind_map, key, country_map))
        except KeyError:  # a theme-level title with no theme-level cards
            continue
    return lines


# ------------------------------------------------------------------------------------------------
# Outputs: HTML table, CSV, PNG

#: Shade classes: 0 is the gap; 1..5 darker with the count.
SHADES = 5


def shade(count: int, max_count: int) -> int:
    """The shade class of a cell (0 only for an empty cell)."""
    if count <= 0:
        return 0
    return max(1, min(SHADES, round(SHADES * count / max(1, max_count) + 0.4999)))


MAP_CSS = """
table.evidence-map { border-collapse: collapse; font-size: 0.88rem; }
table.evidence-map th, table.evidence-map td { border: 1px solid #c5ccd3; padding: 4px 8px; }
table.evidence-map th { background: #f1f4f6; text-align: left; font-weight: 600; }
table.evidence-map th.col { text-align: center; }
table.evidence-map tr.theme th { background: #dde6ea; }
table.evidence-map tbody th { min-width: 270px; font-weight: 500; }
table.evidence-map td { text-align: center; min-width: 44px; font-variant-numeric: tabular-nums; }
table.evidence-map td.shade-0 { background: repeating-linear-gradient(45deg, #fff, #fff 4px, #f3f3f3 4px, #f3f3f3 8px); color: #a03a2c; }
table.evidence-map td.selected { outline: 3px solid #d9822b; outline-offset: -3px; font-weight: 700; }
table.evidence-map td.shade-1 { background: #e5f3f1; }
table.evidence-map td.shade-2 { background: #bfe3de; }
table.evidence-map td.shade-3 { background: #86cbc2; }
table.evidence-map td.shade-4 { background: #3fa396; color: #fff; }
table.evidence-map td.shade-5 { background: #1c6e64; color: #fff; }
"""


def to_html_table(m: EvidenceMap, selected: tuple[str, str] | None = None) -> str:
    """The map as an HTML table (escaped; cells carry ``data-row``/``data-col`` and a shade class; the
    ``selected`` (row key, column) cell is outlined)."""
    e = html.escape
    out = ['<table class="evidence-map" id="evidence-map-table">', "<thead><tr><th>Strategy</th>"]
    out += [f'<th class="col" data-col="{e(c)}">{e(c)}<br><small>{m.column_totals[c]} card{"s" if m.column_totals[c] != 1 else ""}</small></th>'
            for c in m.columns]
    out.append("</tr></thead><tbody>")
    theme = None
    top = m.max_count
    for r in m.rows:
        if r.theme != theme:
            theme = r.theme
            out.append(f'<tr class="theme"><th colspan="{len(m.columns) + 1}">{e(r.theme_title)}</th></tr>')
        out.append(f'<tr data-row="{e(r.key)}"><th>{e(r.label)}</th>')
        for c in m.columns:
            n = m.count(r.key, c)
            title = f"{r.label} × {c}: {n} card(s)" if n else f"{r.label} × {c}: no cards (a gap)"
            picked = " selected" if selected == (r.key, c) else ""
            out.append(f'<td class="shade-{shade(n, top)}{picked}" data-row="{e(r.key)}" data-col="{e(c)}" '
                       f'data-count="{n}" title="{e(title)}">{n if n else "—"}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def to_html_page(m: EvidenceMap) -> str:
    """A standalone HTML page with the table."""
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Evidence map by {m.by}</title><style>body{{font-family:system-ui,sans-serif;margin:24px}}"
            f"{MAP_CSS}</style></head><body><h1>Evidence map: strategies × {html.escape(m.by)}</h1>"
            "<p>Each cell counts the evidence cards with a section on that strategy; — marks a gap.</p>"
            f"{to_html_table(m)}</body></html>\n")


def to_csv(m: EvidenceMap) -> str:
    """One line per cell: theme, strategy, title, column, count, card ids (';'-separated)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["theme", "strategy", "title", m.by, "count", "card_ids"])
    for r in m.rows:
        for c in m.columns:
            ids = m.cell(r.key, c)
            w.writerow([r.theme, r.strategy, r.label, c, len(ids), ";".join(ids)])
    return buf.getvalue()


def write_png(m: EvidenceMap, path: Path) -> Path:
    """A heatmap of the counts (matplotlib, Agg backend); empty cells left blank and hatched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.array([[m.count(r.key, c) for c in m.columns] for r in m.rows], dtype=float)
    shown = np.ma.masked_where(counts == 0, counts)
    fig_h = 1.2 + 0.32 * len(m.rows)
    fig_w = max(7.0, 4.5 + 0.9 * len(m.columns))
    fig, ax = plt.subplots(figsize=(fig_w, fig_h), dpi=110)
    ax.set_facecolor("#f6f6f6")
    ax.patch.set_hatch("//")
    ax.patch.set_edgecolor("#d8d8d8")
    im = ax.imshow(shown, cmap="GnBu", aspect="auto", vmin=0, vmax=max(1, m.max_count))
    for i in range(len(m.rows)):
        for j in range(len(m.columns)):
            n = int(counts[i, j])
            ax.text(j, i, str(n) if n else "–", ha="center", va="center", fontsize=8,
                    color="white" if n > 0.6 * max(1, m.max_count) else ("#a03a2c" if not n else "black"))
    ax.set_xticks(range(len(m.columns)), [f"{c}\n({m.column_totals[c]})" for c in m.columns], fontsize=8)
    ax.xaxis.tick_top()
    labels = [("· " + r.label if r.strategy else "▸ " + r.label) for r in m.rows]
    ax.set_yticks(range(len(m.rows)), [lab if len(lab) <= 60 else lab[:58] + "…" for lab in labels], fontsize=8)
    theme = None
    for i, r in enumerate(m.rows):
        if r.theme != theme and i:
            ax.axhline(i - 0.5, color="#555", linewidth=1)
        theme = r.theme
    ax.set_title(f"Evidence map: cards per strategy × {m.by} (– = gap)", fontsize=10, pad=28)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, label="cards")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_outputs(m: EvidenceMap, out: Path) -> dict[str, Path]:
    """``evidence-map-<by>.png``, ``.html`` and ``.csv`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"evidence-map-{m.by}"
    html_path, csv_path = stem.with_suffix(".html"), stem.with_suffix(".csv")
    html_path.write_text(to_html_page(m), encoding="utf-8")
    csv_path.write_text(to_csv(m), encoding="utf-8")
    return {"png": write_png(m, stem.with_suffix(".png")), "html": html_path, "csv": csv_path}
