"""The theme and strategy taxonomy (``corpus/themes.yaml``): the review's four themes, in its order,
and the strategies compiled from the studies under each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from ingest.errors import CorpusError, Problem
from ingest.safe_yaml import safe_yaml


@dataclass(frozen=True)
class Theme:
    id: str
    title: str
    description: str
    strategies: dict[str, str]  # strategy id -> title
    strategy_descriptions: dict[str, str]


@dataclass(frozen=True)
class Taxonomy:
    themes: dict[str, Theme]

    @property
    def order(self) -> list[str]:
        """Theme order of the review's model: leadership first, support last."""
        return list(self.themes)

    def strategy_title(self, theme: str, strategy: str) -> str:
        return self.themes[theme].strategies.get(strategy, strategy)



def load_taxonomy(path: Path) -> Taxonomy:
    """Read ``themes.yaml``; raises CorpusError listing every problem in it."""
    rel = path.name
    problems: list[Problem] = []
    try:
        data = safe_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorpusError([Problem(str(path), "themes.yaml", "the theme taxonomy file is missing",
                                   "create corpus/themes.yaml (see docs/CARD_GUIDE.md)")]) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CorpusError([Problem(rel, "themes.yaml", f"cannot be read: {exc}", "make it valid UTF-8 YAML")]) from None
    themes: dict[str, Theme] = {}
    raw = data.get("themes") if isinstance(data, dict) else None
    if not isinstance(raw, list) or not raw:
        raise CorpusError([Problem(rel, "themes", "must be a non-empty list", "list the themes under `themes:`")])
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            problems.append(Problem(rel, f"themes[{i}]", "needs an `id`", "give each theme an id"))
            continue
        strategies: dict[str, str] = {}
        descriptions: dict[str, str] = {}
        for j, strat in enumerate(item.get("strategies") or []):
            if not isinstance(strat, dict) or not isinstance(strat.get("id"), str):
                problems.append(Problem(rel, f"themes[{i}].strategies[{j}]", "needs an `id`", "give each strategy an id"))
                continue
            strategies[strat["id"]] = str(strat.get("title") or strat["id"])
            descriptions[strat["id"]] = str(strat.get("description") or "")
        if not strategies:
            problems.append(Problem(rel, f"themes[{i}].strategies", "is empty", "list the theme's strategies"))
        themes[item["id"]] = Theme(item["id"], str(item.get("title") or item["id"]),
                                   " ".join(str(item.get("description") or "").split()), strategies, descriptions)
    if problems:
        raise CorpusError(problems)
    return Taxonomy(themes)
