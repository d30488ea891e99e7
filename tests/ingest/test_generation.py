"""The index generation contract: every completed ingest that changes the index writes a new
generation into the manifest and the collection metadata; an unchanged reindex keeps it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from assistant.settings import Settings
from ingest.pipeline import content_hash, current_generation, generation_hash, new_generation, run_ingest
from ingest.store import EvidenceStore
from tests.ingest.conftest import edit_card, expected_ids, manifest

EDITED_PATH = "studies/gates-2007.md"


@pytest.fixture(autouse=True)
def _env(hash_env: None) -> None:
    """Runs here use the hash embedder."""


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_first_run_writes_a_generation_to_manifest_and_collection(fake_settings: Settings) -> None:
    index_dir = fake_settings.index.index_dir
    assert current_generation(index_dir) is None
    report = run_ingest(fake_settings)
    gen = report.generation
    assert gen and manifest(fake_settings)["generation"] == gen
    assert EvidenceStore(fake_settings).generation() == gen
    assert current_generation(index_dir) == gen
    # The generation names what the index holds: its content hash is the collection + passage ids.
    assert generation_hash(gen) == content_hash(fake_settings.index.collection_name(), expected_ids(fake_settings))


def test_unchanged_and_full_reindex_keep_the_generation(mini_indexed_settings: Settings) -> None:
    settings = mini_indexed_settings
    gen = current_generation(settings.index.index_dir)
    assert gen
    assert run_ingest(settings).generation == gen
    assert run_ingest(settings, full=True).generation == gen  # every vector rewritten, same content
    assert current_generation(settings.index.index_dir) == EvidenceStore(settings).generation() == gen


def test_a_changed_corpus_gets_a_new_later_generation(mini_indexed_settings: Settings) -> None:
    settings = mini_indexed_settings
    before = current_generation(settings.index.index_dir)
    assert before
    edit_card(settings.index.corpus_dir / EDITED_PATH, "Qualitative study in one US city",
              "Qualitative study in a single US city")
    after = run_ingest(settings).generation
    assert after and after != before and after > before  # timestamps sort
    assert generation_hash(after) != generation_hash(before)
    assert current_generation(settings.index.index_dir) == EvidenceStore(settings).generation() == after
    # The collection keeps its distance function when the generation is written (Chroma keeps it in
    # the configuration; the legacy metadata key cannot be written again).
    assert EvidenceStore(settings).collection().configuration["hnsw"]["space"] == "cosine"


def test_a_dry_run_reports_no_generation(mini_indexed_settings: Settings) -> None:
    assert run_ingest(mini_indexed_settings, dry_run=True).generation is None


class _ServerStore:
    """A store in server mode (``chroma_host`` set) whose collection metadata says ``gen``."""

    def __init__(self, gen: str | None = None, fail: bool = False) -> None:
        self.settings = SimpleNamespace(chroma_host="chroma.example")
        self.gen, self.fail = gen, fail

    def generation(self) -> str | None:
        if self.fail:
            raise ConnectionError("server gone")
        return self.gen


def test_server_mode_asks_the_collection_and_falls_back_to_the_manifest(tmp_path: Path) -> None:
    from ingest.pipeline import write_manifest

    write_manifest(tmp_path, {"state": "complete", "generation": "20260101T000000000000Z-aaaaaaaaaaaa"})
    assert current_generation(tmp_path, _ServerStore("20270101T000000000000Z-bbbbbbbbbbbb")) == \
        "20270101T000000000000Z-bbbbbbbbbbbb"
    assert current_generation(tmp_path, _ServerStore(fail=True)) == "20260101T000000000000Z-aaaaaaaaaaaa"
    assert current_generation(tmp_path, _ServerStore(None)) == "20260101T000000000000Z-aaaaaaaaaaaa"
    # An embedded store is not asked: the manifest is the cheap source.
    embedded = _ServerStore("20270101T000000000000Z-bbbbbbbbbbbb")
    embedded.settings = SimpleNamespace(chroma_host=None)
    assert current_generation(tmp_path, embedded) == "20260101T000000000000Z-aaaaaaaaaaaa"
    assert current_generation(tmp_path / "missing") is None


def test_new_generation_format() -> None:
    gen = new_generation("0123456789ab", now=1_700_000_000.25)
    assert gen == "20231114T221320250000Z-0123456789ab"
    assert generation_hash(gen) == "0123456789ab"
    assert content_hash("c", ["b", "a"]) == content_hash("c", ["a", "b"]) != content_hash("d", ["a", "b"])
