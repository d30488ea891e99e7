"""A long-lived Assistant switches to a new index generation between requests, whole: a request
pinned to the old generation finishes on it, a failed load keeps the old one, and 0 turns it off.
Hash embedder, embedded Chroma, ingest in this process (the subprocess case is
tests/resilience/test_live_reindex.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from assistant.chat import Assistant, Loaded
from assistant.compose import Composition, GroundedComposer
from assistant.generations import read_generation
from assistant.settings import Settings
from assistant.types import Answer
from ingest.pipeline import run_ingest
from tests.conftest import make_settings

pytestmark = pytest.mark.slow  # five in-process ingests: about 50 s

QUESTION = "Who should supervise peer workers?"
MARKER = "Zebrafinch"


@pytest.fixture
def indexed(tmp_path: Path, corpus_copy: Path) -> Settings:
    settings = make_settings(tmp_path, corpus_copy, embedding_model="hash-384", abstain_threshold=-1.0,
                             generation_check_s=0.05)
    run_ingest(settings)
    return settings


def edit_cited_card(settings: Settings, assistant: Assistant) -> None:
    """Put MARKER before the first quoted sentence of the answer, in its card file, and reindex."""
    first = assistant.ask(QUESTION).citations[0]
    path = next(settings.index.corpus_dir.rglob(f"{first.card_id}.md"))
    anchor = " ".join(first.quote.split()[:6])
    text = path.read_text(encoding="utf-8")
    assert anchor in text
    path.write_text(text.replace(anchor, f"{MARKER} {anchor}", 1), encoding="utf-8")
    run_ingest(settings)


def wait_for_switch(assistant: Assistant, switches: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while assistant.switches < switches and time.monotonic() < deadline:
        assistant.ask(QUESTION)
        time.sleep(0.05)
    assert assistant.switches == switches


def test_a_reindex_is_switched_to_between_requests(indexed: Settings) -> None:
    assistant = Assistant(indexed)
    assistant.warm_up()
    first = assistant.generation
    assert first is not None and first == read_generation(indexed.index)
    assert MARKER not in assistant.ask(QUESTION).answer

    edit_cited_card(indexed, assistant)
    assert read_generation(indexed.index) != first
    wait_for_switch(assistant, 1)
    assert assistant.generation == read_generation(indexed.index)
    answer = assistant.ask(QUESTION)
    assert MARKER in answer.answer
    assert any(MARKER in c.quote for c in answer.citations)
    fresh = Assistant(indexed).ask(QUESTION)  # the same answer a newly started process gives
    assert fresh.to_dict()["answer"] == answer.to_dict()["answer"]
    assert fresh.to_dict()["citations"] == answer.to_dict()["citations"]


def test_a_pinned_request_finishes_on_its_generation(indexed: Settings) -> None:
    assistant = Assistant(indexed)
    assistant.warm_up()
    old_retriever = assistant.retriever
    pinned, owner = assistant._pin()  # what ask() does for the request it serves
    try:
        edit_cited_card(indexed, assistant)  # nested ask() calls keep the outer pin
        assistant._switch_to(read_generation(indexed.index) or "")
        assert assistant.switches == 1
        assert assistant.retriever is old_retriever and assistant._view() is pinned  # still the old one
        assert not any(MARKER in p.text for p in assistant.retriever.passages)
    finally:
        assistant._unpin(owner)
    assert assistant.retriever is not old_retriever  # the next request reads the new one
    assert any(MARKER in p.text for p in assistant.retriever.passages)


def test_a_generation_that_fails_to_load_keeps_the_old_one(indexed: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assistant = Assistant(indexed)
    assistant.warm_up()
    before = assistant.generation

    def broken(self: Loaded) -> None:
        raise RuntimeError("half-written index")

    monkeypatch.setattr(Loaded, "build", broken)
    edit_cited_card(indexed, assistant)
    assistant._switch_to(read_generation(indexed.index) or "")
    assert assistant.switches == 0 and assistant.generation == before
    assert assistant.ask(QUESTION).status == "answered"  # still answering, from the old generation


def test_no_checks_when_turned_off(indexed: Settings) -> None:
    assistant = Assistant(indexed.replace(generation_check_s=0.0))
    assistant.warm_up()
    loaded = assistant.generation
    edit_cited_card(indexed, assistant)
    for _ in range(5):
        assistant.ask(QUESTION)
        time.sleep(0.05)
    assert assistant.switches == 0 and assistant.generation == loaded != read_generation(indexed.index)
    assert MARKER not in assistant.ask(QUESTION).answer


class SteppedComposer:
    """Streams two pieces, then the grounded composition; records which generation each step reads."""

    def __init__(self) -> None:
        self.assistant: Assistant | None = None
        self.views: list[Loaded] = []

    def compose(self, question: str, result: Any) -> Composition:
        gen = self.stream(question, result)
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                composition: Composition = stop.value
                return composition

    def stream(self, question: str, result: Any) -> Generator[str, None, Composition]:
        a = self.assistant
        assert a is not None
        for piece in ("First. ", "Second. "):
            self.views.append(a._view())
            yield piece
        self.views.append(a._view())
        return GroundedComposer(a.settings.compose, a.taxonomy, a.vocabulary, a.retriever.idf).compose(question, result)


def test_a_streamed_answer_resumed_on_other_threads_keeps_its_generation_and_leaves_no_pin(indexed: Settings) -> None:
    """Gradio advances a streaming handler one step at a time on whichever pool thread is free: every
    step must read the generation the answer started on, and no thread may stay pinned after its step."""
    composer = SteppedComposer()
    assistant = Assistant(indexed, composer=composer)
    composer.assistant = assistant
    assistant.warm_up()
    stream = assistant.ask_stream(QUESTION)

    def step() -> dict[str, Any]:
        out: dict[str, Any] = {}

        def run() -> None:
            try:
                out["value"] = next(stream)
            except StopIteration:
                out["stop"] = True
            out["left_pinned"] = getattr(assistant._pinned, "loaded", None)

        t = threading.Thread(target=run)
        t.start()
        t.join()
        return out

    first = step()
    assert first["value"] == "First. " and first["left_pinned"] is None
    started_on = composer.views[0]
    edit_cited_card(indexed, assistant)  # a reindex lands while the answer is half streamed
    assistant._switch_to(read_generation(indexed.index) or "")
    assert assistant.switches == 1 and assistant._live is not started_on
    steps = [step() for _ in range(3)]
    assert [s.get("value") for s in steps[:1]] == ["Second. "] and steps[2].get("stop")
    assert all(s["left_pinned"] is None for s in steps)
    answer = steps[1]["value"]
    assert isinstance(answer, Answer) and answer.status == "answered"
    assert all(v is started_on for v in composer.views)  # every step read the old generation
    assert MARKER not in answer.answer
    assert MARKER in assistant.ask(QUESTION).answer  # the next request reads the new one
