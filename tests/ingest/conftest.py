"""Fixtures and helpers for the ingestion tests.

Building a hash-embedder index of the whole corpus costs about a second, so it is built once per
session (``template_index``) and copied into each test that needs one (``indexed_settings``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from assistant.settings import Settings
from tests.conftest import CORPUS, make_settings

HASH_MODEL = "hash-64"

#: A small slice of the real corpus (one card per folder, plus gates-2007 for the duplicate tests):
#: the per-kind bad-card tests run on it so that ~90 of them stay fast.
MINI_CARDS = ("review/zeng-2021.md", "studies/gates-2007.md", "studies/chinman-2008.md", "related/byrne-2022.md")


def copy_corpus(dest: Path, cards: tuple[str, ...] | None = None) -> Path:
    """Copy the real corpus (or only ``cards`` of it, with themes.yaml) to ``dest``."""
    if cards is None:
        shutil.copytree(CORPUS, dest)
        return dest
    dest.mkdir(parents=True)
    shutil.copy2(CORPUS / "themes.yaml", dest / "themes.yaml")
    for rel in cards:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(CORPUS / rel, dest / rel)
    return dest

# ------------------------------------------------------------------------------------------------
# A valid card that is not in the corpus; the bad-card tests mutate it one way at a time.

GOOD_ID = "newcard-2020"
GOOD_REL = f"studies/{GOOD_ID}.md"

GOOD_FRONT: dict[str, str] = {
    "id": GOOD_ID,
    "kind": "study",
    "title": "Supporting peer workers in a community mental health test service",
    "authors": '["Smith, A. B.", "Jones, C."]',
    "year": "2020",
    "venue": "Journal of Test Evidence",
    "doi": "10.9999/newcard.2020",
    "country": "UK",
    "setting": "community mental health teams in one NHS trust",
    "design": "qualitative; semi-structured interviews",
    "participants": "12 peer workers and 8 team managers",
    "review_inclusion": "possible",
    "themes": "[organizational-preparation, support-development]",
    "sources": '["https://example.org/newcard-2020"]',
}

GOOD_BODY = """## Summary
Smith and Jones interviewed peer workers and their managers in one trust about how the service
prepared for peer roles and what kept peer workers in post.

## Strategies
### organizational-preparation/policies: Put confidentiality policies in place first
In the trust studied by Smith and Jones (2020), managers said written confidentiality and disclosure
policies made the first months easier for new peer workers.

### support-development/supervision: Offer supervision that understands the peer role
Peer workers in the Smith and Jones (2020) study valued supervisors who understood lived experience
work and met them every fortnight.

## Caveats
One small qualitative study in a single trust; findings may not transfer.
"""


def card_text(front: dict[str, str] | None = None, *, drop: tuple[str, ...] = (), extra: str = "",
              body: str = GOOD_BODY) -> str:
    """The good card with some front-matter fields replaced, dropped or added."""
    fields = {**GOOD_FRONT, **(front or {})}
    lines = [f"{key}: {value}" for key, value in fields.items() if key not in drop]
    return "---\n" + "\n".join(lines) + "\n" + extra + "---\n" + body


def write_card(corpus: Path, rel: str, content: str | bytes | None) -> Path:
    """Write a card (text, raw bytes, or ``None`` for an unreadable path: a directory named *.md)."""
    path = corpus / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.mkdir()
        (path / "inside.txt").write_text("a directory, not a card", encoding="utf-8")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def edit_card(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def manifest_snapshot(settings: Settings) -> tuple[bytes, int, int] | None:
    """The manifest's bytes, inode and mtime: a rewrite (always a new file) changes the snapshot."""
    path = settings.index.index_dir / "manifest.json"
    if not path.exists():
        return None
    st = path.stat()
    return path.read_bytes(), st.st_ino, st.st_mtime_ns


def manifest(settings: Settings) -> dict[str, Any]:
    return json.loads((settings.index.index_dir / "manifest.json").read_text(encoding="utf-8"))


def collection_names(settings: Settings) -> set[str]:
    from ingest.store import open_client

    return {getattr(c, "name", c) for c in open_client(settings).list_collections()}


def expected_ids(settings: Settings) -> set[str]:
    """The passage ids the corpus in ``settings`` should produce."""
    from ingest.cards import load_corpus
    from ingest.split import split_corpus

    corpus = load_corpus(settings.index.corpus_dir, settings.index.max_card_bytes)
    return {p.id for p in split_corpus(corpus.cards, settings.index.chunk_size, settings.index.chunk_overlap)}


def ids_by_card(settings: Settings) -> dict[str, set[str]]:
    """Passage ids in the store, grouped by card id."""
    from ingest.store import EvidenceStore

    out: dict[str, set[str]] = {}
    for p in EvidenceStore(settings).passages():
        out.setdefault(p.card_id, set()).add(p.id)
    return out


# ------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def hash_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Environment for CLI runs: the hash embedder and no other PEER_ASSIST_* settings."""
    from assistant.settings import get_settings

    for key in list(os.environ):
        if key.startswith("PEER_ASSIST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PEER_ASSIST_EMBEDDING_MODEL", HASH_MODEL)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _build_template(tmp_path_factory: pytest.TempPathFactory, name: str,
                    cards: tuple[str, ...] | None) -> Settings:
    from ingest.pipeline import run_ingest

    root = tmp_path_factory.mktemp(name)
    corpus = copy_corpus(root / "corpus", cards)
    settings = make_settings(root, corpus, embedding_model=HASH_MODEL)
    report = run_ingest(settings)
    assert report.added == report.passages > 0
    return settings


def _copy_index(template: Settings, tmp_path: Path, corpus: Path) -> Settings:
    settings = make_settings(tmp_path, corpus, embedding_model=HASH_MODEL)
    shutil.copytree(template.index.index_dir, settings.index.index_dir, ignore=shutil.ignore_patterns("ingest.lock"))
    return settings


@pytest.fixture(scope="session")
def template_index(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The real corpus indexed once with the hash embedder (never modified: tests copy it)."""
    return _build_template(tmp_path_factory, "template", None)


@pytest.fixture(scope="session")
def mini_template_index(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """MINI_CARDS indexed once with the hash embedder (never modified: tests copy it)."""
    return _build_template(tmp_path_factory, "mini-template", MINI_CARDS)


@pytest.fixture
def indexed_settings(tmp_path: Path, corpus_copy: Path, template_index: Settings) -> Settings:
    """Like ``fake_settings`` (hash embedder, writable corpus copy), with the index already built."""
    return _copy_index(template_index, tmp_path, corpus_copy)


@pytest.fixture
def mini_corpus(tmp_path: Path) -> Path:
    """A writable copy of MINI_CARDS and themes.yaml."""
    return copy_corpus(tmp_path / "mini-corpus", MINI_CARDS)


@pytest.fixture
def mini_indexed_settings(tmp_path: Path, mini_corpus: Path, mini_template_index: Settings) -> Settings:
    """Hash-embedder settings over ``mini_corpus`` with its index already built."""
    return _copy_index(mini_template_index, tmp_path, mini_corpus)
