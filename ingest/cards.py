"""Evidence cards: the schema, the loader and the validator.

A card is YAML front matter plus Markdown sections (see ``docs/CARD_GUIDE.md``). Validation looks
at every card and reports every problem at once, each with the file, the field, what is wrong and
how to fix it; nothing is written anywhere until the whole corpus is clean.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingest.errors import CorpusError, EmptyCorpusError, Problem
from ingest.safe_yaml import safe_yaml
from ingest.taxonomy import Taxonomy, load_taxonomy
from ingest.types import Card, Section

__all__ = ["Corpus", "Draft", "Problem", "Taxonomy", "card_files", "front_matter", "load_corpus", "load_taxonomy",
           "parse_card", "safe_yaml"]

KINDS = ("review", "study", "related-review", "related-study", "guidance")
INCLUSION = ("confirmed", "probable", "possible", "n/a")
DESIGN_TYPES = (
    "qualitative", "mixed methods", "quantitative", "programme evaluation", "randomised trial",
    "systematic review", "scoping review", "narrative review", "umbrella review", "framework",
    "guidance",
)
REQUIRED = ("id", "kind", "title", "authors", "year", "venue", "country", "setting", "design",
            "review_inclusion", "themes", "sources")
OPTIONAL = ("doi", "url", "participants", "published", "document_type", "authors_complete", "status")
#: ``status: draft`` keeps a card out of the index until it is complete (the only value allowed).
STATUSES = ("draft",)
#: What a draft must fill in before it can lose ``status: draft`` (checked as warnings on drafts).
DRAFT_FIELDS = ("title", "authors", "year", "venue", "country", "setting", "design", "participants",
                "review_inclusion", "themes", "sources")
#: Template text: ``peer-assist add`` writes it, and a card may not keep it once it is no longer a draft.
PLACEHOLDER = "TODO"
ID_RE = re.compile(r"^[a-z]+(?:-[a-z]+)*-\d{4}[a-z]?$")
DOI_RE = re.compile(r"^10\.\d{4,9}/[^\s\"<>]+$")
URL_RE = re.compile(r"^https?://[^\s\"<>]+$")
STRATEGY_HEADING_RE = re.compile(r"^(?P<theme>[a-z-]+)(?:/(?P<strategy>[a-z0-9-]+))?:\s*(?P<title>\S.*)$")
MIN_YEAR = 1950
MAX_HEADING_DEPTH_CHARS = 300


# ------------------------------------------------------------------------------------------------
# Cards


def card_files(corpus_dir: Path) -> list[Path]:
    """Every card file under the corpus, in a stable order (symlinks leaving the corpus are ignored)."""
    root = corpus_dir.resolve()
    files = []
    for path in sorted(root.rglob("*.md")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.name.upper() in {"README.MD"}:
            continue
        if not path.resolve().is_relative_to(root):
            continue
        files.append(path)
    return files


def _normalise(text: str) -> str:
    """Join wrapped lines into paragraphs; paragraphs are separated by one blank line."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def parse_sections(body: str, rel: str, taxonomy: Taxonomy, problems: list[Problem]) -> list[Section]:
    """Split the Markdown body into Summary, strategy and Caveats sections."""
    sections: list[Section] = []
    current: dict[str, Any] | None = None
    in_strategies = False
    buf: list[str] = []

    def flush() -> None:
        nonlocal current, buf
        if current is not None:
            text = _normalise("\n".join(buf))
            if current["name"] == "strategy-intro":
                pass
            elif not text:
                problems.append(Problem(rel, f"section '{current['heading']}'", "is empty",
                                        "write the section's text or remove its heading"))
            else:
                sections.append(Section(text=text, **current))
        current, buf = None, []

    for line in body.splitlines():
        if line.startswith("## "):
            flush()
            heading = line[3:].strip()
            name = heading.lower()
            in_strategies = name == "strategies"
            current = {"name": "strategy-intro" if in_strategies else name, "heading": heading}
            continue
        if line.startswith("### ") and in_strategies:
            flush()
            heading = line[4:].strip()
            m = STRATEGY_HEADING_RE.match(heading)
            if not m:
                problems.append(Problem(rel, f"heading '{heading[:80]}'",
                                        "a strategy heading must read '<theme-id>/<strategy-id>: <title>' (or '<theme-id>: <title>' for a theme-level finding)",
                                        "start the heading with a theme and strategy id from corpus/themes.yaml"))
                current = {"name": "strategy-intro", "heading": heading}
                continue
            theme, strategy = m["theme"], m["strategy"]  # strategy None: a theme-level heading
            if theme not in taxonomy.themes:
                problems.append(Problem(rel, f"heading '{heading[:80]}'", f"unknown theme id '{theme}'",
                                        f"use one of: {', '.join(taxonomy.themes)}"))
            elif strategy is not None and strategy not in taxonomy.themes[theme].strategies:
                problems.append(Problem(rel, f"heading '{heading[:80]}'",
                                        f"unknown strategy id '{strategy}' for theme '{theme}'",
                                        f"use one of: {', '.join(taxonomy.themes[theme].strategies)}"))
            current = {"name": "strategy", "heading": heading, "theme": theme, "strategy": strategy,
                       "title": m["title"].strip()}
            continue
        if current is None:
            if line.strip():
                problems.append(Problem(rel, "body", "text before the first '## ' section heading",
                                        "put it under '## Summary'"))
                current = {"name": "preamble", "heading": "Preamble"}
            else:
                continue
        buf.append(line)
    flush()
    return [s for s in sections if s.name != "preamble"]


def _check_str(meta: dict[str, Any], key: str, rel: str, problems: list[Problem], max_len: int = 500) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(rel, key, f"must be non-empty text, got {type(value).__name__} {str(value)[:40]!r}",
                                f"write `{key}: <text>`"))
        return None
    if len(value) > max_len:
        problems.append(Problem(rel, key, f"is {len(value)} characters long (limit {max_len})", "shorten it"))
        return None
    return value.strip()


def _check_str_list(meta: dict[str, Any], key: str, rel: str, problems: list[Problem]) -> list[str] | None:
    value = meta.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(Problem(rel, key, f"must be a non-empty list of text items, got {str(value)[:60]!r}",
                                f"write `{key}: [\"...\", \"...\"]`"))
        return None
    return [v.strip() for v in value]


def parse_card(path: Path, corpus_dir: Path, taxonomy: Taxonomy, max_bytes: int,
               problems: list[Problem], drafts: list[Draft] | None = None) -> Card | None:
    """Parse and check one card. Appends to ``problems``; returns the card only when it is clean.

    A card with ``status: draft`` is never returned: it goes to ``drafts`` with what it still lacks,
    and adds nothing to ``problems`` (only a file that cannot be read as a card at all does).
    """
    try:
        rel = str(path.relative_to(corpus_dir))
    except ValueError:
        rel = str(path)
    read = _read_card_file(path, rel, max_bytes, problems)
    if read is None:
        return None
    raw, meta, body = read
    before = len(problems)
    status = meta.get("status")
    if status is not None and status not in STATUSES:
        problems.append(Problem(rel, "status", f"unknown value {str(status)[:30]!r}",
                                "write `status: draft` for a card that is not finished, or remove the line"))
    outer: list[Problem] | None = None
    if status == "draft":
        # A draft is checked like a card, but its problems are what it still lacks: warnings that keep it
        # out of the index, never errors that stop the rest of the corpus.
        outer, problems = problems, []
        before = 0
    f = _check_front_matter(meta, rel, path, taxonomy, problems)
    if not body.strip():
        problems.append(Problem(rel, "body", "is empty", "add '## Summary', '## Strategies' and '## Caveats' sections"))
        if outer is not None and drafts is not None:
            drafts.append(_draft(path, rel, meta, body, problems))
        return None
    sections = _check_body(body, rel, taxonomy, f["themes"], problems)
    for key in REQUIRED + OPTIONAL:
        value = meta.get(key)
        if isinstance(value, str) and value.strip().startswith(PLACEHOLDER):
            problems.append(Problem(rel, key, "still holds template text",
                                    f"replace the {PLACEHOLDER} text with what the publication says"))
    for heading in _template_sections(body):
        problems.append(Problem(rel, f"section '{heading[:80]}'", "still holds template text",
                                f"replace the {PLACEHOLDER} text with the card's own words"))
    if outer is not None:
        if drafts is not None:
            drafts.append(_draft(path, rel, meta, body, problems))
        return None
    card_id = f["card_id"]
    questions, q_bytes = _card_questions(corpus_dir, card_id, sections, problems) if card_id else ((), b"")
    if len(problems) > before:
        return None
    return Card(
        id=card_id, kind=f["kind"], title=f["title"], authors=tuple(f["authors"]), year=int(f["year"]),
        venue=f["venue"], country=f["country"], setting=f["setting"], design=f["design"],
        review_inclusion=str(f["inclusion"]), themes=tuple(f["themes"]), sources=tuple(f["sources"]),
        sections=tuple(sections), path=path, content_hash=hashlib.sha256(raw + q_bytes).hexdigest(), doi=f["doi"],
        url=f["url"], participants=f["participants"], questions=questions, published=f["published"],
        document_type=f["document_type"], authors_complete=f["authors_complete"],
    )


def _read_card_file(path: Path, rel: str, max_bytes: int,
                    problems: list[Problem]) -> tuple[bytes, dict[str, Any], str] | None:
    """The card's bytes, front matter (a mapping) and Markdown body; None (with a problem) when the
    file cannot be read as a card at all."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        problems.append(Problem(rel, "file", f"cannot be read ({exc.strerror})", "check the file's permissions"))
        return None
    if size > max_bytes:
        problems.append(Problem(rel, "file", f"is {size:,} bytes, over the {max_bytes:,}-byte limit for a card",
                                "shorten the card or split it; a card summarises one study"))
        return None
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except OSError as exc:
        problems.append(Problem(rel, "file", f"cannot be read ({exc.strerror})", "check the file's permissions"))
        return None
    except UnicodeDecodeError as exc:
        problems.append(Problem(rel, "file", f"is not valid UTF-8 (byte {exc.start})", "save the file as UTF-8"))
        return None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if "\x00" in text:
        problems.append(Problem(rel, "file", "contains NUL bytes", "save the card as plain UTF-8 text"))
        return None
    if not text.startswith("---\n"):
        problems.append(Problem(rel, "front matter", "is missing: the file must start with a '---' line",
                                "add YAML front matter between two '---' lines at the top"))
        return None
    end = text.find("\n---", 3)
    if end == -1 or text[end + 4: end + 5] not in ("\n", ""):
        problems.append(Problem(rel, "front matter", "is not closed by a '---' line",
                                "end the YAML front matter with a line containing only '---'"))
        return None
    front, body = text[4:end] if end >= 4 else "", text[end + 5:]
    try:
        meta = safe_yaml(front)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 2}" if where is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.append(Problem(rel, "front matter", f"is not valid YAML{line}: {reason}",
                                "fix the YAML syntax (quote text containing ':' or '#')"))
        return None
    if not isinstance(meta, dict):
        problems.append(Problem(rel, "front matter", "must be a YAML mapping of fields",
                                "write one `field: value` per line"))
        return None

    return raw, meta, body


def _check_front_matter(meta: dict[str, Any], rel: str, path: Path, taxonomy: Taxonomy,
                        problems: list[Problem]) -> dict[str, Any]:
    """Check every front-matter field; returns the checked values (None where a field is bad)."""
    for key in meta:
        if key not in REQUIRED and key not in OPTIONAL:
            problems.append(Problem(rel, str(key)[:40], "is not a known field",
                                    f"remove it or use one of: {', '.join(REQUIRED + OPTIONAL)}"))
    for key in REQUIRED:
        if key not in meta or meta[key] is None:
            problems.append(Problem(rel, key, "is missing", f"add `{key}:` to the front matter"))
    if meta.get("doi") is None and meta.get("url") is None:
        problems.append(Problem(rel, "doi", "neither `doi` nor `url` is given",
                                "add the DOI (10.xxxx/...) or, for grey literature, a `url:`"))

    card_id = _check_str(meta, "id", rel, problems, 60)
    if card_id is not None:
        if not ID_RE.match(card_id):
            problems.append(Problem(rel, "id", f"{card_id[:60]!r} is not '<first author surname>-<year>[a|b]' in lowercase ASCII",
                                    "use e.g. `gates-2007` or `gillard-2015b`"))
        elif card_id != path.stem:
            problems.append(Problem(rel, "id", f"'{card_id}' does not match the file name '{path.name}'",
                                    f"rename the file to {card_id}.md or change the id"))
    kind = _check_str(meta, "kind", rel, problems)
    if kind is not None and kind not in KINDS:
        problems.append(Problem(rel, "kind", f"unknown kind '{kind}'", f"use one of: {', '.join(KINDS)}"))
    title = _check_str(meta, "title", rel, problems, 400)
    venue = _check_str(meta, "venue", rel, problems, 300)
    country = _check_str(meta, "country", rel, problems, 120)
    setting = _check_str(meta, "setting", rel, problems)
    design = _check_str(meta, "design", rel, problems)
    if design is not None and design.split(";", 1)[0].strip().lower() not in DESIGN_TYPES:
        problems.append(Problem(rel, "design", f"{design[:60]!r} does not start with a known design type",
                                f"start it with one of: {', '.join(DESIGN_TYPES)}, then '; details'"))
    participants = _check_str(meta, "participants", rel, problems)
    published = _check_str(meta, "published", rel, problems, 40)
    authors_complete = meta.get("authors_complete", True)
    if not isinstance(authors_complete, bool):
        problems.append(Problem(rel, "authors_complete", f"must be true or false, got {str(authors_complete)[:20]!r}",
                                "write `authors_complete: false` when the author list could not be verified in full"))
        authors_complete = True
    document_type = _check_str(meta, "document_type", rel, problems, 200)
    if kind == "guidance" and document_type is None:
        problems.append(Problem(rel, "document_type", "a guidance card must say what kind of document it is",
                                "add e.g. `document_type: employer's implementation guide`"))
    inclusion = meta.get("review_inclusion")
    if inclusion is not None:
        if inclusion not in INCLUSION:
            problems.append(Problem(rel, "review_inclusion", f"unknown value {str(inclusion)[:30]!r}",
                                    f"use one of: {', '.join(INCLUSION)}"))
        elif kind == "study" and inclusion == "n/a":
            problems.append(Problem(rel, "review_inclusion", "a study card needs probable, possible or confirmed",
                                    "say how likely the review includes this study"))
        elif kind in ("review", "related-review", "related-study", "guidance") and inclusion != "n/a":
            problems.append(Problem(rel, "review_inclusion", f"must be n/a for a {kind} card", "write `review_inclusion: n/a`"))
    year = meta.get("year")
    max_year = _dt.date.today().year + 1
    if year is not None:
        if isinstance(year, bool) or not isinstance(year, int):
            problems.append(Problem(rel, "year", f"must be a whole number, got {str(year)[:20]!r}", "write e.g. `year: 2010`"))
            year = None
        elif not MIN_YEAR <= year <= max_year:
            problems.append(Problem(rel, "year", f"{year} is out of range ({MIN_YEAR}-{max_year})",
                                    "use the publication year"))
            year = None
    doi = meta.get("doi")
    if doi is not None:
        if not isinstance(doi, str) or not DOI_RE.match(doi.strip()):
            problems.append(Problem(rel, "doi", f"{str(doi)[:60]!r} is not a DOI",
                                    "write the bare DOI, e.g. `doi: 10.1007/s10488-006-0109-4` (no https://doi.org/)"))
            doi = None
        else:
            doi = doi.strip()
    url = meta.get("url")
    if url is not None and (not isinstance(url, str) or not URL_RE.match(url.strip())):
        problems.append(Problem(rel, "url", f"{str(url)[:60]!r} is not an http(s) URL", "write a full https:// address"))
        url = None
    authors = _check_str_list(meta, "authors", rel, problems)
    sources = _check_str_list(meta, "sources", rel, problems)
    if sources:
        for src in sources:
            if not URL_RE.match(src):
                problems.append(Problem(rel, "sources", f"{src[:60]!r} is not an http(s) URL",
                                        "list the pages where the facts were checked as https:// addresses"))
    themes = _check_str_list(meta, "themes", rel, problems)
    if themes:
        for theme in themes:
            if theme not in taxonomy.themes:
                problems.append(Problem(rel, "themes", f"unknown theme id '{theme}'",
                                        f"use one of: {', '.join(taxonomy.themes)}"))

    return {"card_id": card_id, "kind": kind, "title": title, "venue": venue, "country": country,
            "setting": setting, "design": design, "participants": participants, "published": published,
            "authors_complete": authors_complete, "document_type": document_type, "inclusion": inclusion,
            "year": year, "doi": doi, "url": url, "authors": authors, "sources": sources, "themes": themes}


def _check_body(body: str, rel: str, taxonomy: Taxonomy, themes: list[str] | None,
                problems: list[Problem]) -> list[Section]:
    """The card's sections, checked: no repeats, a Summary, at least one strategy, themes listed."""
    sections = parse_sections(body, rel, taxonomy, problems)
    seen_headings: set[str] = set()
    for section in sections:
        if section.heading.lower() in seen_headings:
            problems.append(Problem(rel, f"section '{section.heading[:80]}'", "appears twice in the card",
                                    "merge the two sections or give them different headings"))
        seen_headings.add(section.heading.lower())
    names = [s.name for s in sections]
    if "summary" not in names:
        problems.append(Problem(rel, "body", "has no '## Summary' section", "add a short '## Summary'"))
    strategies = [s for s in sections if s.name == "strategy"]
    if not strategies:
        problems.append(Problem(rel, "body", "has no strategy under '## Strategies'",
                                "add '### <theme-id>/<strategy-id>: <title>' sections under '## Strategies'"))
    if themes:
        for s in strategies:
            if s.theme in taxonomy.themes and s.theme not in themes:
                problems.append(Problem(rel, "themes", f"strategy theme '{s.theme}' is not listed in `themes`",
                                        f"add {s.theme} to `themes`"))

    return sections


QUESTIONS_DIR = "questions"


def _card_questions(corpus_dir: Path, card_id: str, sections: list[Section],
                    problems: list[Problem]) -> tuple[tuple[tuple[str, str], ...], bytes]:
    """The card's curated questions (``corpus/questions/<id>.yaml``), keyed by the section they answer:
    ``summary`` or the id part of a strategy heading. No file means no questions."""
    path = corpus_dir / QUESTIONS_DIR / f"{card_id}.yaml"
    if not path.is_file():
        return (), b""
    rel = str(path.relative_to(corpus_dir))
    try:
        raw = path.read_bytes()
        data = safe_yaml(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problems.append(Problem(rel, "file", f"cannot be read: {str(exc).splitlines()[0]}", "make it valid UTF-8 YAML"))
        return (), b""
    if not isinstance(data, dict) or data.get("card") != card_id or not isinstance(data.get("sections"), dict):
        problems.append(Problem(rel, "sections", f"must hold `card: {card_id}` and a `sections:` mapping",
                                "see docs/CARD_GUIDE.md, 'Questions this card answers'"))
        return (), b""
    keys: dict[str, str] = {}
    for section in sections:
        if section.name == "summary":
            keys["summary"] = section.heading
        elif section.name == "strategy" and section.theme:
            keys[f"{section.theme}/{section.strategy}" if section.strategy else section.theme] = section.heading
    out: list[tuple[str, str]] = []
    for key, questions in data["sections"].items():
        if key not in keys:
            problems.append(Problem(rel, f"sections.{str(key)[:60]}", "names no section of the card",
                                    f"use one of: {', '.join(keys)}"))
            continue
        if not isinstance(questions, list) or not all(isinstance(q, str) and 3 <= len(q.strip()) <= 300
                                                      for q in questions):
            problems.append(Problem(rel, f"sections.{key}", "must be a list of questions (3-300 characters each)",
                                    'write `- "How do we ...?"` lines'))
            continue
        out.extend((keys[key], " ".join(q.split())) for q in questions)
    return tuple(dict.fromkeys(out)), raw


def _is_placeholder(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip() or value.strip().startswith(PLACEHOLDER)
    if isinstance(value, list):
        return not value or all(_is_placeholder(v) for v in value)
    return False


def _template_sections(body: str) -> list[str]:
    """Headings of the sections whose text still starts with the template's placeholder."""
    out, heading = [], None
    for line in body.splitlines():
        if line.startswith(("## ", "### ")):
            heading = line.lstrip("#").strip()
            if PLACEHOLDER in heading and heading not in out:
                out.append(heading)
        elif heading is not None and line.strip().startswith(PLACEHOLDER) and heading not in out:
            out.append(heading)
    return out


def _draft(path: Path, rel: str, meta: dict[str, Any], body: str, problems: list[Problem]) -> Draft:
    """A draft and what it still lacks: unfilled fields, template text, strategies, then anything else."""
    fields = [key for key in DRAFT_FIELDS if _is_placeholder(meta.get(key))]
    if _is_placeholder(meta.get("doi")) and _is_placeholder(meta.get("url")):
        fields.append("doi or url")
    template = _template_sections(body)
    no_strategy = any(p.message.startswith("has no strategy") for p in problems)
    covered = set(fields) | ({"doi", "url"} if "doi or url" in fields else set())
    other = tuple(p for p in problems if p.field not in covered and not p.message.startswith("has no strategy")
                  and p.message != "still holds template text")
    year = meta.get("year")
    doi = meta.get("doi")
    return Draft(
        id=str(meta.get("id") or path.stem), path=path, rel=rel,
        title=meta.get("title") if isinstance(meta.get("title"), str) else None,
        year=year if isinstance(year, int) and not isinstance(year, bool) else None,
        doi=doi.strip() if isinstance(doi, str) and doi.strip() else None,
        missing_fields=tuple(fields), template_sections=tuple(template), no_strategy=no_strategy, other=other,
    )


@dataclass(frozen=True)
class Draft:
    """A card with ``status: draft``: kept out of the index, checked only to say what it still lacks."""

    id: str
    path: Path
    rel: str
    title: str | None
    year: int | None
    doi: str | None
    missing_fields: tuple[str, ...] = ()  # fields still empty or holding template text
    template_sections: tuple[str, ...] = ()  # sections whose text is still the template's
    no_strategy: bool = False
    other: tuple[Problem, ...] = ()  # anything else the card check found (bad theme id, ...)

    @property
    def complete(self) -> bool:
        return not (self.missing_fields or self.template_sections or self.no_strategy or self.other)

    def lacks(self) -> list[str]:
        """What is left to do, one item per line."""
        out = []
        if self.missing_fields:
            out.append(f"fields to fill in: {', '.join(self.missing_fields)}")
        if self.template_sections:
            out.append(f"template text left in: {', '.join(self.template_sections)} (replace {PLACEHOLDER} with "
                       "the card's own words)")
        if self.no_strategy:
            out.append("no strategy: add '### <theme-id>/<strategy-id>: <title>' sections under '## Strategies'")
        out += [f"[{p.field}] {p.message}. Fix: {p.fix}" for p in self.other]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "file": self.rel, "missing_fields": list(self.missing_fields),
                "template_sections": list(self.template_sections), "no_strategy": self.no_strategy,
                "other": [str(p) for p in self.other]}


@dataclass(frozen=True)
class Corpus:
    cards: list[Card]
    taxonomy: Taxonomy
    drafts: list[Draft] = field(default_factory=list)

    def by_id(self) -> dict[str, Card]:
        return {c.id: c for c in self.cards}


def front_matter(path: Path) -> dict[str, Any] | None:
    """The front matter of one card file without checking it (None when it cannot be read as YAML)."""
    try:
        text = path.read_text(encoding="utf-8").removeprefix("\ufeff").replace("\r\n", "\n")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("---\n"):
        return None
    end = text.find("\n---", 3)
    if end == -1:
        return None
    try:
        meta = safe_yaml(text[4:end])
    except yaml.YAMLError:
        return None
    return meta if isinstance(meta, dict) else None


def load_corpus(corpus_dir: Path, max_card_bytes: int = 64_000) -> Corpus:
    """Load and validate every card; raise CorpusError with all problems, or EmptyCorpusError."""
    corpus_dir = corpus_dir.resolve()
    if not corpus_dir.is_dir():
        raise EmptyCorpusError(f"The corpus directory {corpus_dir} does not exist.")
    taxonomy = load_taxonomy(corpus_dir / "themes.yaml")
    files = card_files(corpus_dir)
    if not files:
        raise EmptyCorpusError(f"No evidence cards (*.md) found in {corpus_dir}.")
    problems: list[Problem] = []
    cards: list[Card] = []
    drafts: list[Draft] = []
    for path in files:
        card = parse_card(path, corpus_dir, taxonomy, max_card_bytes, problems, drafts)
        if card is not None:
            cards.append(card)
    problems.extend(_cross_card_problems(cards, corpus_dir))
    if problems:
        raise CorpusError(problems)
    return Corpus(cards, taxonomy, _cross_draft_checks(drafts, cards, corpus_dir))


def _cross_draft_checks(drafts: list[Draft], cards: list[Card], corpus_dir: Path) -> list[Draft]:
    """A draft whose id or DOI a card already uses could never become a card: say so among its lacks."""
    ids = {c.id: c for c in cards}
    dois = {c.doi.lower(): c for c in cards if c.doi}
    out = []
    for draft in drafts:
        extra = []
        if draft.id in ids:
            extra.append(Problem(draft.rel, "id", f"'{draft.id}' is already used by {ids[draft.id].path.relative_to(corpus_dir)}",
                                 "give the draft another id (add a/b after the year) and rename its file"))
        if draft.doi and draft.doi.lower() in dois:
            extra.append(Problem(draft.rel, "doi", f"{draft.doi} is already the DOI of {dois[draft.doi.lower()].id}",
                                 "one card per publication: merge the draft into that card and delete it"))
        out.append(Draft(**{**draft.__dict__, "other": draft.other + tuple(extra)}) if extra else draft)
    return out


def _cross_card_problems(cards: Iterable[Card], corpus_dir: Path) -> list[Problem]:
    problems: list[Problem] = []
    seen_ids: dict[str, Path] = {}
    seen_dois: dict[str, Path] = {}
    for card in cards:
        rel = str(card.path.relative_to(corpus_dir))
        if card.id in seen_ids:
            problems.append(Problem(rel, "id", f"'{card.id}' is already used by {seen_ids[card.id].relative_to(corpus_dir)}",
                                    "give each card a unique id (add a/b after the year)"))
        seen_ids.setdefault(card.id, card.path)
        if card.doi:
            key = card.doi.lower()
            if key in seen_dois:
                problems.append(Problem(rel, "doi", f"{card.doi} is already used by {seen_dois[key].relative_to(corpus_dir)}",
                                        "one card per publication: merge the two cards"))
            seen_dois.setdefault(key, card.path)
    return problems
