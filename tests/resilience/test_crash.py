"""Crash-safe reindex: ``peer-assist ingest`` is SIGKILLed at many points, then a normal ingest must converge.

Each kill point runs a real ``peer-assist ingest`` subprocess (hash embedder, so it is quick; each
embedding batch sleeps ``SLOW_EMBED_S`` so that the embedding window is wide enough to hit). Timed
points are SIGKILLs sent from this process a given delay after start-up or after the child marked
the index dirty (manifest state "writing"). Injected points make the child SIGKILL itself right after
an exact step (tests/resilience/inject/sitecustomize.py), for windows too narrow to hit by timing:
vectors written but not recorded, old vectors deleted but their records not, everything written but
the manifest not. The child's step trace says what each kill interrupted.

After every kill: a normal ingest, then collection ids == record-manager keys == the passage ids
that split_corpus gives (no duplicates, no orphans), a complete manifest, and a cited answer.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import Settings
from ingest.pipeline import read_manifest, run_ingest
from tests.resilience.conftest import (
    FIGURES,
    QUESTION,
    ChromaServer,
    assert_converged,
    check_answer,
    child_env,
    copy_hash_index,
    expected_ids,
    last_study,
    record_keys,
    retitle_cards,
    settings_env,
    start_cli,
)

pytestmark = pytest.mark.slow

SLOW_EMBED_S = 0.5


@dataclass(frozen=True)
class KillPoint:
    label: str
    kind: str  # "full": --full rebuild of every vector; "incremental": 30 cards retitled and one deleted;
    #            "rebuild": the chunk size changed, so a new collection is built and the old one dropped
    after: str = "writing"  # "start" (process start) or "writing" (index marked dirty, lock held)
    delay: float = 0.0
    crash_at: str | None = None  # an injected self-SIGKILL instead of a timed one
    revert: bool = False  # put the corpus back before recovering: the new vectors written become orphans

    @property
    def injected(self) -> bool:
        return self.crash_at is not None


EMBEDDED_POINTS = [
    KillPoint("start-up (imports, before the lock)", "full", "start", 0.4),
    KillPoint("just after the index is marked dirty", "full", "writing", 0.0),
    KillPoint("+0.3 s: embedding batch 1", "full", "writing", 0.3),
    KillPoint("+0.9 s: batch 1 written, embedding batch 2", "full", "writing", 0.9),
    KillPoint("+1.5 s: batch 2/3", "full", "writing", 1.5),
    KillPoint("+0.2 s: incremental, first new passages", "incremental", "writing", 0.2),
    KillPoint("+0.9 s: incremental, later batches / cleanup", "incremental", "writing", 0.9),
    KillPoint("vectors of batch 2 written, records not", "full", crash_at="upsert:2"),
    KillPoint("batch 1 fully written (vectors and records)", "full", crash_at="records:1"),
    KillPoint("old vectors deleted, their records not", "incremental", crash_at="delete:1"),
    KillPoint("all written, manifest not yet complete", "incremental", crash_at="manifest:complete"),
    KillPoint("new chunk size: batch 1 of the new collection written", "rebuild", crash_at="records:1"),
    KillPoint("new vectors written, records not, then the edit is undone", "incremental", crash_at="upsert:1",
              revert=True),
]
REBUILD = {"chunk_size": 600, "chunk_overlap": 80}

SERVER_POINTS = [
    KillPoint("+0.6 s: --full, embedding/writing", "full", "writing", 0.6),
    KillPoint("+0.3 s: incremental, first new passages", "incremental", "writing", 0.3),
    KillPoint("vectors of batch 2 written, records not", "full", crash_at="upsert:2"),
    KillPoint("old vectors deleted, their records not", "incremental", crash_at="delete:1"),
]


def _events(trace: Path) -> list[str]:
    try:
        return [line.split(" ", 1)[1] for line in trace.read_text(encoding="utf-8").splitlines() if " " in line]
    except OSError:
        return []


def _wait_for_event(trace: Path, proc: subprocess.Popen[str], event: str, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.startswith(event) for e in _events(trace)):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    raise TimeoutError(f"the child never reached {event!r}: {_events(trace)[-5:]}")


def prepare(settings: Settings, point: KillPoint, round_no: int) -> None:
    if point.kind == "incremental":
        retitle_cards(settings.index.corpus_dir, 30, prefix=f"Rev {round_no} - ")
        last_study(settings.index.corpus_dir).unlink()


def kill_once(settings: Settings, point: KillPoint, work: Path) -> dict[str, Any]:
    """Start ``peer-assist ingest``, kill it at ``point``; return what was interrupted."""
    trace = work / "trace.txt"
    trace.unlink(missing_ok=True)
    env = child_env(**settings_env(settings), RESILIENCE_TRACE=trace, RESILIENCE_SLOW_EMBED_S=SLOW_EMBED_S,
                    RESILIENCE_CRASH_AT=point.crash_at, PEER_ASSIST_INDEX_BATCH_SIZE="128")  # several batches
    args = ["ingest", "--json"] + (["--full"] if point.kind == "full" else [])
    t0 = time.monotonic()
    proc = start_cli(args, env)
    try:
        if not point.injected:
            if point.after == "start":
                time.sleep(point.delay)
            elif _wait_for_event(trace, proc, "manifest writing"):
                time.sleep(point.delay)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    events = _events(trace)
    steps = [e for e in events if not e.startswith("self-kill")]
    return {
        "point": point.label,
        "how": f"self-SIGKILL after {point.crash_at}" if point.injected
        else f"SIGKILL {point.delay:.1f} s after {point.after}",
        "killed": proc.returncode == -signal.SIGKILL,
        "returncode": proc.returncode,
        "at_s": round(time.monotonic() - t0, 2),
        "last_step": steps[-1] if steps else "(before any ingest step)",
        "stderr_tail": err[-300:] if proc.returncode not in (0, -signal.SIGKILL) else "",
    }


def recover_and_check(settings: Settings, record: dict[str, Any]) -> None:
    from assistant.chat import Assistant

    expected = expected_ids(settings)
    state = read_manifest(settings.index.index_dir) or {}
    record["after_kill"] = {"manifest": state.get("state"), "records": len(record_keys(settings)),
                            "expected": len(expected)}
    t0 = time.monotonic()
    report = run_ingest(settings)
    record["recovery"] = {"added": report.added, "deleted": report.deleted, "orphans_removed": report.orphans_removed,
                          "records_repaired": report.records_repaired, "seconds": round(time.monotonic() - t0, 2)}
    assert_converged(settings, expected)
    check_answer(Assistant(settings).ask(QUESTION).to_dict(), settings)
    record["converged"] = True


def _print_table(title: str, records: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    for r in records:
        print(f"  {'KILLED' if r['killed'] else 'finished':8} {r['how']:42} at {r['at_s']:5.2f} s  "
              f"last step: {r['last_step']:18} after kill: {r.get('after_kill')}  "
              f"recovery: {r.get('recovery')}  converged: {r.get('converged', False)}")


@pytest.mark.timeout(420)
def test_sigkill_embedded_ingest_at_many_points_then_converge(tmp_path: Path, hash_template: Settings) -> None:
    records: list[dict[str, Any]] = []
    FIGURES.setdefault("kill", {})["embedded"] = records
    for i, point in enumerate(EMBEDDED_POINTS):
        work = tmp_path / f"point-{i}"
        settings = copy_hash_index(hash_template, work)  # fresh: this process opens it only after the kill
        old_collection = settings.index.collection_name()
        if point.kind == "rebuild":
            settings = settings.replace(**REBUILD)
        prepare(settings, point, i)
        record = kill_once(settings, point, work)
        records.append(record)
        assert record["returncode"] in (0, -signal.SIGKILL), record
        if point.revert:
            shutil.rmtree(settings.index.corpus_dir)
            shutil.copytree(hash_template.index.corpus_dir, settings.index.corpus_dir)
        recover_and_check(settings, record)
        if point.revert:
            assert record["recovery"]["orphans_removed"] > 0, "the killed run's new vectors were removed"
        if point.kind == "rebuild":
            from ingest.store import open_client

            names = {getattr(c, "name", c) for c in open_client(settings).list_collections()}
            assert names == {settings.index.collection_name()}, "the old collection is dropped"
            assert record_keys(settings, old_collection) == []
    _print_table("kill points (embedded store)", records)
    timed = [r for r, p in zip(records, EMBEDDED_POINTS) if not p.injected]
    injected = [r for r, p in zip(records, EMBEDDED_POINTS) if p.injected]
    assert sum(r["killed"] for r in timed) >= 5, "at least five timed SIGKILLs landed while the child was running"
    assert all(r["killed"] for r in injected)
    assert any(r["last_step"].startswith("embed-start") for r in records), "a kill landed during embedding"
    assert any(r["last_step"].startswith(("upsert-done", "records-done", "delete-done")) for r in records)


@pytest.mark.timeout(300)
def test_repeated_kills_without_recovery_then_one_ingest_converges(tmp_path: Path, hash_template: Settings) -> None:
    """Three interrupted runs in a row (a --full, an incremental, an injected crash), then one ingest."""
    settings = copy_hash_index(hash_template, tmp_path / "chain")
    records = []
    for i, point in enumerate([KillPoint("chain 1", "full", "writing", 0.7),
                               KillPoint("chain 2", "incremental", "writing", 0.3),
                               KillPoint("chain 3", "incremental", crash_at="upsert:1")]):
        prepare(settings, point, i)
        records.append(kill_once(settings, point, tmp_path))
        assert records[-1]["returncode"] in (0, -signal.SIGKILL), records[-1]
    record = {"point": "3 kills in a row", "how": "", "killed": sum(r["killed"] for r in records), "at_s": 0.0,
              "last_step": "; ".join(r["last_step"] for r in records)}
    recover_and_check(settings, record)
    FIGURES.setdefault("kill", {})["chain"] = record
    assert record["killed"] >= 2


@pytest.mark.server
@pytest.mark.timeout(300)
def test_sigkill_server_ingest_then_converge(tmp_path: Path, corpus_snapshot: Path,
                                            chroma_server: ChromaServer) -> None:
    """The same against the Chroma server: the vectors are remote, the record manager is local."""
    settings = chroma_server.settings(tmp_path, corpus_snapshot, "srv_kill")
    run_ingest(settings)
    records: list[dict[str, Any]] = []
    FIGURES.setdefault("kill", {})["server"] = records
    for i, point in enumerate(SERVER_POINTS):
        prepare(settings, point, i)
        record = kill_once(settings, point, tmp_path)
        records.append(record)
        assert record["returncode"] in (0, -signal.SIGKILL), record
        recover_and_check(settings, record)
        ids = set(chroma_server.client().get_collection(settings.index.collection_name()).get(include=[])["ids"])
        assert ids == set(record_keys(settings)) == expected_ids(settings)
    _print_table("kill points (Chroma server)", records)
    assert sum(r["killed"] for r in records) >= 3
    json.dumps(records)
