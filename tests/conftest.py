"""Shared fixtures. Unit tests use the hash embedder and a temporary index; tests marked
``integration`` use the real model and a real Chroma directory. No test may reach the network:
any connection to a non-loopback address fails the test."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from assistant.settings import PROJECT_ROOT, Settings  # noqa: E402

CORPUS = PROJECT_ROOT / "corpus"


class NoEmbedder:
    """Fails the test if anything is embedded."""

    name = "no-embedder"

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        raise AssertionError(f"embedded {len(texts)} passages on a run that should embed nothing")

    def embed_query(self, text: str) -> list[float]:
        raise AssertionError("embedded a query")


class NetworkBlocked(AssertionError):
    pass


def _is_loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fail on any outbound connection that is not loopback (records attempts for tests to inspect)."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guard(address: Any) -> None:
        attempts.append(address)
        if not _is_loopback(address):
            raise NetworkBlocked(f"test tried to reach the network: {address!r}")

    def connect(self: socket.socket, address: Any) -> Any:
        guard(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        guard(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield attempts


def make_settings(tmp_path: Path, corpus: Path | None = None, **overrides: Any) -> Settings:
    return Settings(corpus_dir=corpus or CORPUS, index_dir=tmp_path / "index", **overrides)


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of the real corpus."""
    dest = tmp_path / "corpus"
    shutil.copytree(CORPUS, dest)
    return dest


@pytest.fixture
def fake_settings(tmp_path: Path, corpus_copy: Path) -> Settings:
    """Settings with the deterministic hash embedder, a copy of the corpus and a temporary index."""
    return make_settings(tmp_path, corpus_copy, embedding_model="hash-64")


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The real corpus indexed once with the real model into a temporary Chroma directory."""
    from ingest.pipeline import run_ingest

    settings = make_settings(tmp_path_factory.mktemp("real"))
    run_ingest(settings)
    return settings


@pytest.fixture(scope="session")
def real_assistant(real_index: Settings) -> Any:
    from assistant.chat import Assistant

    assistant = Assistant(real_index)
    assistant.warm_up()
    return assistant
