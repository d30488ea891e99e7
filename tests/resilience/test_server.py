"""Chroma server mode: ingest, answers and the CLI against a real ``chroma run`` on 127.0.0.1.

The record manager stays in ``index_dir/records.sqlite`` while the vectors live on the server; these
tests check that the two always agree (same id sets) through first builds, unchanged re-runs, edits,
deletions, a server that lost its data, and a server that is down.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import ScopeSettings
from assistant.settings import Settings
from ingest.pipeline import read_manifest, run_ingest
from tests.conftest import NoEmbedder
from tests.resilience.conftest import (
    FIGURES,
    QUESTION,
    REAL_MODEL,
    ChromaServer,
    assert_converged,
    assert_friendly,
    check_answer,
    child_env,
    expected_ids,
    free_port,
    last_study,
    record_keys,
    run_cli,
    settings_env,
)

pytestmark = [pytest.mark.server, pytest.mark.timeout(300)]

MINI_CARDS = ("review/zeng-2021.md", "studies/gates-2007.md", "studies/chinman-2008.md", "related/byrne-2022.md")


def refuse_writes(m: pytest.MonkeyPatch) -> None:
    """Any write to a Chroma collection fails the test."""
    from chromadb.api.models.Collection import Collection

    def refuse(self: Any, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("wrote to the Chroma server on a run that should write nothing")

    for method in ("add", "upsert", "update", "delete"):
        m.setattr(Collection, method, refuse)


def server_ids(server: ChromaServer, settings: Settings) -> set[str]:
    """The collection's ids as the server reports them (a fresh HTTP client, not the product's)."""
    col = server.client().get_collection(settings.index.collection_name())
    return set(col.get(include=[])["ids"])


def test_server_lifecycle_agrees_with_the_record_manager(chroma_server: ChromaServer, tmp_path: Path,
                                                         corpus_snapshot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = chroma_server.settings(tmp_path, corpus_snapshot, "srv_lifecycle")
    expected = expected_ids(settings)

    first = run_ingest(settings)
    assert first.added == first.passages == len(expected) and first.rebuilt
    assert_converged(settings, expected)
    assert server_ids(chroma_server, settings) == set(record_keys(settings)) == expected
    assert read_manifest(settings.index.index_dir)["chroma"] == f"127.0.0.1:{chroma_server.port}"  # type: ignore[index]

    # Unchanged re-run: no embedding, no writes to the server, no new manifest.
    manifest_before = (settings.index.index_dir / "manifest.json").stat().st_mtime_ns
    records_before = (settings.index.index_dir / "records.sqlite").read_bytes()
    with monkeypatch.context() as m:
        refuse_writes(m)
        again = run_ingest(settings, embedder=NoEmbedder())  # type: ignore[arg-type]
    assert (again.added, again.deleted, again.skipped, again.model_loaded) == (0, 0, len(expected), False)
    assert (settings.index.index_dir / "manifest.json").stat().st_mtime_ns == manifest_before
    assert (settings.index.index_dir / "records.sqlite").read_bytes() == records_before

    # Edit one card and delete another: both converge on the server.
    path = sorted((settings.index.corpus_dir / "studies").glob("*.md"))[0]
    deleted = last_study(settings.index.corpus_dir)
    text = path.read_text(encoding="utf-8")
    assert "\n## Caveats\n" in text
    path.write_text(text.replace("\n## Caveats\n", "\n## Caveats\nEdited for the server test. ", 1), encoding="utf-8")
    deleted.unlink()
    changed = run_ingest(settings)
    assert changed.changes["updated"] == [path.stem] and changed.changes["deleted"] == [deleted.stem]
    assert changed.added >= 1 and changed.deleted >= 2
    expected = expected_ids(settings)
    assert_converged(settings, expected)
    assert server_ids(chroma_server, settings) == expected

    # Answers come from the server collection, with valid citations and no deleted card.
    from assistant.chat import Assistant

    answer = Assistant(settings).ask(QUESTION).to_dict()
    check_answer(answer, settings)
    assert all(c["card_id"] != deleted.stem for c in answer["citations"])
    assert all(r["card_id"] != deleted.stem for r in answer["retrieved"])


def test_server_that_lost_its_data_is_rebuilt_by_a_normal_ingest(chroma_server: ChromaServer, tmp_path: Path,
                                                                  corpus_snapshot: Path) -> None:
    """records.sqlite is local, the vectors are on the server: when the server loses the collection
    (restarted on an empty --path, restored from an older backup) a normal ingest writes it again."""
    settings = chroma_server.settings(tmp_path, corpus_snapshot, "srv_lost")
    run_ingest(settings)
    chroma_server.client().delete_collection(settings.index.collection_name())
    assert len(record_keys(settings)) == len(expected_ids(settings))

    report = run_ingest(settings)
    assert report.added == report.passages == report.records_repaired
    assert_converged(settings)


def test_cli_ingest_and_ask_against_the_server(chroma_server: ChromaServer, tmp_path: Path,
                                               res_corpus: Path) -> None:
    """``peer-assist ingest --json`` and ``ask --json`` in subprocesses, configured only through
    PEER_ASSIST_CHROMA_HOST/PORT, with the real embedding model (four cards keep it quick)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for data in ("themes.yaml", "vocabulary.yaml"):  # the taxonomy and the vocabularies `ask` needs
        shutil.copy2(res_corpus / data, corpus / data)
    for rel in MINI_CARDS:
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(res_corpus / rel, corpus / rel)
    settings = chroma_server.settings(tmp_path, corpus, "srv_cli", embedding_model=REAL_MODEL,
                                      abstain_threshold=ScopeSettings.model_fields["abstain_threshold"].default)
    env = child_env(**settings_env(settings))
    timings: dict[str, float] = {}

    t0 = time.monotonic()
    first = run_cli(["ingest", "--json"], env)
    timings["ingest_s"] = time.monotonic() - t0
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads(first.stdout)
    expected = expected_ids(settings)
    assert report["added"] == report["passages"] == len(expected) and report["model_loaded"]
    assert server_ids(chroma_server, settings) == set(record_keys(settings)) == expected

    t0 = time.monotonic()
    second = run_cli(["ingest", "--json"], env)
    timings["unchanged_ingest_s"] = time.monotonic() - t0
    assert second.returncode == 0, second.stderr[-3000:]
    again = json.loads(second.stdout)
    assert (again["added"], again["deleted"], again["model_loaded"]) == (0, 0, False)

    t0 = time.monotonic()
    asked = run_cli(["ask", "--json", QUESTION], env)
    timings["ask_s"] = time.monotonic() - t0
    assert asked.returncode == 0, asked.stderr[-3000:]
    answer = json.loads(asked.stdout)
    check_answer(answer, settings)
    assert {c["card_id"] for c in answer["citations"]} <= {Path(rel).stem for rel in MINI_CARDS}
    assert_converged(settings, expected)
    FIGURES.setdefault("server", {})["cli_real_model_4_cards"] = {k: round(v, 1) for k, v in timings.items()}


@pytest.mark.parametrize("command", [["ingest", "--json"], ["ask", "--json", QUESTION]], ids=["ingest", "ask"])
def test_server_down_is_a_friendly_error(tmp_path: Path, res_corpus: Path, command: list[str]) -> None:
    port = free_port()  # nothing listens here
    env = child_env(PEER_ASSIST_CHROMA_HOST="127.0.0.1", PEER_ASSIST_CHROMA_PORT=port,
                    PEER_ASSIST_CORPUS_DIR=res_corpus, PEER_ASSIST_INDEX_DIR=tmp_path / "index",
                    PEER_ASSIST_EMBEDDING_MODEL="hash-64")
    t0 = time.monotonic()
    result = run_cli(command, env, timeout=120)
    seconds = time.monotonic() - t0
    assert_friendly(result)
    assert f"127.0.0.1:{port}" in result.stderr, result.stderr
    assert "chroma run" in result.stderr and "PEER_ASSIST_CHROMA_HOST" in result.stderr
    assert result.stdout == ""
    FIGURES.setdefault("server", {}).setdefault("down_error_s", {})[command[0]] = round(seconds, 1)
