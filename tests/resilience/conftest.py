"""Fixtures for the scale-and-resilience suite.

Everything stays on loopback: a real ``chroma run`` server on 127.0.0.1 at a free port, ``peer-assist``
subprocesses and the Gradio app. Child processes get ``PYTHONPATH=tests/resilience/inject``, whose
``sitecustomize.py`` can log and refuse non-loopback connections, trace ingest steps, slow embedding
down or SIGKILL the process at an exact step (each only when its environment variable is set).

The figures a test measures (kill points, load, fuzz counts) go into ``FIGURES``; they are printed at
the end of the run and written to ``$RESILIENCE_FIGURES`` (JSON) when that variable is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

from ingest.settings import IndexSettings
from assistant.settings import PROJECT_ROOT, Settings
from tests.conftest import CORPUS

HERE = Path(__file__).resolve().parent
INJECT = HERE / "inject"
VENV_BIN = PROJECT_ROOT / ".venv" / "bin"
HASH_MODEL = "hash-64"
REAL_MODEL = IndexSettings.model_fields["embedding_model"].default
QUESTION = "Who should supervise peer workers?"

#: Measured figures, printed at the end of the session (see pytest_terminal_summary).
FIGURES: dict[str, Any] = {}


def bin_path(name: str) -> str:
    """A console script of the project's virtual environment (falling back to the running one)."""
    for folder in (VENV_BIN, Path(sys.executable).parent):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed in {VENV_BIN}")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------------
# Child processes


#: On a loaded 2-core machine OpenBLAS's worker threads make the NumPy query encoder's small matrix
#: products up to ~200x slower (a 384x384 product: 0.14 ms with one thread, ~24 ms with two while
#: other processes compete for the cores), so child processes run with one BLAS thread, the setting
#: docs/OPERATIONS.md recommends. The load test records which setting it measured.
BLAS_THREADS = os.environ.get("RESILIENCE_BLAS_THREADS", "1")


def child_env(**extra: Any) -> dict[str, str]:
    """The environment for a child: offline, no inherited PEER_ASSIST_* settings, the test hooks on
    PYTHONPATH, one BLAS thread, plus ``extra`` (None removes a variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PEER_ASSIST_", "RESILIENCE_"))}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                "ANONYMIZED_TELEMETRY": "False", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join([str(INJECT), str(PROJECT_ROOT)])})
    if BLAS_THREADS != "default":
        env["OPENBLAS_NUM_THREADS"] = BLAS_THREADS
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def settings_env(settings: Settings) -> dict[str, str]:
    """PEER_ASSIST_* variables that give a child process the same settings."""
    env = {"PEER_ASSIST_CORPUS_DIR": str(settings.index.corpus_dir), "PEER_ASSIST_INDEX_DIR": str(settings.index.index_dir),
           "PEER_ASSIST_EMBEDDING_MODEL": settings.index.embedding_model,
           "PEER_ASSIST_COLLECTION_PREFIX": settings.index.collection_prefix,
           "PEER_ASSIST_ABSTAIN_THRESHOLD": str(settings.scope.abstain_threshold),
           "PEER_ASSIST_CHUNK_SIZE": str(settings.index.chunk_size), "PEER_ASSIST_CHUNK_OVERLAP": str(settings.index.chunk_overlap)}
    if settings.index.chroma_host:
        env["PEER_ASSIST_CHROMA_HOST"] = settings.index.chroma_host
        env["PEER_ASSIST_CHROMA_PORT"] = str(settings.index.chroma_port)
    return env


def run_cli(args: Sequence[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([bin_path("peer-assist"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=str(PROJECT_ROOT))


def start_cli(args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([bin_path("peer-assist"), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=str(PROJECT_ROOT))


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM the process by its PID, then SIGKILL if it has not exited after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def assert_friendly(result: subprocess.CompletedProcess[str]) -> None:
    """A user-facing failure: exit 1, an ``Error:`` line, no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr[-3000:]


# ------------------------------------------------------------------------------------------------
# Index checks


def expected_ids(settings: Settings) -> set[str]:
    """The passage ids the corpus in ``settings`` should produce (split_corpus)."""
    from ingest.cards import load_corpus
    from ingest.split import split_corpus

    corpus = load_corpus(settings.index.corpus_dir, settings.index.max_card_bytes)
    return {p.id for p in split_corpus(corpus.cards, settings.index.chunk_size, settings.index.chunk_overlap)}


def record_keys(settings: Settings, collection: str | None = None) -> list[str]:
    """The record manager's keys for a collection, read with plain sqlite3 (duplicates kept).

    Opened read-write although it only reads: after a SIGKILL mid-transaction the database has a hot
    journal, which a read-only connection cannot roll back ("attempt to write a readonly database")."""
    path = settings.index.index_dir / "records.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(str(path), timeout=30) as conn:
        rows = conn.execute("SELECT key FROM upsertion_record WHERE namespace = ?",
                            (f"chroma/{collection or settings.index.collection_name()}",)).fetchall()
    return [r[0] for r in rows]


def manifest(settings: Settings) -> dict[str, Any]:
    return json.loads((settings.index.index_dir / "manifest.json").read_text(encoding="utf-8"))


def assert_converged(settings: Settings, expected: set[str] | None = None) -> None:
    """Collection ids == record-manager keys == the corpus's passage ids: no duplicates, no orphans."""
    from ingest.store import EvidenceStore

    expected = expected_ids(settings) if expected is None else expected
    store = EvidenceStore(settings)
    ids, keys = store.ids(), record_keys(settings)
    assert len(keys) == len(set(keys)), "duplicate record-manager keys"
    assert ids - expected == set(), f"{len(ids - expected)} orphan vectors"
    assert expected - ids == set(), f"{len(expected - ids)} passages missing from the collection"
    assert set(keys) == expected, "record manager and corpus disagree"
    assert store.count() == len(expected), "duplicate vectors"
    state = manifest(settings)
    assert state["state"] == "complete" and state["collection"] == settings.index.collection_name()
    assert {pid for c in state["cards"].values() for pid in c["passages"]} == expected


def _ws(text: str) -> str:
    return " ".join(text.split())


def check_answer(data: dict[str, Any], settings: Settings, *, status: str | None = "answered") -> None:
    """The answer contract: every [n] resolves, citations are numbered 1..n, each card exists and
    each quote is text of that card."""
    if status is not None:
        assert data["status"] == status, (data["status"], data.get("reason"))
    numbers = [c["n"] for c in data["citations"]]
    assert numbers == list(range(1, len(numbers) + 1))
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", data["answer"])}
    assert markers <= set(numbers), f"unresolved citation markers {markers - set(numbers)}"
    if data["status"] == "answered":
        assert data["citations"] and markers, "an answer cites its evidence"
    cards = _cards(settings.index.corpus_dir)
    for c in data["citations"]:
        assert c["card_id"] in cards, c["card_id"]
        assert _ws(c["quote"]) in cards[c["card_id"]], (c["card_id"], c["quote"][:80])
    json.dumps(data)


_CARD_TEXT: dict[Path, tuple[Any, dict[str, str]]] = {}


def _cards(corpus_dir: Path) -> dict[str, str]:
    """Card id -> whitespace-normalised full text, cached until a card file is added, removed or changed."""
    from ingest.cards import load_corpus

    stamp = tuple(sorted((str(p), p.stat().st_mtime_ns) for p in corpus_dir.rglob("*.md")))
    cached = _CARD_TEXT.get(corpus_dir)
    if cached is None or cached[0] != stamp:
        corpus = load_corpus(corpus_dir)
        cached = (stamp, {c.id: _ws(c.full_text()) for c in corpus.cards})
        _CARD_TEXT[corpus_dir] = cached
    return cached[1]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def last_study(corpus: Path) -> Path:
    """The card the tests delete: the last study, which ``retitle_cards`` never touches."""
    return sorted((corpus / "studies").glob("*.md"))[-1]


def retitle_cards(corpus: Path, n: int = 30, prefix: str = "Revised - ") -> list[str]:
    """Change the title of ``n`` study cards: every passage of those cards gets a new id."""
    changed = []
    studies = sorted((corpus / "studies").glob("*.md"))
    assert len(studies) > n, "the corpus has enough study cards to edit n and delete one more"
    for path in studies[:n]:
        text = path.read_text(encoding="utf-8")
        quoted = '\ntitle: "' in text
        old, new = ('\ntitle: "', f'\ntitle: "{prefix}') if quoted else ("\ntitle: ", f"\ntitle: {prefix}")
        assert old in text, path
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        changed.append(path.stem)
    return changed


# ------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def res_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A frozen copy of the real corpus for this session (other engineers may be editing corpus/)."""
    dest = tmp_path_factory.mktemp("res-corpus") / "corpus"
    shutil.copytree(CORPUS, dest)
    return dest


@pytest.fixture
def corpus_snapshot(tmp_path: Path, res_corpus: Path) -> Path:
    """A writable copy of the session's frozen corpus."""
    dest = tmp_path / "corpus"
    shutil.copytree(res_corpus, dest)
    return dest


def hash_settings(root: Path, corpus: Path, **overrides: Any) -> Settings:
    """Hash-embedder settings; abstaining is off because hash vectors have no meaning to threshold."""
    return Settings(corpus_dir=corpus, index_dir=root / "index", embedding_model=HASH_MODEL,
                    abstain_threshold=-1.0, **overrides)


@pytest.fixture(scope="session")
def hash_template(tmp_path_factory: pytest.TempPathFactory, res_corpus: Path) -> Settings:
    """The session corpus indexed once with the hash embedder in an embedded store (never modified)."""
    from ingest.pipeline import run_ingest

    root = tmp_path_factory.mktemp("hash-template")
    shutil.copytree(res_corpus, root / "corpus")
    settings = hash_settings(root, root / "corpus")
    report = run_ingest(settings)
    assert report.added == report.passages > 0
    return settings


def copy_hash_index(template: Settings, root: Path) -> Settings:
    """A writable copy of the template's corpus and index under ``root`` (never opened in this process)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template.index.corpus_dir, root / "corpus")
    shutil.copytree(template.index.index_dir, root / "index", ignore=shutil.ignore_patterns("ingest.lock"))
    return hash_settings(root, root / "corpus")


@pytest.fixture
def hash_index(tmp_path: Path, hash_template: Settings) -> Settings:
    return copy_hash_index(hash_template, tmp_path / "copy")


@dataclass
class ChromaServer:
    host: str
    port: int
    path: Path
    proc: subprocess.Popen[bytes]

    def settings(self, root: Path, corpus: Path, prefix: str, **overrides: Any) -> Settings:
        """Settings that use this server, with their own collection (prefix) and record manager."""
        base: dict[str, Any] = {"embedding_model": HASH_MODEL, "abstain_threshold": -1.0}
        base.update(overrides)
        return Settings(corpus_dir=corpus, index_dir=root / "index", chroma_host=self.host, chroma_port=self.port,
                        collection_prefix=prefix, **base)

    def client(self) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        return chromadb.HttpClient(host=self.host, port=self.port, settings=ChromaSettings(anonymized_telemetry=False))


def wait_for_http(url: str, proc: subprocess.Popen[Any], timeout: float, what: str) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before it was ready")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready at {url} after {timeout} s: {last}")


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A real ``chroma run`` on 127.0.0.1 at a free port with a temporary --path; stopped by PID."""
    path = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = open(path.parent / f"{path.name}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([bin_path("chroma"), "run", "--path", str(path / "data"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            env=child_env(RESILIENCE_NET_LOG=None))
    try:
        t0 = time.monotonic()
        wait_for_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", proc, 60, "chroma run")
        FIGURES.setdefault("server", {})["chroma_start_s"] = round(time.monotonic() - t0, 2)
        yield ChromaServer("127.0.0.1", port, path / "data", proc)
    finally:
        stop_process(proc, grace=10)
        log.close()


@pytest.fixture(scope="session")
def strace_available() -> str | None:
    exe = shutil.which("strace")
    if exe is None:
        return None
    probe = subprocess.run([exe, "-f", "--seccomp-bpf", "-qq", "-e", "trace=connect", "-o", os.devnull, "true"],
                           capture_output=True, timeout=30)
    return exe if probe.returncode == 0 else None


def traced(cmd: Sequence[str], trace_file: Path, strace: str | None) -> list[str]:
    """``cmd`` under ``strace -f`` (connect/sendto/sendmsg, every thread and child) when available."""
    if strace is None:
        return list(cmd)
    return [strace, "-f", "--seccomp-bpf", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(trace_file),
            *cmd]


@dataclass
class TracedIndex:
    settings: Settings
    strace_file: Path | None
    net_log: Path
    seconds: float
    report: dict[str, Any]


@pytest.fixture(scope="session")
def real_index_traced(tmp_path_factory: pytest.TempPathFactory, res_corpus: Path,
                      strace_available: str | None) -> TracedIndex:
    """The session corpus indexed with the real model by ``peer-assist ingest`` in a child process whose
    network use is observed (strace) and guarded (sitecustomize). Used by the no-network and load tests."""
    root = tmp_path_factory.mktemp("real-traced")
    settings = Settings(corpus_dir=res_corpus, index_dir=root / "index", embedding_model=REAL_MODEL)
    strace_file = root / "ingest.strace" if strace_available else None
    net_log = root / "ingest.netlog"
    env = child_env(RESILIENCE_NET_LOG=net_log, **settings_env(settings))
    t0 = time.monotonic()
    result = subprocess.run(traced([bin_path("peer-assist"), "ingest", "--json"], root / "ingest.strace",
                                   strace_available), env=env, capture_output=True, text=True, timeout=600,
                            cwd=str(PROJECT_ROOT))
    seconds = time.monotonic() - t0
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["added"] == report["passages"] > 0 and report["model_loaded"]
    return TracedIndex(settings, strace_file, net_log, seconds, report)


# ------------------------------------------------------------------------------------------------
# Reporting


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("resilience figures")
    for line in json.dumps(FIGURES, indent=1, sort_keys=True, default=str).splitlines():
        terminalreporter.write_line(line)
    out = os.environ.get("RESILIENCE_FIGURES")
    if out:
        Path(out).write_text(json.dumps(FIGURES, indent=1, sort_keys=True, default=str), encoding="utf-8")
