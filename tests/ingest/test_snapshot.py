"""Snapshot files per index generation: the bm25s lexical index scores like rank_bm25's BM25Okapi,
snapshots are written at ingest, loaded memory-mapped, kept two deep, and rebuilt from the store
when missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.settings import Settings
from ingest.cards import load_corpus
from ingest.pipeline import current_generation, run_ingest
from ingest.snapshot import LexicalIndex, load_snapshot, prune, snapshot_dir, write_snapshot
from ingest.split import split_corpus
from ingest.store import EvidenceStore
from ingest.text import Tokenizer
from ingest.vocabulary import VOCABULARY_FILE, load_vocabulary
from tests.conftest import CORPUS
from tests.ingest.conftest import edit_card


@pytest.fixture(autouse=True)
def _env(hash_env: None) -> None:
    """Runs here use the hash embedder."""


def _tokenizer() -> Tokenizer:
    return load_vocabulary(CORPUS / VOCABULARY_FILE).tokenizer


@pytest.fixture(scope="module")
def corpus_tokens() -> list[list[str]]:
    corpus = load_corpus(CORPUS, 64_000)
    tok = _tokenizer()
    return [tok(p.embed_text()) for p in split_corpus(corpus.cards, 800, 100)]


SMALL = [["peer", "worker", "supervis"], ["peer", "worker", "fund"], ["peer", "train", "train"],
         ["peer", "worker", "induct", "peer"], ["manag", "champion"], []]


@pytest.mark.parametrize("name", ["corpus", "small"])
def test_bm25s_scores_equal_rank_bm25_okapi(name: str, corpus_tokens: list[list[str]], tmp_path: Path) -> None:
    """On the real corpus, and on a small one where terms in more than half the passages get
    rank_bm25's epsilon floor instead of a negative idf (an empty passage included)."""
    from rank_bm25 import BM25Okapi

    docs = corpus_tokens if name == "corpus" else SMALL
    okapi = BM25Okapi(docs)
    ours = LexicalIndex.build(docs)
    ours.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    tok = _tokenizer()
    queries = ["How do organisations prepare staff for peer workers?", "supervision peer worker peer worker",
               "What helps retention of peer support workers in rural services?", "quantum entanglement",
               "training induction boundaries", "peer"]
    if name == "small":
        raw = {t: np.log(len(docs) - n + 0.5) - np.log(n + 0.5) for t, n in [("peer", 4), ("worker", 3)]}
        assert raw["peer"] < 0 and okapi.idf["peer"] > 0  # the floor is in play
        queries = ["peer", "worker peer", "train", "induct peer peer", "champion", "nothing"]
    for q in queries:
        tokens = tok(q) if name == "corpus" else q.split()
        expected = okapi.get_scores(tokens)
        for index in (ours, loaded):
            got = index.get_scores(tokens)
            np.testing.assert_array_equal(got, expected)  # bit for bit
            # The ranking, ties included, is the one the answer path used before.
            assert list(np.argsort(-got)) == list(np.argsort(-expected))
    assert set(ours.idf) == set(okapi.idf)
    for t, v in okapi.idf.items():
        assert loaded.idf[t] == pytest.approx(v, rel=1e-12, abs=1e-12)
    # Memory-mapped on load: the score matrix is not read into memory (held as a plain ndarray view
    # of the map, which slices faster than np.memmap itself).
    assert isinstance(loaded._data.base, np.memmap) and not loaded._data.flags.owndata
    # The files are bm25s's own layout: bm25s loads them (memory-mapped) to the same matrix and vocabulary.
    import bm25s

    theirs = bm25s.BM25.load(str(tmp_path / "bm25"), mmap=True)
    assert isinstance(theirs.scores["data"], np.memmap) and theirs.vocab_dict == loaded.vocab
    for key, ours_array in (("data", loaded._data), ("indices", loaded._indices), ("indptr", loaded._indptr)):
        np.testing.assert_array_equal(theirs.scores[key], ours_array)
    assert theirs.scores["num_docs"] == loaded.n_docs == len(docs)


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_ingest_writes_a_snapshot_that_loads_memory_mapped(fake_settings: Settings) -> None:
    report = run_ingest(fake_settings)
    index_dir, gen = fake_settings.index.index_dir, report.generation
    assert gen and (snapshot_dir(index_dir, gen) / "meta.json").is_file()
    store = EvidenceStore(fake_settings)
    snap = load_snapshot(index_dir, gen, _tokenizer(), store.name)
    assert snap is not None
    pairs = store.passages_with_vectors()
    assert snap.passages == [p for p, _ in pairs]
    assert isinstance(snap.vectors, np.memmap)
    np.testing.assert_array_equal(np.asarray(snap.vectors), np.asarray([v for _, v in pairs], dtype="float32"))
    # Another tokenizer or collection: not this snapshot.
    assert load_snapshot(index_dir, gen, Tokenizer(), store.name) is None
    assert load_snapshot(index_dir, gen, _tokenizer(), "other_collection") is None


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_two_newest_snapshots_are_kept(indexed_settings: Settings) -> None:
    settings = indexed_settings
    root = settings.index.index_dir / "snapshots"
    first = current_generation(settings.index.index_dir)
    path = settings.index.corpus_dir / "studies/gates-2007.md"
    edit_card(path, "Qualitative study in one US city", "Qualitative study in a single US city")
    second = run_ingest(settings).generation
    edit_card(path, "Qualitative study in a single US city", "Qualitative study in one city in the US")
    third = run_ingest(settings).generation
    assert len({first, second, third}) == 3
    assert sorted(d.name for d in root.iterdir()) == sorted([second, third])  # type: ignore[type-var]


def test_damaged_snapshot_is_not_used(indexed_settings: Settings) -> None:
    settings = indexed_settings
    index_dir, gen = settings.index.index_dir, current_generation(settings.index.index_dir)
    assert gen
    name = EvidenceStore(settings).name
    assert load_snapshot(index_dir, gen, _tokenizer(), name) is not None
    path = snapshot_dir(index_dir, gen) / "passages.json"
    path.write_bytes(path.read_bytes()[:-200])
    assert load_snapshot(index_dir, gen, _tokenizer(), name) is None


def test_write_is_atomic_and_prune_keeps_newest(tmp_path: Path) -> None:
    from tests.assistant.passages import passage

    ps = [passage(f"card{i}-2020", 0, f"peer workers and supervision {i}") for i in range(3)]
    for gen in ("20260101T000000000000Z-a", "20260102T000000000000Z-b", "20260103T000000000000Z-c"):
        write_snapshot(tmp_path, gen, ps, np.eye(3, 8, dtype="float32"), Tokenizer(), "col")
    (tmp_path / "snapshots" / ".20260104-half").mkdir()  # a writer still at work: left alone
    prune(tmp_path)
    names = sorted(d.name for d in (tmp_path / "snapshots").iterdir())
    assert names == [".20260104-half", "20260102T000000000000Z-b", "20260103T000000000000Z-c"]
    meta = json.loads((tmp_path / "snapshots" / "20260103T000000000000Z-c" / "meta.json").read_text())
    assert meta["n_passages"] == 3 and meta["collection"] == "col"


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_the_retriever_answers_from_the_snapshot_and_rebuilds_a_missing_one(indexed_settings: Settings,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import ingest.snapshot
    from assistant.chat import Assistant

    settings = indexed_settings
    index_dir, gen = settings.index.index_dir, current_generation(settings.index.index_dir)
    assert gen
    from_chroma = [p for p, _ in EvidenceStore(settings).passages_with_vectors()]

    # A snapshot on disk: the store is never read for passages.
    def no_store(*args: object, **kwargs: object) -> None:
        raise AssertionError("read the passages from the store although a snapshot exists")

    with monkeypatch.context() as m:
        m.setattr(ingest.snapshot, "from_store", no_store)
        retriever = Assistant(settings).retriever
        assert retriever.index.passages == from_chroma and retriever.generation == gen
        assert retriever.retrieve("Who should supervise peer workers?").passages

    # Missing (an index built before snapshots, or a fresh replica): built once from the store, saved.
    shutil.rmtree(index_dir / "snapshots")
    retriever = Assistant(settings).retriever
    assert retriever.index.passages == from_chroma
    assert (snapshot_dir(index_dir, gen) / "meta.json").is_file()

    # No generation in the manifest at all (an index from before generations): built in memory.
    data = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
    data.pop("generation")
    (index_dir / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    retriever = Assistant(settings).retriever
    assert retriever.index.passages == from_chroma and retriever.generation is None


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_snapshots_can_be_turned_off(fake_settings: Settings) -> None:
    settings = fake_settings.replace(snapshots=False)
    assert run_ingest(settings).generation
    assert not (settings.index.index_dir / "snapshots").exists()
