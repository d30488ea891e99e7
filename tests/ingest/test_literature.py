"""`peer-assist add`: draft cards from RIS and BibTeX exports, and drafts in validation.

The fixtures under tests/ingest/data/ hold real records (checked against their doi.org / PubMed
pages) and records whose titles start with "Test record:", which are fictitious.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.errors import CorpusError
from assistant.settings import Settings
from ingest.cards import load_corpus
from ingest.literature import ascii_fold, card_id_base, free_id, initials, read_bibtex, read_ris
from ingest.pipeline import run_ingest
from ingest.store import EvidenceStore
from tests.conftest import NoEmbedder
from tests.ingest.conftest import MINI_CARDS, copy_corpus, edit_card, ids_by_card

DATA = Path(__file__).parent / "data"
RIS = DATA / "new_literature.ris"
BIB = DATA / "new_literature.bib"
COMPLETED = DATA / "walker-2013.completed.md"

#: the mini corpus plus the card the Åkerblom records duplicate (by title and year: they have no DOI)
CARDS = (*MINI_CARDS, "related/akerblom-2023.md")

RIS_LINES = [
    "skipped record 1 (line 1) Gates & Akabas 2007: duplicate of gates-2007 (same DOI 10.1007/S10488-006-0109-4)",
    "wrote   corpus/studies/vandewalle-2016.md  <- record 2 (line 10) Vandewalle et al. 2016",
    "wrote   corpus/studies/mahlke-2014.md  <- record 3 (line 26) Mahlke et al. 2014",
    "wrote   corpus/studies/walker-2013.md  <- record 4 (line 41) Walker & Bryant 2013",
    "wrote   corpus/studies/lloyd-evans-2014.md  <- record 5 (line 52) Lloyd-Evans et al. 2014",
    "skipped record 6 (line 69) Åkerblom & Ness 2023: duplicate of akerblom-2023 (same title and year 2023)",
    "wrote   corpus/studies/muller-2021.md  <- record 7 (line 77) Müller & Tester 2021",
    "wrote   corpus/studies/muller-2021b.md  <- record 8 (line 86) Müller 2021",
    ("error   record 9 (line 94) Tester 2020: no title. Fix: add a 'TI  - ' line (or complete the record in your "
     "reference manager) and run add again; nothing was written for it"),
    ("error   record 10 (line 101) Test record: a fictitious report with no year and no authors: no year, no authors. "
     "Fix: add a 'PY  - ' line; add one 'AU  - Surname, Given' line per author (or complete the record in your "
     "reference manager) and run add again; nothing was written for it"),
    ("error   record 11 (line 107): malformed: it does not start with a 'TY  -' line (first line: 'TI  - Test record: "
     "a fragment pasted wit'). Fix: correct the record in your reference manager and export it again; nothing was "
     "written for it"),
    "11 records: 6 draft(s) written, 2 duplicate(s) skipped, 3 bad record(s) with nothing written.",
]
RIS_WRITTEN = {"vandewalle-2016", "mahlke-2014", "walker-2013", "lloyd-evans-2014", "muller-2021", "muller-2021b"}
BIB_WRITTEN = {"maclellan-2015", "mahlke-2014", "lloyd-evans-2014", "walker-2013", "odegard-2022", "muller-2021"}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return copy_corpus(tmp_path / "corpus", CARDS)


def add(corpus: Path, *args: str) -> int:
    return main(["add", "--corpus", str(corpus), *args])


def files(corpus: Path) -> dict[str, bytes]:
    return {str(p.relative_to(corpus)): p.read_bytes() for p in sorted(corpus.rglob("*.md"))}


# ------------------------------------------------------------------------------------------------
# Names and ids


@pytest.mark.parametrize(("name", "folded"), [("Åkerblom", "Akerblom"), ("Müller", "Muller"), ("Ødegård", "Odegard"),
                                              ("Łukasz Straße", "Lukasz Strasse"), ("Gates", "Gates")])
def test_ascii_fold(name: str, folded: str) -> None:
    assert ascii_fold(name) == folded


@pytest.mark.parametrize(("surname", "year", "card_id"), [
    ("Åkerblom", 2023, "akerblom-2023"), ("Müller", 2021, "muller-2021"), ("Lloyd-Evans", 2014, "lloyd-evans-2014"),
    ("Van Hecke", 2016, "vanhecke-2016"), ("O'Hagan", 2011, "ohagan-2011")])
def test_card_id_base(surname: str, year: int, card_id: str) -> None:
    assert card_id_base(surname, year) == card_id


def test_free_id_adds_the_next_letter() -> None:
    assert free_id("smith-2020", set()) == "smith-2020"
    assert free_id("smith-2020", {"smith-2020"}) == "smith-2020b"
    assert free_id("byrne-2019", {"byrne-2019", "byrne-2019b"}) == "byrne-2019c"
    assert free_id("gillard-2015", {"gillard-2015a", "gillard-2015b"}) == "gillard-2015c"


@pytest.mark.parametrize(("given", "expected"), [("Lauren B.", "L. B."), ("Kristina Bakke", "K. B."),
                                                 ("Anna-Lena", "A.-L."), ("HR", "H. R."), ("", "")])
def test_initials(given: str, expected: str) -> None:
    assert initials(given) == expected


# ------------------------------------------------------------------------------------------------
# Reading the exports


def test_ris_records_are_read_with_rispy() -> None:
    refs = read_ris(RIS.read_text(encoding="utf-8"))
    assert len(refs) == 11
    mahlke = refs[2]
    assert mahlke.authors == ["Mahlke, C. I.", "Krämer, U. M.", "Becker, T.", "Bock, T."]
    assert (mahlke.year, mahlke.doi, mahlke.venue) == (2014, "10.1097/YCO.0000000000000074", "Current Opinion in Psychiatry")
    walker = refs[3]
    assert walker.doi is None and walker.url == "https://pubmed.ncbi.nlm.nih.gov/23477647/"
    assert refs[10].error and "TY" in refs[10].error


def test_bibtex_entries_are_read_with_bibtexparser() -> None:
    refs = read_bibtex(BIB.read_text(encoding="utf-8"))
    assert len(refs) == 11
    assert refs[0].doi == "10.1007/S10488-006-0109-4"  # https://doi.org/ prefix removed
    assert refs[2].authors[1] == "Krämer, U. M."  # LaTeX accent decoded
    assert refs[5].authors[0] == "Ødegård, S."
    assert refs[9].error and "bibtexparser could not read it" in refs[9].error


# ------------------------------------------------------------------------------------------------
# add


def test_add_ris_writes_one_draft_per_new_record(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = files(corpus)
    assert add(corpus, "--ris", str(RIS)) == 1  # bad records: exit 1, the good ones are still written
    out = capsys.readouterr().out.splitlines()
    assert out[:len(RIS_LINES)] == RIS_LINES
    assert out[-1].startswith("Next: complete each draft")
    after = files(corpus)
    assert {k: v for k, v in after.items() if k in before} == before, "no existing card touched"
    assert {Path(k).stem for k in set(after) - set(before)} == RIS_WRITTEN
    assert all(k.startswith("studies/") for k in set(after) - set(before))

    text = (corpus / "studies" / "mahlke-2014.md").read_text(encoding="utf-8")
    assert "id: mahlke-2014\nstatus: draft" in text
    assert 'authors: ["Mahlke, C. I.", "Krämer, U. M.", "Becker, T.", "Bock, T."]' in text
    assert "year: 2014\n" in text and "doi: 10.1097/YCO.0000000000000074\n" in text
    assert 'venue: "Current Opinion in Psychiatry"' in text and "kind: study" in text
    for heading in ("## Summary", "## Strategies", "## Caveats"):
        assert heading in text
    walker = (corpus / "studies" / "walker-2013.md").read_text(encoding="utf-8")
    assert "url: https://pubmed.ncbi.nlm.nih.gov/23477647/" in walker and "doi:" not in walker

    # The drafts leave the real cards valid and stay out of them.
    loaded = load_corpus(corpus)
    assert {c.id for c in loaded.cards} == {Path(r).stem for r in CARDS}
    assert {d.id for d in loaded.drafts} == RIS_WRITTEN


def test_add_bibtex_writes_one_draft_per_new_record(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert add(corpus, "--bibtex", str(BIB)) == 1
    out = capsys.readouterr().out
    assert "skipped record 1 (line 4, key gates2007) Gates & Akabas 2007: duplicate of gates-2007" in out
    assert "skipped record 7 (line 61, key akerblom2023) Åkerblom & Ness 2023: duplicate of akerblom-2023 (same title" in out
    assert "wrote   corpus/studies/odegard-2022.md  <- record 6 (line 53, key odegard2022) Ødegård & Tester 2022" in out
    assert "error   record 8 (line 68, key noyear) Tester n.d.: no year. Fix: add a year = {...} field" in out
    assert "error   record 9 (line 75, key noauthor)" in out and "no authors. Fix: add an author = {" in out
    assert "error   record 10 (line 81): malformed: bibtexparser could not read it" in out
    assert "11 records: 6 draft(s) written, 2 duplicate(s) skipped, 3 bad record(s) with nothing written." in out
    assert {d.id for d in load_corpus(corpus).drafts} == BIB_WRITTEN
    assert "doi: 10.1007" not in (corpus / "studies" / "maclellan-2015.md").read_text(encoding="utf-8")


def test_second_run_and_second_file_skip_the_drafts_already_written(corpus: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    add(corpus, "--ris", str(RIS))
    written = files(corpus)
    capsys.readouterr()
    assert add(corpus, "--ris", str(RIS)) == 1
    out = capsys.readouterr().out
    assert "0 draft(s) written, 8 duplicate(s) skipped, 3 bad record(s)" in out
    assert "duplicate of muller-2021b (same title and year 2021)" in out
    assert files(corpus) == written, "never overwritten, never duplicated"
    add(corpus, "--bibtex", str(BIB))
    out = capsys.readouterr().out
    assert "duplicate of mahlke-2014 (same DOI" in out and "duplicate of walker-2013 (same title and year 2013)" in out
    assert "wrote   corpus/studies/maclellan-2015.md" in out and "wrote   corpus/studies/odegard-2022.md" in out


def test_folder_flag_and_a_clean_file_exits_0(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "one.ris"
    good.write_text(RIS.read_text(encoding="utf-8").split("\n\n")[1] + "\n", encoding="utf-8")  # Vandewalle only
    assert add(corpus, "--ris", str(good), "--folder", "related") == 0
    out = capsys.readouterr().out
    assert "wrote   corpus/related/vandewalle-2016.md" in out
    text = (corpus / "related" / "vandewalle-2016.md").read_text(encoding="utf-8")
    assert "kind: related-study" in text and "review_inclusion: n/a" in text
    assert add(corpus, "--ris", str(good), "--folder", "guidance") == 0
    assert "duplicate of vandewalle-2016" in capsys.readouterr().out


def test_unreadable_or_empty_export_is_a_friendly_error(corpus: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert add(corpus, "--ris", str(tmp_path / "missing.ris")) == 1
    assert "Cannot read" in capsys.readouterr().err
    empty = tmp_path / "empty.bib"
    empty.write_text("% nothing here\n", encoding="utf-8")
    assert add(corpus, "--bibtex", str(empty)) == 1
    assert "No records found" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# Drafts in validation


def test_validate_lists_what_each_draft_lacks(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add(corpus, "--ris", str(RIS))
    capsys.readouterr()
    assert main(["validate", "--corpus", str(corpus)]) == 0, "drafts are warnings, not failures"
    out = capsys.readouterr().out
    block = out.split("warning: draft studies/mahlke-2014.md is not indexed; it still lacks:\n", 1)[1].split("warning:")[0]
    assert block.splitlines() == [
        "  - fields to fill in: country, setting, design, participants, review_inclusion, themes, sources",
        "  - template text left in: Summary, Strategies, Caveats (replace TODO with the card's own words)",
        "  - no strategy: add '### <theme-id>/<strategy-id>: <title>' sections under '## Strategies'",
    ]
    assert out.count("is not indexed; it still lacks:") == len(RIS_WRITTEN)
    assert out.strip().endswith(f"OK: {len(CARDS)} cards in {corpus} are valid; {len(RIS_WRITTEN)} draft(s) not "
                                "indexed (warnings above).")


def test_partly_completed_draft_lists_only_what_is_left(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add(corpus, "--ris", str(RIS))
    path = corpus / "studies" / "walker-2013.md"
    done = COMPLETED.read_text(encoding="utf-8").replace("kind: related-review", "status: draft\nkind: related-review")
    done = done.replace("### support-development/supervision:", "### support-development/no-such-strategy:")
    path.write_text(done.replace("country: multiple\n", "country: TODO\n"), encoding="utf-8")
    capsys.readouterr()
    assert main(["validate", "--corpus", str(corpus)]) == 0
    out = capsys.readouterr().out
    block = out.split("warning: draft studies/walker-2013.md is not indexed; it still lacks:\n", 1)[1].split("warning:")[0]
    lines = [line for line in block.splitlines() if line.startswith("  - ")]
    assert lines[0] == "  - fields to fill in: country"
    assert "unknown strategy id 'no-such-strategy'" in lines[1] and len(lines) == 2


def test_completed_draft_without_status_is_a_card(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add(corpus, "--ris", str(RIS))
    (corpus / "studies" / "walker-2013.md").unlink()
    (corpus / "related" / "walker-2013.md").write_text(COMPLETED.read_text(encoding="utf-8"), encoding="utf-8")
    loaded = load_corpus(corpus)
    assert "walker-2013" in {c.id for c in loaded.cards}
    assert "walker-2013" not in {d.id for d in loaded.drafts}


def test_removing_status_too_early_fails_validation_with_the_template_text(corpus: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    add(corpus, "--ris", str(RIS))
    edit_card(corpus / "studies" / "mahlke-2014.md", "status: draft", "")
    with pytest.raises(CorpusError) as exc:
        load_corpus(corpus)
    text = "\n".join(str(p) for p in exc.value.problems)
    assert all(p.file == "studies/mahlke-2014.md" for p in exc.value.problems), "only that card fails"
    assert "[section 'Summary'] still holds template text" in text
    assert "[country] still holds template text" in text and "[venue]" not in text
    assert "[design]" in text and "[themes]" in text and "has no strategy" in text


def test_status_accepts_only_draft(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit_card(corpus / "studies" / "gates-2007.md", "kind: study", "status: done\nkind: study")
    assert main(["validate", "--corpus", str(corpus)]) == 1
    assert "studies/gates-2007.md: [status] unknown value 'done'" in capsys.readouterr().err


def test_draft_reusing_a_card_id_or_doi_says_so(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gates = (corpus / "studies" / "gates-2007.md").read_text(encoding="utf-8")
    (corpus / "related" / "gates-2007.md").write_text(gates.replace("kind: study", "status: draft\nkind: study"),
                                                      encoding="utf-8")
    loaded = load_corpus(corpus)
    (draft,) = loaded.drafts
    lacks = "\n".join(draft.lacks())
    assert "'gates-2007' is already used by studies/gates-2007.md" in lacks
    assert "is already the DOI of gates-2007" in lacks


# ------------------------------------------------------------------------------------------------
# The whole workflow: add → drafts not indexed → complete one → ingest → answer diff


GOLD_IDS = ("a001", "a072", "a073", "a082", "a084", "a115", "c001")


@pytest.fixture
def small_gold(tmp_path: Path) -> Path:
    """A few gold questions (answerable ones on pay and supervision, one unrelated, one with history, one crisis)."""
    from evals.run import GOLD

    rows = [line for line in GOLD.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["id"] in GOLD_IDS]
    assert len(rows) == len(GOLD_IDS)
    # One question that names the new card's authors, so its answer must cite the card once it is indexed
    # (named studies come first), whatever the embedder.
    rows.append(json.dumps({"id": "a900", "split": "test", "type": "answerable", "history": [],
                            "question": "What did Walker and Bryant find about peer support workers?",
                            "expected_themes": ["support-development"], "expected_cards": ["walker-2013"]}))
    path = tmp_path / "gold.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded on a run that changed no card")

    monkeypatch.setattr("ingest.embedding.get_embedder", refuse)


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_add_complete_ingest_and_answer_diff(indexed_settings: Settings, small_gold: Path, hash_env: None,
                                             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    settings = indexed_settings
    corpus, index_dir = settings.index.corpus_dir, settings.index.index_dir
    ingest = ["ingest", "--corpus", str(corpus), "--index-dir", str(index_dir), "--gold", str(small_gold)]
    ids_before = EvidenceStore(settings).ids()

    # 1. Drafts are written and never indexed; with no card changed nothing is loaded or asked.
    assert add(corpus, "--ris", str(RIS)) == 1
    capsys.readouterr()
    with monkeypatch.context() as m:
        no_model(m)
        assert main(ingest) == 0
    out = capsys.readouterr().out
    assert f"drafts: {len(RIS_WRITTEN)} skipped (status: draft, not indexed): " + ", ".join(sorted(RIS_WRITTEN)) in out
    assert "Answer diff" not in out
    assert EvidenceStore(settings).ids() == ids_before
    assert not (index_dir / "gold_answers.json").exists()
    assert main([*ingest, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["drafts_skipped"] == len(RIS_WRITTEN) and data["drafts"] == sorted(RIS_WRITTEN)
    assert data["answer_diff"] is None and data["model_loaded"] is False

    # 2. Complete one draft (status removed, fields filled, moved to related/ as a review): it is indexed
    # and the answer diff names the gold answers that now cite it.
    (corpus / "studies" / "walker-2013.md").unlink()
    (corpus / "related" / "walker-2013.md").write_text(COMPLETED.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(ingest) == 0
    out = capsys.readouterr().out
    assert "added: walker-2013" in out and f"drafts: {len(RIS_WRITTEN) - 1} skipped" in out
    diff = out.split("Answer diff on the gold questions (cards added walker-2013): ", 1)[1].splitlines()
    assert "of 7 answerable questions draw on them and were asked again" in diff[0]
    assert "first, with no earlier record, the 7 answers of the previous index were recorded" in diff[0]
    cites_new = [line for line in diff[1:] if "now cites walker-2013" in line]
    assert cites_new, out
    assert all(line.startswith(("  a0", "  a1", "  a9")) for line in diff[1:])
    assert {c for c in ids_by_card(settings)} >= {"walker-2013"}
    record = json.loads((index_dir / "gold_answers.json").read_text(encoding="utf-8"))
    assert set(record["answers"]) == {i for i in GOLD_IDS if i.startswith("a")} | {"a900"}
    assert "walker-2013" in record["cards"]
    now_citing = {i for i, a in record["answers"].items() if "walker-2013" in a["cited"]}
    assert {line.split(":")[0].strip() for line in cites_new} <= now_citing

    # 3. An unchanged reindex loads no model, asks nothing and leaves the record alone.
    before = (index_dir / "gold_answers.json").read_bytes()
    with monkeypatch.context() as m:
        no_model(m)
        monkeypatch_ask = []
        m.setattr("assistant.chat.Assistant.ask", lambda *a, **k: monkeypatch_ask.append(a) or None)
        assert main(ingest) == 0
        assert run_ingest(settings, embedder=NoEmbedder()).model_loaded is False
    assert not monkeypatch_ask
    assert "Answer diff" not in capsys.readouterr().out
    assert (index_dir / "gold_answers.json").read_bytes() == before

    # 4. Editing the new card re-asks only the questions whose evidence includes it.
    edit_card(corpus / "related" / "walker-2013.md", "low pay and limited hours.", "low pay and few hours of work.")
    asked: list[str] = []
    from assistant.chat import Assistant

    real_ask = Assistant.ask

    def counting_ask(self: Assistant, question: str, *args: object, **kwargs: object) -> object:
        asked.append(question)
        return real_ask(self, question, *args, **kwargs)

    monkeypatch.setattr(Assistant, "ask", counting_ask)
    assert main([*ingest, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    touching = {i for i, a in record["answers"].items() if "walker-2013" in a["cited"] + a["retrieved"]}
    assert data["changes"]["updated"] == ["walker-2013"]
    assert data["answer_diff"]["cards"]["updated"] == ["walker-2013"]
    assert data["answer_diff"]["affected"] == len(asked) >= len(touching) > 0
    assert len(asked) < 7 or touching == {i for i in GOLD_IDS if i.startswith("a")} | {"a900"}

    # 5. --no-diff skips it.
    edit_card(corpus / "related" / "walker-2013.md", "few hours of work.", "limited hours.")
    asked.clear()
    assert main([*ingest, "--no-diff"]) == 0
    assert "Answer diff" not in capsys.readouterr().out and not asked
