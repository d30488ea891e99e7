"""The reindex job with the hash embedder: incremental runs, reports, dry runs, rebuilds, the writer
lock and recovery from an interrupted run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import pytest

from assistant.cli import main
from ingest.embedding import HashEmbedder
from assistant.errors import CorpusError, IndexBusyError
from assistant.settings import Settings
from ingest.pipeline import index_is_built, read_manifest, run_ingest, writer_lock
from ingest.store import EvidenceStore
from tests.conftest import NoEmbedder
from tests.ingest.conftest import (
    GOOD_BODY,
    GOOD_ID,
    GOOD_REL,
    card_text,
    collection_names,
    edit_card,
    expected_ids,
    ids_by_card,
    manifest,
    manifest_snapshot,
    write_card,
)

EDITED, DELETED = "gates-2007", "chinman-2008"
EDITED_PATH, DELETED_PATH = "studies/gates-2007.md", "studies/chinman-2008.md"
OLD_SENTENCE = "Qualitative study in one US city"
NEW_SENTENCE = "Qualitative study in a single US city"


class FlakyEmbedder(HashEmbedder):
    """The hash embedder that dies on its n-th batch, like a run killed halfway through."""

    def __init__(self, fail_on_call: int = 2) -> None:
        super().__init__(64)
        self.calls = 0
        self.embedded = 0
        self.fail_on_call = fail_on_call

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("simulated crash while embedding")
        self.embedded += len(texts)
        return super().embed_documents(texts)


def ingest_cli(settings: Settings, *flags: str) -> list[str]:
    return ["ingest", "--corpus", str(settings.index.corpus_dir), "--index-dir", str(settings.index.index_dir), *flags]


def record_keys(settings: Settings, collection: str | None = None) -> list[str]:
    return EvidenceStore(settings, collection_name=collection).record_manager().list_keys()


def assert_converged(settings: Settings) -> None:
    """Collection ids == record-manager keys == the corpus's passage ids, with no duplicates."""
    store = EvidenceStore(settings)
    ids, keys = store.ids(), record_keys(settings)
    expected = expected_ids(settings)
    assert ids == expected
    assert len(keys) == len(set(keys)) and set(keys) == expected
    assert store.count() == len(expected)
    state = manifest(settings)
    assert state["state"] == "complete" and state["collection"] == settings.index.collection_name()
    assert {pid for c in state["cards"].values() for pid in c["passages"]} == expected


@pytest.fixture(autouse=True)
def _env(hash_env: None) -> None:
    """CLI runs here use the hash embedder."""


# ------------------------------------------------------------------------------------------------
# Incremental runs


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_first_run_indexes_every_passage(fake_settings: Settings, tmp_path: Path) -> None:
    settings = fake_settings.replace(**{"index_dir": tmp_path / "deep" / "nested" / "index"})
    assert not index_is_built(settings)
    seen: list[tuple[int, int]] = []
    report = run_ingest(settings, progress=lambda done, total: seen.append((done, total)))
    expected = expected_ids(settings)
    assert (report.passages, report.added, report.skipped, report.deleted) == (len(expected), len(expected), 0, 0)
    assert report.cards == len(manifest(settings)["cards"]) == len(report.changes["added"])
    assert report.rebuilt and report.model_loaded and not report.dry_run
    assert index_is_built(settings)
    assert (settings.index.index_dir / "records.sqlite").is_file()
    assert_converged(settings)
    # Progress goes up to the total, never past it.
    assert seen and seen[-1] == (report.passages, report.passages)
    assert all(total == report.passages and 0 < done <= total for done, total in seen)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_unchanged_corpus_writes_nothing(indexed_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = indexed_settings
    ids_before, manifest_before = EvidenceStore(settings).ids(), manifest_snapshot(settings)
    records_before = (settings.index.index_dir / "records.sqlite").read_bytes()

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded on an unchanged corpus")

    monkeypatch.setattr("ingest.embedding.get_embedder", no_model)
    report = run_ingest(settings)
    assert (report.added, report.updated, report.deleted) == (0, 0, 0)
    assert report.skipped == report.passages == len(ids_before)
    assert report.model_loaded is False and report.rebuilt is False
    assert report.changes == {"added": [], "updated": [], "deleted": []}
    # An explicit embedder is not called either.
    report = run_ingest(settings, embedder=NoEmbedder())
    assert (report.added, report.updated, report.deleted, report.model_loaded) == (0, 0, 0, False)
    assert EvidenceStore(settings).ids() == ids_before
    assert manifest_snapshot(settings) == manifest_before
    assert (settings.index.index_dir / "records.sqlite").read_bytes() == records_before


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_json_report(indexed_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    settings = indexed_settings
    n_before = len(EvidenceStore(settings).ids())
    write_card(settings.index.corpus_dir, GOOD_REL, card_text())

    assert main(ingest_cli(settings, "--json")) == 0
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 1, "one JSON object on one line"
    data = json.loads(out)
    assert {"cards", "passages", "added", "updated", "skipped", "deleted", "seconds"} <= set(data)
    assert all(isinstance(data[k], int) for k in ("cards", "passages", "added", "updated", "skipped", "deleted"))
    assert isinstance(data["seconds"], float) and data["seconds"] >= 0
    new_passages = len(EvidenceStore(settings).ids()) - n_before
    assert new_passages == 4  # summary, two strategies, caveats
    assert (data["added"], data["updated"], data["skipped"], data["deleted"]) == (new_passages, 0, n_before, 0)
    assert data["passages"] == n_before + new_passages
    assert data["changes"] == {"added": [GOOD_ID], "updated": [], "deleted": []}

    assert main(ingest_cli(settings, "--json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["added"], data["updated"], data["deleted"], data["model_loaded"]) == (0, 0, 0, False)

    # Without --json: a readable summary of the same numbers.
    assert main(ingest_cli(settings)) == 0
    out = capsys.readouterr().out
    assert f"0 added, {n_before + new_passages} skipped, 0 deleted" in out


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_edit_one_card_and_delete_another(indexed_settings: Settings) -> None:
    settings = indexed_settings
    before = ids_by_card(settings)
    edit_card(settings.index.corpus_dir / EDITED_PATH, OLD_SENTENCE, NEW_SENTENCE)
    (settings.index.corpus_dir / DELETED_PATH).unlink()

    report = run_ingest(settings)
    assert report.changes == {"updated": [EDITED], "deleted": [DELETED], "added": []}
    assert report.updated == 1
    after = ids_by_card(settings)
    # Only the edited section's passage is new; the edited card's other passages are kept.
    replaced = before[EDITED] - after[EDITED]
    assert len(replaced) == 1 and len(after[EDITED] - before[EDITED]) == 1
    assert report.added == 1
    assert report.deleted == len(replaced) + len(before[DELETED])
    assert DELETED not in after
    untouched_before = {pid for card, ids in before.items() if card not in (EDITED, DELETED) for pid in ids}
    untouched_after = {pid for card, ids in after.items() if card != EDITED for pid in ids}
    assert untouched_after == untouched_before
    assert_converged(settings)
    assert DELETED not in manifest(settings)["cards"]

    again = run_ingest(settings)
    assert (again.added, again.updated, again.deleted) == (0, 0, 0)


def test_metadata_edit_replaces_every_passage_of_that_card(mini_indexed_settings: Settings) -> None:
    settings = mini_indexed_settings
    before = ids_by_card(settings)
    edit_card(settings.index.corpus_dir / EDITED_PATH, "year: 2007", "year: 2008")
    report = run_ingest(settings)
    after = ids_by_card(settings)
    assert not before[EDITED] & after[EDITED]
    assert report.added == report.deleted == len(before[EDITED]) == len(after[EDITED])
    assert report.changes == {"added": [], "updated": [EDITED], "deleted": []}
    assert {k: v for k, v in after.items() if k != EDITED} == {k: v for k, v in before.items() if k != EDITED}


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_dry_run_writes_nothing_but_reports_the_changes(indexed_settings: Settings,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    settings = indexed_settings
    edit_card(settings.index.corpus_dir / EDITED_PATH, OLD_SENTENCE, NEW_SENTENCE)
    (settings.index.corpus_dir / DELETED_PATH).unlink()
    write_card(settings.index.corpus_dir, GOOD_REL, card_text())
    ids_before, manifest_before = EvidenceStore(settings).ids(), manifest_snapshot(settings)
    files_before = {p.relative_to(settings.index.index_dir): p.stat().st_mtime_ns
                    for p in settings.index.index_dir.rglob("*") if p.is_file() and p.name != "ingest.lock"}

    assert main(ingest_cli(settings, "--dry-run", "--json")) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["dry_run"] is True and planned["rebuilt"] is False
    assert planned["changes"] == {"added": [GOOD_ID], "updated": [EDITED], "deleted": [DELETED]}
    assert planned["added"] == 4 + 1 and planned["updated"] == 1 and planned["deleted"] > 1

    assert main(ingest_cli(settings, "--dry-run")) == 0
    assert "Would change" in capsys.readouterr().out

    assert EvidenceStore(settings).ids() == ids_before
    assert manifest_snapshot(settings) == manifest_before
    assert {p.relative_to(settings.index.index_dir): p.stat().st_mtime_ns for p in settings.index.index_dir.rglob("*")
            if p.is_file() and p.name != "ingest.lock"} == files_before

    # The real run does what the dry run said it would.
    done = run_ingest(settings).to_dict()
    for key in ("cards", "passages", "added", "updated", "skipped", "deleted", "changes"):
        assert done[key] == planned[key], key


def test_dry_run_on_a_new_index_creates_nothing(fake_settings: Settings) -> None:
    report = run_ingest(fake_settings, dry_run=True)
    assert report.dry_run and report.rebuilt
    assert report.added == report.passages > 0 and report.skipped == report.deleted == 0
    assert not fake_settings.index.index_dir.exists()


def test_full_rebuilds_every_vector(mini_indexed_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    settings = mini_indexed_settings
    ids_before = EvidenceStore(settings).ids()
    assert main(ingest_cli(settings, "--full", "--json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rebuilt"] is True and data["model_loaded"] is True
    assert (data["added"], data["skipped"], data["deleted"]) == (len(ids_before), 0, 0)
    assert data["changes"] == {"added": [], "updated": [], "deleted": []}
    assert EvidenceStore(settings).ids() == ids_before
    assert_converged(settings)
    # The dry run of --full says everything would be re-embedded.
    report = run_ingest(settings, full=True, dry_run=True)
    assert report.rebuilt and report.added == len(ids_before)


@pytest.mark.parametrize("change", [
    {"chunk_size": 400, "chunk_overlap": 50},
    {"chunk_overlap": 0},
    {"embedding_model": "hash-32"},
], ids=["chunk_size", "chunk_overlap", "model"])
@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_vector_settings_change_builds_a_new_collection(mini_indexed_settings: Settings,
                                                       change: dict[str, object]) -> None:
    old = mini_indexed_settings
    old_name = old.index.collection_name()
    assert collection_names(old) == {old_name}
    new = old.replace(**change)
    assert new.index.collection_name() != old_name

    report = run_ingest(new)
    assert report.rebuilt and report.collection == new.index.collection_name()
    assert report.added == report.passages == len(expected_ids(new))
    assert collection_names(new) == {new.index.collection_name()}, "the old collection is dropped"
    assert record_keys(new, old_name) == [], "the old record-manager namespace is emptied"
    assert_converged(new)
    assert manifest(new)["fingerprint"] == new.index.vector_fingerprint()
    if "embedding_model" in change:
        assert len(EvidenceStore(new).collection().get(limit=1, include=["embeddings"])["embeddings"][0]) == 32

    again = run_ingest(new)
    assert (again.added, again.deleted, again.rebuilt) == (0, 0, False)


def test_settings_that_do_not_shape_vectors_keep_the_index(mini_indexed_settings: Settings) -> None:
    settings = mini_indexed_settings.replace(**{"top_k": 3, "abstain_threshold": 0.5, "composer": "llm"})
    assert settings.index.collection_name() == mini_indexed_settings.index.collection_name()
    report = run_ingest(settings, embedder=NoEmbedder())
    assert (report.added, report.deleted, report.rebuilt) == (0, 0, False)


# ------------------------------------------------------------------------------------------------
# One writer at a time


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_second_writer_gets_index_busy(mini_indexed_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    settings = mini_indexed_settings
    edit_card(settings.index.corpus_dir / EDITED_PATH, OLD_SENTENCE, NEW_SENTENCE)
    ids_before, manifest_before = EvidenceStore(settings).ids(), manifest_snapshot(settings)
    with writer_lock(settings.index.index_dir):
        with pytest.raises(IndexBusyError, match="being rebuilt by another process"):
            run_ingest(settings)
        start = time.perf_counter()
        with pytest.raises(IndexBusyError):
            run_ingest(settings, lock_timeout=0.3)
        assert time.perf_counter() - start >= 0.25
        assert main(ingest_cli(settings)) == 1
        err = capsys.readouterr().err
        assert "Error: The index at" in err and "Another `peer-assist ingest` is running" in err
        assert "Traceback" not in err
        # A second lock holder is refused too, and a dry run (which writes nothing) is still allowed.
        with pytest.raises(IndexBusyError):
            with writer_lock(settings.index.index_dir):
                pass
        assert run_ingest(settings, dry_run=True).changes["updated"] == [EDITED]
    assert EvidenceStore(settings).ids() == ids_before
    assert manifest_snapshot(settings) == manifest_before
    # Once the lock is released the next writer goes ahead.
    assert run_ingest(settings).changes["updated"] == [EDITED]


def test_lock_is_released_when_a_run_fails(mini_indexed_settings: Settings) -> None:
    settings = mini_indexed_settings
    edit_card(settings.index.corpus_dir / EDITED_PATH, OLD_SENTENCE, NEW_SENTENCE)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_ingest(settings, embedder=FlakyEmbedder(fail_on_call=1))
    with writer_lock(settings.index.index_dir):
        pass


# ------------------------------------------------------------------------------------------------
# Interrupted runs


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_interrupted_first_run_converges(fake_settings: Settings) -> None:
    settings = fake_settings.replace(**{"index_batch_size": 64})  # several batches, so a crash lands mid-run
    expected = expected_ids(settings)
    flaky = FlakyEmbedder(fail_on_call=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_ingest(settings, embedder=flaky)

    state = read_manifest(settings.index.index_dir)
    assert state is not None and state["state"] == "writing"
    assert not index_is_built(settings)
    partial = EvidenceStore(settings).ids()
    assert 0 < len(partial) == flaky.embedded < len(expected)
    assert partial <= expected and set(record_keys(settings)) == partial

    report = run_ingest(settings)
    assert (report.added, report.skipped, report.deleted) == (len(expected) - len(partial), len(partial), 0)
    assert_converged(settings)
    assert index_is_built(settings)
    again = run_ingest(settings, embedder=NoEmbedder())
    assert (again.added, again.deleted) == (0, 0)


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_interrupted_incremental_run_converges(indexed_settings: Settings) -> None:
    settings = indexed_settings.replace(**{"index_batch_size": 64})
    before = ids_by_card(settings)
    # Retitle enough cards that their new passages fill more than one embedding batch.
    changed = []
    for path in sorted((settings.index.corpus_dir / "studies").glob("*.md"))[:30]:
        if path.stem == DELETED:
            continue
        quoted = '\ntitle: "' in path.read_text(encoding="utf-8")
        old, new = ('\ntitle: "', '\ntitle: "Revised - ') if quoted else ("\ntitle: ", "\ntitle: Revised - ")
        edit_card(path, old, new)
        changed.append(path.stem)
    assert sum(len(before[c]) for c in changed) > 128  # store.sync embeds in batches of 128
    (settings.index.corpus_dir / DELETED_PATH).unlink()
    old_ids = {pid for ids in before.values() for pid in ids}
    new_ids = expected_ids(settings) - old_ids

    with pytest.raises(RuntimeError, match="simulated crash"):
        run_ingest(settings, embedder=FlakyEmbedder(fail_on_call=2))
    assert manifest(settings)["state"] == "writing"
    crashed = EvidenceStore(settings).ids()
    assert 0 < len(crashed & new_ids) < len(new_ids), "the crash came halfway through"
    assert old_ids <= crashed, "nothing is deleted before every new passage is written"

    report = run_ingest(settings)
    assert sorted(report.changes["updated"]) == sorted(changed)
    assert report.changes["deleted"] == [DELETED]
    assert_converged(settings)
    after = ids_by_card(settings)
    assert DELETED not in after
    assert {k: v for k, v in after.items() if k not in changed} == {
        k: v for k, v in before.items() if k not in changed and k != DELETED}


def test_stray_vectors_are_removed(mini_indexed_settings: Settings) -> None:
    """A run killed after writing a vector but before recording it leaves the manifest in state
    "writing"; the next run reconciles the collection with the record manager."""
    from ingest.pipeline import read_manifest, write_manifest

    settings = mini_indexed_settings
    store = EvidenceStore(settings)
    store.collection().add(ids=["left-by-a-killed-run"], embeddings=[[0.125] * 64],
                           metadatas=[{"card_id": "gates-2007"}])
    assert "left-by-a-killed-run" in store.ids()
    manifest = read_manifest(settings.index.index_dir)
    assert manifest is not None
    write_manifest(settings.index.index_dir, {**manifest, "state": "writing"})
    report = run_ingest(settings)
    assert report.orphans_removed == 1
    assert (report.added, report.deleted) == (0, 0)
    assert_converged(settings)


def test_interrupted_rebuild_still_drops_the_old_collection(mini_indexed_settings: Settings) -> None:
    old = mini_indexed_settings
    new = old.replace(**{"chunk_size": 400, "chunk_overlap": 50})
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_ingest(new, embedder=FlakyEmbedder(fail_on_call=1))
    run_ingest(new)
    assert_converged(new)
    assert collection_names(new) == {new.index.collection_name()}
    assert record_keys(new, old.index.collection_name()) == []


def test_repeated_section_does_not_make_every_run_dirty(mini_indexed_settings: Settings) -> None:
    settings = mini_indexed_settings
    strategy = GOOD_BODY[GOOD_BODY.index("### support-development"):GOOD_BODY.index("## Caveats")]
    write_card(settings.index.corpus_dir, GOOD_REL, card_text(body=GOOD_BODY.replace("## Caveats", strategy + "## Caveats")))
    try:
        run_ingest(settings)
    except CorpusError:  # rejecting the repeated section at validation is a fine fix too
        return
    before = manifest_snapshot(settings)
    report = run_ingest(settings, embedder=NoEmbedder())
    assert manifest_snapshot(settings) == before, "an unchanged corpus rewrote the manifest"
    assert report.skipped == EvidenceStore(settings).count()


# ------------------------------------------------------------------------------------------------
# The unchanged-run shortcut: passage ids from the manifest when no card and no split input changed


def _count_splits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from ingest import pipeline

    calls: list[int] = []
    real = pipeline.split_corpus

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "split_corpus", counted)
    return calls


def test_unchanged_run_splits_no_card(mini_indexed_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = mini_indexed_settings
    splits = _count_splits(monkeypatch)
    before = manifest_snapshot(settings)
    for dry_run in (True, False):
        report = run_ingest(settings, embedder=NoEmbedder(), dry_run=dry_run)
        assert (report.added, report.updated, report.deleted, report.rebuilt) == (0, 0, 0, False)
        assert report.skipped == report.passages == EvidenceStore(settings).count()
        assert report.generation == (None if dry_run else manifest(settings)["generation"])
    assert splits == [] and manifest_snapshot(settings) == before
    # --full still re-splits (and rewrites every vector).
    run_ingest(settings, full=True)
    assert splits == [1]


def test_edited_card_is_split_even_when_the_shortcut_applies(mini_indexed_settings: Settings,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    settings = mini_indexed_settings
    splits = _count_splits(monkeypatch)
    edit_card(settings.index.corpus_dir / EDITED_PATH, OLD_SENTENCE, NEW_SENTENCE)
    report = run_ingest(settings)
    assert splits == [1] and report.changes["updated"] == [EDITED] and report.added > 0
    assert_converged(settings)


def test_changed_split_inputs_split_again(mini_indexed_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A manifest without a split fingerprint (an index from before it), or with another one (the
    splitting code, themes.yaml or the text splitter changed): the corpus is split and compared as
    before; when the passages came out the same, the manifest records the fingerprint (index and
    generation untouched) so the next unchanged run takes the shortcut."""
    from ingest import pipeline

    settings = mini_indexed_settings
    splits = _count_splits(monkeypatch)
    state = manifest(settings)
    fingerprint = state.pop("split")
    assert fingerprint == pipeline.split_fingerprint(settings.index)
    (settings.index.index_dir / "manifest.json").write_text(json.dumps(state), encoding="utf-8")
    report = run_ingest(settings, embedder=NoEmbedder())
    assert splits == [1] and (report.added, report.deleted, report.updated) == (0, 0, 0)
    after = manifest(settings)
    assert after["split"] == fingerprint and after["generation"] == state["generation"]
    assert after["cards"] == state["cards"]
    run_ingest(settings, embedder=NoEmbedder())
    assert splits == [1]
    monkeypatch.setattr(pipeline, "split_fingerprint", lambda s: "another")
    run_ingest(settings, embedder=NoEmbedder())
    assert splits == [1, 1] and manifest(settings)["split"] == "another"


def test_split_fingerprint_follows_what_shapes_passages(mini_indexed_settings: Settings) -> None:
    from ingest.pipeline import split_fingerprint

    settings = mini_indexed_settings
    base = split_fingerprint(settings.index)
    assert split_fingerprint(settings.index) == base
    assert split_fingerprint(settings.replace(chunk_size=400, chunk_overlap=50).index) != base
    themes = settings.index.themes_file()
    themes.write_text(themes.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert split_fingerprint(settings.index) != base


def test_card_bytes_changed_but_not_its_passages(mini_indexed_settings: Settings,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A card whose bytes change without changing a passage: nothing is written to the index, the
    manifest takes the new content hash, and the run after that takes the shortcut again."""
    settings = mini_indexed_settings
    splits = _count_splits(monkeypatch)
    path = settings.index.corpus_dir / EDITED_PATH
    path.write_text(path.read_text(encoding="utf-8") + "\n\n", encoding="utf-8")
    ids_before, generation = EvidenceStore(settings).ids(), manifest(settings)["generation"]
    report = run_ingest(settings, embedder=NoEmbedder())
    assert splits == [1] and (report.added, report.deleted, report.updated) == (0, 0, 0)
    assert EvidenceStore(settings).ids() == ids_before and manifest(settings)["generation"] == generation
    run_ingest(settings, embedder=NoEmbedder())
    assert splits == [1]
