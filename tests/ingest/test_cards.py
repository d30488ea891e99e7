"""Card validation: every kind of bad card is reported with its file and field, by `validate` and by
`ingest`, and a bad card never touches the index."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from assistant.cli import main
from assistant.errors import CorpusError
from assistant.settings import Settings
from ingest.cards import Problem, load_corpus, safe_yaml
from ingest.store import EvidenceStore
from tests.conftest import CORPUS
from tests.ingest.conftest import (
    GOOD_BODY,
    GOOD_FRONT,
    GOOD_ID,
    GOOD_REL,
    MINI_CARDS,
    card_text,
    collection_names,
    manifest_snapshot,
    write_card,
)

PROBLEM_LINE = re.compile(r"^(?P<file>\S+\.md): \[(?P<field>[^\]]*)\] (?P<rest>.*)$")

BILLION_LAUGHS = "".join(
    [f'lol0: &lol0 "{"lol" * 10}"\n']
    + [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]\n" for i in range(1, 10)]
)


def _body(old: str, new: str) -> str:
    assert old in GOOD_BODY
    return GOOD_BODY.replace(old, new, 1)


@dataclass(frozen=True)
class Bad:
    """One bad card: where it goes, what it holds, and the problem line it must produce."""

    name: str
    content: str | bytes | None  # None: an unreadable path (a directory named *.md)
    field: str  # the field shown in [brackets]; a prefix is enough for headings and sections
    fragment: str  # a piece of the message
    rel: str = GOOD_REL  # where the bad card is written
    reported: str = GOOD_REL  # the file the problem line names


GOOD_TEXT = card_text()

BAD_CARDS = [
    Bad("non-utf8", GOOD_TEXT.encode("utf-8").replace(b"Smith and Jones interviewed", b"Smith \xff\xfe Jones"),
        "file", "not valid UTF-8"),
    Bad("latin-1", GOOD_TEXT.replace("Smith and Jones", "Smíth and Jones").encode("latin-1"), "file", "UTF-8"),
    Bad("unreadable", None, "file", "cannot be read"),
    Bad("nul-bytes", GOOD_TEXT.replace("One small", "One\x00small"), "file", "NUL"),
    Bad("missing-front-matter", GOOD_BODY, "front matter", "is missing"),
    Bad("unclosed-front-matter", GOOD_TEXT.replace("\n---\n## Summary", "\n## Summary", 1), "front matter",
        "not closed"),
    Bad("broken-yaml", card_text({"title": "[unclosed, list"}), "front matter", "not valid YAML"),
    Bad("unquoted-colon", card_text({"title": "Peer work: a study: of colons"}), "front matter", "not valid YAML"),
    Bad("front-matter-list", "---\n- id\n- kind\n---\n" + GOOD_BODY, "front matter", "mapping"),
    Bad("front-matter-scalar", "---\njust a sentence\n---\n" + GOOD_BODY, "front matter", "mapping"),
    Bad("missing-venue", card_text(drop=("venue",)), "venue", "is missing"),
    Bad("missing-themes", card_text(drop=("themes",)), "themes", "is missing"),
    Bad("missing-id", card_text(drop=("id",)), "id", "is missing"),
    Bad("missing-doi-and-url", card_text(drop=("doi",)), "doi", "neither"),
    Bad("authors-string", card_text({"authors": "Smith, A. B. and Jones, C."}), "authors", "list"),
    Bad("year-string", card_text({"year": '"2020"'}), "year", "whole number"),
    Bad("year-float", card_text({"year": "2020.5"}), "year", "whole number"),
    Bad("title-list", card_text({"title": "[one, two]"}), "title", "non-empty text"),
    Bad("themes-string", card_text({"themes": "organizational-preparation"}), "themes", "list"),
    Bad("unknown-kind", card_text({"kind": "editorial"}), "kind", "unknown kind 'editorial'"),
    Bad("unknown-theme", card_text({"themes": "[organizational-preparation, support-development, peer-magic]"}),
        "themes", "unknown theme id 'peer-magic'"),
    Bad("strategy-theme-not-listed", card_text({"themes": "[organizational-preparation]"}), "themes",
        "'support-development' is not listed"),
    Bad("duplicate-id", card_text({"id": "gates-2007", "kind": "related-study", "review_inclusion": "n/a"}),
        "id", "already used by related/gates-2007.md", rel="related/gates-2007.md", reported="studies/gates-2007.md"),
    Bad("duplicate-doi", card_text({"doi": "10.1007/s10488-006-0109-4"}), "doi", "already used"),
    Bad("id-not-file-name", card_text({"id": "othercard-2020"}), "id", "does not match the file name"),
    Bad("id-format", card_text({"id": "NewCard2020"}), "id", "lowercase ASCII"),
    Bad("doi-as-url", card_text({"doi": "https://doi.org/10.9999/newcard.2020"}), "doi", "is not a DOI"),
    Bad("doi-garbage", card_text({"doi": "not-a-doi"}), "doi", "is not a DOI"),
    Bad("year-too-old", card_text({"year": "1800"}), "year", "out of range"),
    Bad("year-future", card_text({"year": "2999"}), "year", "out of range"),
    Bad("empty-body", card_text(body=""), "body", "is empty"),
    Bad("blank-body", card_text(body="\n   \n\n"), "body", "is empty"),
    Bad("no-summary", card_text(body="## Strategies" + GOOD_BODY.split("## Strategies", 1)[1]), "body",
        "Summary"),
    Bad("empty-section", card_text(body=_body("One small qualitative study in a single trust; findings may not "
                                              "transfer.\n", "")), "section 'Caveats'", "is empty"),
    Bad("heading-unknown-theme", card_text(body=_body("### organizational-preparation/policies:",
                                                      "### peer-magic/policies:")),
        "heading 'peer-magic/policies", "unknown theme id 'peer-magic'"),
    Bad("heading-without-theme", card_text(body=_body("### organizational-preparation/policies: ", "### ")),
        "heading 'Put confidentiality", "must read"),
    Bad("heading-unknown-strategy", card_text(body=_body("organizational-preparation/policies:",
                                                         "organizational-preparation/free-lunch:")),
        "heading 'organizational-preparation/free-lunch", "unknown strategy id 'free-lunch'"),
    Bad("oversized", card_text(body=GOOD_BODY + "\n" + "Padding about peer work in one trust. " * 2000),
        "file", "over the 64,000-byte limit"),
    Bad("billion-laughs", card_text(extra=BILLION_LAUGHS), "front matter", "anchors are not allowed"),
    Bad("alias", card_text(extra="country_again: *country\n"), "front matter", "aliases are not allowed"),
    Bad("unknown-field", card_text(extra="reviewer: Dr Who\n"), "reviewer", "not a known field"),
    Bad("bad-inclusion", card_text({"review_inclusion": "n/a"}), "review_inclusion", "study card"),
    Bad("unknown-design", card_text({"design": "vibes; a hunch"}), "design", "known design type"),
    Bad("source-not-url", card_text({"sources": '["a library shelf"]'}), "sources", "not an http(s) URL"),
]


def problem_lines(stderr: str) -> list[re.Match[str]]:
    return [m for m in map(PROBLEM_LINE.match, stderr.splitlines()) if m]


def assert_reported(stderr: str, bad: Bad) -> None:
    lines = problem_lines(stderr)
    assert lines, f"no problem lines in stderr:\n{stderr}"
    assert {m["file"] for m in lines} <= {bad.reported, bad.rel}, f"other files blamed:\n{stderr}"
    hits = [m for m in lines if m["file"] == bad.reported and m["field"].startswith(bad.field)]
    assert hits, f"no line names {bad.reported} and field [{bad.field}...]:\n{stderr}"
    assert any(bad.fragment in m["rest"] for m in hits), f"{bad.fragment!r} not in:\n{stderr}"
    assert all("Fix: " in m["rest"] for m in lines), "every problem says how to fix it"
    assert f"{len(lines)} problem(s) found in the corpus." in stderr


@pytest.fixture(autouse=True)
def _env(hash_env: None) -> None:
    """Every CLI run here sees only the hash embedder in the environment."""


# ------------------------------------------------------------------------------------------------
# The baseline: the real corpus and the good card are valid, so each failure below is the mutation's.
# (The per-kind tests run on a slice of the corpus, MINI_CARDS; the cross-card tests on all of it.)


@pytest.mark.parametrize("which", ["full", "mini"])
def test_corpus_and_good_card_are_valid(which: str, corpus_copy: Path, mini_corpus: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    corpus = corpus_copy if which == "full" else mini_corpus
    n_cards = len(load_corpus(corpus).cards)
    assert n_cards == (len(MINI_CARDS) if which == "mini" else len(list(CORPUS.rglob("*.md"))))
    write_card(corpus, GOOD_REL, GOOD_TEXT)
    assert main(["validate", "--corpus", str(corpus)]) == 0
    out, err = capsys.readouterr()
    assert f"OK: {n_cards + 1} cards" in out
    assert err == ""
    card = load_corpus(corpus).by_id()[GOOD_ID]
    assert (card.title, card.year, card.doi) == (GOOD_FRONT["title"], 2020, GOOD_FRONT["doi"])
    assert [s.name for s in card.sections] == ["summary", "strategy", "strategy", "caveats"]


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
@pytest.mark.parametrize("bad", BAD_CARDS, ids=lambda b: b.name)
def test_validate_reports_file_and_field(bad: Bad, mini_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_card(mini_corpus, bad.rel, bad.content)
    assert main(["validate", "--corpus", str(mini_corpus)]) == 1
    out, err = capsys.readouterr()
    assert "OK:" not in out
    assert "Traceback" not in err
    assert_reported(err, bad)


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
@pytest.mark.parametrize("bad", BAD_CARDS, ids=lambda b: b.name)
def test_bad_card_never_touches_the_index(bad: Bad, mini_indexed_settings: Settings,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    settings = mini_indexed_settings
    store = EvidenceStore(settings)
    ids_before, count_before = store.ids(), store.count()
    collections_before, manifest_before = collection_names(settings), manifest_snapshot(settings)
    assert count_before == len(ids_before) > 0 and manifest_before is not None

    write_card(settings.index.corpus_dir, bad.rel, bad.content)
    code = main(["ingest", "--corpus", str(settings.index.corpus_dir), "--index-dir", str(settings.index.index_dir)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Indexed" not in out
    assert_reported(err, bad)

    store = EvidenceStore(settings)
    assert store.count() == count_before
    assert store.ids() == ids_before
    assert collection_names(settings) == collections_before
    assert manifest_snapshot(settings) == manifest_before


def test_several_bad_cards_are_all_reported_in_one_run(corpus_copy: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    bad_files = {
        "studies/alpha-2020.md": card_text({"id": "alpha-2020", "doi": "10.9999/a", "year": '"2020"'}),
        "studies/beta-2020.md": card_text({"id": "beta-2020", "doi": "10.9999/b", "kind": "editorial"}),
        "related/gamma-2021.md": card_text({"id": "gamma-2021", "doi": "10.9999/c"}, extra="reviewer: x\n"),
        "review/delta-2022.md": b"---\nid: delta-2022\n\xff\n---\n",
        "studies/epsilon-2020.md": card_text({"id": "epsilon-2020", "doi": "10.9999/e"}, body=""),
    }
    for rel, content in bad_files.items():
        write_card(corpus_copy, rel, content)
    # One card with two problems at once: both are listed.
    write_card(corpus_copy, "studies/zeta-2020.md",
               card_text({"id": "zeta-2020", "doi": "10.9999/z", "year": "1800"}, drop=("venue",)))

    assert main(["validate", "--corpus", str(corpus_copy)]) == 1
    _, err = capsys.readouterr()
    lines = problem_lines(err)
    assert len(lines) == 7, err
    assert {m["file"] for m in lines} == set(bad_files) | {"studies/zeta-2020.md"}
    assert {(m["file"], m["field"]) for m in lines} == {
        ("studies/alpha-2020.md", "year"), ("studies/beta-2020.md", "kind"), ("related/gamma-2021.md", "reviewer"),
        ("review/delta-2022.md", "file"), ("studies/epsilon-2020.md", "body"),
        ("studies/zeta-2020.md", "venue"), ("studies/zeta-2020.md", "year"),
    }
    assert "7 problem(s) found in the corpus." in err

    with pytest.raises(CorpusError) as info:
        load_corpus(corpus_copy)
    assert len(info.value.problems) == 7
    assert all(isinstance(p, Problem) and p.file and p.field and p.message and p.fix for p in info.value.problems)


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_run_ingest_raises_corpus_error_before_writing(indexed_settings: Settings) -> None:
    from ingest.pipeline import run_ingest

    settings = indexed_settings
    before = EvidenceStore(settings).ids()
    write_card(settings.index.corpus_dir, GOOD_REL, card_text({"kind": "editorial"}))
    # Also change a valid card: even its passages must not be written while another card is bad.
    path = settings.index.corpus_dir / "studies" / "gates-2007.md"
    path.write_text(path.read_text(encoding="utf-8").replace("Qualitative study in one US city",
                                                             "Qualitative study in a single US city"),
                    encoding="utf-8")
    for kwargs in ({}, {"full": True}, {"dry_run": True}):
        with pytest.raises(CorpusError) as info:
            run_ingest(settings, **kwargs)
        assert [(p.file, p.field) for p in info.value.problems] == [(GOOD_REL, "kind")]
    assert EvidenceStore(settings).ids() == before


def test_max_card_bytes_setting_is_the_limit(corpus_copy: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.settings import get_settings

    largest = max(p.stat().st_size for p in corpus_copy.rglob("*.md"))
    padding = "Padding about peer work in one trust. " * (largest // 38 + 10)
    text = card_text(body=GOOD_BODY + "\n" + padding + "\n")
    write_card(corpus_copy, GOOD_REL, text)
    size = len(text.encode("utf-8"))
    assert size > largest
    monkeypatch.setenv("PEER_ASSIST_MAX_CARD_BYTES", str(size - 1))
    get_settings.cache_clear()
    assert main(["validate", "--corpus", str(corpus_copy)]) == 1
    _, err = capsys.readouterr()
    assert [(m["file"], m["field"]) for m in problem_lines(err)] == [(GOOD_REL, "file")]
    assert f"is {size:,} bytes, over the {size - 1:,}-byte limit" in err

    monkeypatch.setenv("PEER_ASSIST_MAX_CARD_BYTES", str(size))
    get_settings.cache_clear()
    assert main(["validate", "--corpus", str(corpus_copy)]) == 0


# ------------------------------------------------------------------------------------------------
# The YAML loader itself


def test_billion_laughs_is_refused_quickly() -> None:
    start = time.perf_counter()
    with pytest.raises(yaml.YAMLError, match="anchors are not allowed"):
        safe_yaml(BILLION_LAUGHS)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("text, message", [
    ("a: &x 1\nb: 2\n", "anchors are not allowed"),
    ("a: 1\nb: *x\n", "aliases are not allowed"),
    ("base: &b {k: 1}\nother:\n  <<: *b\n", "anchors are not allowed"),
])
def test_safe_yaml_refuses_anchors_and_aliases(text: str, message: str) -> None:
    with pytest.raises(yaml.YAMLError, match=message):
        safe_yaml(text)


def test_safe_yaml_does_not_build_python_objects() -> None:
    with pytest.raises(yaml.YAMLError):
        safe_yaml("x: !!python/object/apply:os.system ['true']\n")
    assert safe_yaml("a: [1, two]\nb: {c: 3}\n") == {"a": [1, "two"], "b": {"c": 3}}


# ------------------------------------------------------------------------------------------------
# Regression tests for product bugs found while writing this suite (now fixed)


def test_empty_front_matter_is_not_reported_as_unclosed(mini_corpus: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    write_card(mini_corpus, GOOD_REL, "---\n---\n" + GOOD_BODY)
    assert main(["validate", "--corpus", str(mini_corpus)]) == 1
    err = capsys.readouterr().err
    assert "not closed" not in err
    assert any(m["file"] == GOOD_REL and m["field"] == "front matter" for m in problem_lines(err))


def test_duplicate_front_matter_key_is_reported(mini_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_card(mini_corpus, GOOD_REL, card_text(extra="year: 1999\n"))
    assert main(["validate", "--corpus", str(mini_corpus)]) == 1
    err = capsys.readouterr().err
    assert any(m["file"] == GOOD_REL and m["field"] in ("year", "front matter") for m in problem_lines(err)), err
