"""New literature: draft cards from a reference manager's RIS or BibTeX export.

``read_ris`` / ``read_bibtex`` turn a file into ``Reference`` records (rispy and bibtexparser do the
parsing); ``add_references`` writes one draft card per usable record into the corpus, never over an
existing file, and says for every record what happened: written, skipped as a duplicate of a card
already in the corpus (same DOI, or same title and year), or refused because something is missing.
Drafts carry ``status: draft``, so they stay out of the index until a maintainer completes them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ingest.cards import DOI_RE, ID_RE, PLACEHOLDER, URL_RE, card_files, front_matter

__all__ = ["AddResult", "Reference", "add_references", "ascii_fold", "card_id_base", "read_bibtex", "read_references",
           "read_ris"]

Folder = Literal["studies", "related", "guidance"]
FOLDER_KIND = {"studies": "study", "related": "related-study", "guidance": "guidance"}

# Letters that Unicode decomposition does not reduce to ASCII.
_FOLD = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss", "ł": "l",
                       "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ı": "i"})


def ascii_fold(text: str) -> str:
    """Åkerblom → Akerblom, Müller → Muller, Ødegård → Odegard."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).encode("ascii", "ignore").decode()


def normalise_title(title: str) -> str:
    """Case, accents, punctuation and spacing removed: how titles are compared for duplicates."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", ascii_fold(title).lower()).split())


def bare_doi(value: str) -> str:
    """``https://doi.org/10.1/x`` or ``doi:10.1/x`` → ``10.1/x``."""
    value = value.strip()
    value = re.sub(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", "", value, flags=re.IGNORECASE)
    return value.strip()


def card_id_base(surname: str, year: int) -> str:
    """The card rule: ``<first author surname>-<year>`` in lowercase ASCII (hyphens in the name kept)."""
    name = re.sub(r"[^a-z-]", "", ascii_fold(surname).lower())
    name = re.sub(r"-+", "-", name).strip("-") or "anon"
    return f"{name}-{year}"


def initials(given: str) -> str:
    """``Lauren B.`` → ``L. B.``; ``Jean-Pierre`` → ``J.-P.``; ``HR`` → ``H. R.``."""
    parts: list[str] = []
    for token in given.replace(".", ". ").split():
        token = token.strip(".,")
        if not token:
            continue
        if token.isupper() and len(token) <= 3 and "-" not in token:
            parts.extend(f"{ch}." for ch in token)
        else:
            parts.append("-".join(f"{piece[0]}." for piece in token.split("-") if piece))
    return " ".join(parts)


def author_style(surname: str, given: str) -> str:
    """``Surname, I. I.`` (the card style)."""
    surname = " ".join(surname.split())
    inits = initials(given)
    return f"{surname}, {inits}" if inits else surname


@dataclass
class Reference:
    """One record of an export, as far as it could be read."""

    label: str  # "record 3 (line 20)" or "record 3 (line 20, key vandewalle2016)"
    title: str | None = None
    authors: list[str] = field(default_factory=list)  # "Surname, I."
    surnames: list[str] = field(default_factory=list)
    year: int | None = None
    venue: str | None = None
    doi: str | None = None
    url: str | None = None
    entry_type: str | None = None
    error: str | None = None  # the record could not be read at all
    fmt: Literal["ris", "bibtex"] = "ris"

    def short(self) -> str:
        if not self.surnames:
            return self.title[:60] if self.title else "untitled"
        who = self.surnames[0] + (" et al." if len(self.surnames) > 2 else
                                  f" & {self.surnames[1]}" if len(self.surnames) == 2 else "")
        return f"{who} {self.year or 'n.d.'}"

    def missing(self) -> list[str]:
        return [name for name, ok in (("title", bool(self.title)), ("year", self.year is not None),
                                      ("authors", bool(self.authors))) if not ok]


_YEAR_RE = re.compile(r"(?<!\d)(1[89]\d\d|2\d\d\d)(?!\d)")


def _year(*values: Any) -> int | None:
    for value in values:
        if value:
            m = _YEAR_RE.search(str(value))
            if m:
                return int(m.group(1))
    return None


def _clean(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    text = " ".join(str(value).split()).strip()
    return text or None


def _link(ref: Reference, doi: str | None, urls: Sequence[str]) -> None:
    if doi:
        doi = bare_doi(doi)
        if DOI_RE.match(doi):
            ref.doi = doi
        else:
            ref.error = f"its DOI {doi[:60]!r} is not a DOI (10.xxxx/...)"
    for url in urls:
        url = url.strip()
        m = re.match(r"^https?://(?:dx\.)?doi\.org/(10\..+)$", url, re.IGNORECASE)
        if m and not ref.doi and DOI_RE.match(m.group(1)):
            ref.doi = m.group(1)
        elif URL_RE.match(url) and not ref.url:
            ref.url = url


# ------------------------------------------------------------------------------------------------
# RIS


_RIS_END = re.compile(r"^ER  -")


def read_ris(text: str) -> list[Reference]:
    """Every record of a RIS export. Records are cut at their ``ER  -`` line and each is parsed by
    rispy on its own, so one malformed record is reported without losing the others."""
    import rispy

    refs: list[Reference] = []
    chunk: list[str] = []
    start = 0
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").split("\n")
    for lineno, line in enumerate(lines, 1):
        if not chunk and not line.strip():
            continue
        if not chunk:
            start = lineno
        chunk.append(line)
        if _RIS_END.match(line):
            refs.append(_ris_record(rispy, "\n".join(chunk) + "\n", f"record {len(refs) + 1} (line {start})"))
            chunk = []
    if any(line.strip() for line in chunk):
        ref = Reference(label=f"record {len(refs) + 1} (line {start})",
                        error="it has no 'ER  -' line ending the record (the file may be cut short)")
        refs.append(ref)
    return refs


def _ris_record(rispy: Any, chunk: str, label: str) -> Reference:
    ref = Reference(label=label, fmt="ris")
    first = chunk.lstrip().split("\n", 1)[0]
    if not first.startswith("TY  -"):
        ref.error = f"it does not start with a 'TY  -' line (first line: {first[:40]!r})"
        return ref
    try:
        records = rispy.loads(chunk)
    except Exception as exc:  # noqa: BLE001 - rispy raises several types on malformed input
        ref.error = f"rispy could not read it ({type(exc).__name__}: {exc})"
        return ref
    if len(records) != 1:
        ref.error = "it could not be read as one RIS record"
        return ref
    rec = records[0]
    ref.entry_type = _clean(rec.get("type_of_reference"))
    ref.title = _clean(rec.get("title") or rec.get("primary_title"))
    for name in list(rec.get("authors") or []) + list(rec.get("first_authors") or []):
        name = " ".join(str(name).split())
        if not name:
            continue
        surname, _, given = name.partition(",")
        ref.surnames.append(surname.strip())
        ref.authors.append(author_style(surname, given))
    ref.year = _year(rec.get("year"), rec.get("publication_year"), rec.get("date"))
    ref.venue = _clean(rec.get("journal_name") or rec.get("secondary_title") or rec.get("alternate_title3")
                       or rec.get("alternate_title1") or rec.get("publisher"))
    _link(ref, _clean(rec.get("doi")), list(rec.get("urls") or []))
    return ref


# ------------------------------------------------------------------------------------------------
# BibTeX


def read_bibtex(text: str) -> list[Reference]:
    """Every entry of a BibTeX export (bibtexparser v2; LaTeX accents decoded, names split)."""
    import bibtexparser
    from bibtexparser import model
    from bibtexparser.middlewares import LatexDecodingMiddleware, SeparateCoAuthors, SplitNameParts

    library = bibtexparser.parse_string(
        text, append_middleware=[LatexDecodingMiddleware(), SeparateCoAuthors(), SplitNameParts()])
    refs: list[Reference] = []
    for block in library.blocks:
        line = (block.start_line or 0) + 1
        if isinstance(block, model.ParsingFailedBlock):
            err = block.error
            lines = [ln.strip() for ln in str(getattr(err, "abort_reason", None) or err or "").splitlines() if ln.strip()]
            reason = " ".join(lines) or "a syntax error"
            refs.append(Reference(label=f"record {len(refs) + 1} (line {line})", fmt="bibtex",
                                  error=f"bibtexparser could not read it ({reason[:160]})"))
            continue
        if not isinstance(block, model.Entry):  # @string, @preamble, @comment: not records
            continue
        refs.append(_bibtex_entry(block, f"record {len(refs) + 1} (line {line}, key {block.key})"))
    return refs


def _bibtex_entry(entry: Any, label: str) -> Reference:
    fields = {k.lower(): f.value for k, f in entry.fields_dict.items()}
    ref = Reference(label=label, fmt="bibtex", entry_type=entry.entry_type.lower())

    def text(key: str) -> str | None:
        value = fields.get(key)
        return _clean(str(value).replace("{", "").replace("}", "")) if isinstance(value, str) else None

    ref.title = text("title")
    names = fields.get("author") or []
    for name in names if isinstance(names, list) else []:
        last = " ".join([*getattr(name, "von", []), *getattr(name, "last", [])]).replace("{", "").replace("}", "")
        given = " ".join(getattr(name, "first", [])).replace("{", "").replace("}", "")
        if not last.strip():
            continue
        ref.surnames.append(" ".join(last.split()))
        ref.authors.append(author_style(last, given))
    ref.year = _year(fields.get("year"), fields.get("date"))
    ref.venue = text("journal") or text("journaltitle") or text("booktitle") or text("publisher") \
        or text("institution") or text("organization") or text("howpublished")
    urls = [u for u in (text("url"),) if u]
    _link(ref, text("doi"), urls)
    return ref


# ------------------------------------------------------------------------------------------------
# Drafts


@dataclass
class AddResult:
    """One line per record: ``status`` is written / duplicate / error."""

    ref: Reference
    status: Literal["written", "duplicate", "error"]
    path: Path | None = None
    card_id: str | None = None
    message: str = ""

    def line(self, corpus_dir: Path) -> str:
        who = f"{self.ref.label} {self.ref.short()}" if self.ref.error is None else self.ref.label
        if self.status == "written" and self.path is not None:
            return f"wrote   {_rel(self.path, corpus_dir)}  <- {who}"
        if self.status == "duplicate":
            return f"skipped {who}: duplicate of {self.card_id} ({self.message})"
        return f"error   {who}: {self.message}"


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


@dataclass
class _Known:
    ids: set[str] = field(default_factory=set)
    dois: dict[str, str] = field(default_factory=dict)  # lower-case DOI -> card id
    titles: dict[tuple[str, int], str] = field(default_factory=dict)  # (normalised title, year) -> card id

    def add(self, card_id: str, doi: Any, title: Any, year: Any) -> None:
        self.ids.add(card_id)
        if isinstance(doi, str) and doi.strip():
            self.dois.setdefault(bare_doi(doi).lower(), card_id)
        if isinstance(title, str) and isinstance(year, int) and not isinstance(year, bool):
            self.titles.setdefault((normalise_title(title), year), card_id)


def _known(corpus_dir: Path) -> _Known:
    """Ids, DOIs and titles of every card file, drafts and invalid cards included (read leniently)."""
    known = _Known()
    for path in card_files(corpus_dir):
        meta = front_matter(path) or {}
        known.ids.add(path.stem)
        raw_id = meta.get("id")
        card_id = raw_id if isinstance(raw_id, str) else path.stem
        known.add(card_id, meta.get("doi"), meta.get("title"), meta.get("year"))
    return known


def free_id(base: str, taken: set[str]) -> str:
    """``base`` when nothing uses it, else the next free a/b/c suffix (``byrne-2019`` → ``byrne-2019c``
    when ``byrne-2019`` and ``byrne-2019b`` exist)."""
    lettered = {t for t in taken if re.fullmatch(re.escape(base) + r"[a-z]", t)}
    if base not in taken and not lettered:
        return base
    for letter in "abcdefghijklmnopqrstuvwxyz":
        if letter == "a" and base in taken:
            continue  # the unsuffixed card is the first; the second is "b"
        if base + letter not in taken:
            return base + letter
    raise ValueError(f"no free id left for {base}")


def _fix_hint(ref: Reference, missing: str) -> str:
    if ref.fmt == "ris":
        tag = {"title": "a 'TI  - ' line", "year": "a 'PY  - ' line", "authors": "one 'AU  - Surname, Given' line per author"}
    else:
        tag = {"title": "a title = {...} field", "year": "a year = {...} field", "authors": "an author = {Surname, Given and ...} field"}
    return tag[missing]


def add_references(refs: Sequence[Reference], corpus_dir: Path, folder: Folder = "studies") -> list[AddResult]:
    """Write one draft card per usable record into ``corpus/<folder>/``; return one result per record."""
    if folder not in FOLDER_KIND:
        raise ValueError(f"folder must be one of {', '.join(FOLDER_KIND)}, got {folder!r}")
    corpus_dir = corpus_dir.resolve()
    known = _known(corpus_dir)
    results: list[AddResult] = []
    for ref in refs:
        if ref.error:
            results.append(AddResult(ref, "error", message=f"malformed: {ref.error}. Fix: correct the record in "
                                     "your reference manager and export it again; nothing was written for it"))
            continue
        missing = ref.missing()
        if missing:
            fixes = "; ".join(f"add {_fix_hint(ref, m)}" for m in missing)
            results.append(AddResult(ref, "error", message=f"no {', no '.join(missing)}. Fix: {fixes} (or complete "
                                     "the record in your reference manager) and run add again; nothing was written for it"))
            continue
        assert ref.title and ref.year is not None
        dup = None
        if ref.doi and ref.doi.lower() in known.dois:
            dup = (known.dois[ref.doi.lower()], f"same DOI {ref.doi}")
        elif (normalise_title(ref.title), ref.year) in known.titles:
            dup = (known.titles[(normalise_title(ref.title), ref.year)], f"same title and year {ref.year}")
        if dup:
            results.append(AddResult(ref, "duplicate", card_id=dup[0], message=dup[1]))
            continue
        card_id = free_id(card_id_base(ref.surnames[0], ref.year), known.ids)
        if not ID_RE.match(card_id):
            results.append(AddResult(ref, "error", message=f"no card id can be made from the first author "
                                     f"{ref.surnames[0]!r}. Fix: give the first author's surname in Latin letters"))
            continue
        path = corpus_dir / folder / f"{card_id}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "x", encoding="utf-8") as fh:  # never over an existing file
                fh.write(draft_text(ref, card_id, folder))
        except FileExistsError:
            results.append(AddResult(ref, "error", message=f"{_rel(path, corpus_dir)} already exists and was "
                                     "left as it is. Fix: rename or remove that file, then run add again"))
            continue
        known.add(card_id, ref.doi, ref.title, ref.year)
        known.ids.add(card_id)
        results.append(AddResult(ref, "written", path=path, card_id=card_id))
    return results


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def draft_text(ref: Reference, card_id: str, folder: Folder) -> str:
    """The draft card: what the record gives, filled in; the rest as the card guide's template."""
    kind = FOLDER_KIND[folder]
    todo = PLACEHOLDER
    lines = [
        "---",
        f"id: {card_id}",
        "status: draft                       # remove this line when the card is complete; only then is it indexed",
        f"kind: {kind}" + ("                         # or related-review for a review" if kind == "related-study" else ""),
        f"title: {_q(ref.title or '')}",
        f"authors: [{', '.join(_q(a) for a in ref.authors)}]",
        f"year: {ref.year}",
        f"venue: {_q(ref.venue) if ref.venue else _q(todo + ': journal or publisher')}",
    ]
    if ref.doi:
        lines.append(f"doi: {ref.doi}")
    if ref.url and not ref.doi:
        lines.append(f"url: {ref.url}")
    if kind == "guidance":
        lines += [f"document_type: {_q(todo + ': e.g. employer implementation guide')}",
                  f"published: {_q(todo + ': date as printed, e.g. 2016-03')}"]
    lines += [
        f"country: {todo}                       # plain country name (USA, UK, Canada, Australia, ...) or multiple",
        f"setting: {todo}",
        f"design: {todo}                        # qualitative | mixed methods | quantitative | ... then '; details'",
        f"participants: {todo}",
        ("review_inclusion: " + (f"{todo}               # probable | possible" if kind == "study" else "n/a")),
        "themes: []                          # theme ids from corpus/themes.yaml used by the strategies",
        "sources: []                         # https:// pages where you checked the facts (doi.org, PubMed, publisher)",
        "---",
        "## Summary",
        f"{todo}: two to five sentences in your own words: who, where, how, what was found.",
        "",
        "## Strategies",
        f"{todo}: one '### <theme-id>/<strategy-id>: <short imperative title>' section per strategy the study reports",
        "(ids from corpus/themes.yaml), two to four sentences each, naming the study's context in each sentence.",
        "",
        "## Caveats",
        f"{todo}: sample size, context, design limits, what is unverified.",
        "",
    ]
    return "\n".join(lines)


def read_references(path: Path, fmt: Literal["ris", "bibtex"]) -> list[Reference]:
    """Read an export file (UTF-8) in the given format."""
    text = path.read_text(encoding="utf-8-sig")
    return read_ris(text) if fmt == "ris" else read_bibtex(text)
