"""Answers in worker processes (``answer_workers``): the same answers as in-process, typed errors with
their help text, and the UI's cards from the current generation. Hash embedder; spawning workers
takes a few seconds, so this is the slow tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.chat import Assistant
from assistant.errors import InvalidQuestionError
from assistant.ui.workers import PooledAssistant
from ingest.pipeline import run_ingest
from tests.conftest import make_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_pooled_answers_match_in_process_answers(tmp_path: Path, corpus_copy: Path) -> None:
    settings = make_settings(tmp_path, corpus_copy, embedding_model="hash-384", abstain_threshold=-1.0)
    run_ingest(settings)
    local = Assistant(settings)
    pooled = PooledAssistant(settings, local, workers=1)
    try:
        pooled.warm_up()
        for question, history in (("Who should supervise peer workers?", None),
                                  ("and what about training?", ["Who should supervise peer workers?"])):
            theirs, ours = pooled.ask(question, history=history).to_dict(), local.ask(question, history=history).to_dict()
            for key in ("status", "answer", "citations", "retrieved", "strategies"):
                assert theirs[key] == ours[key], key
        with pytest.raises(InvalidQuestionError) as err:  # the worker's error class survives (HTTP 400)
            pooled.ask("x" * 5000)
        assert "limit is 2,000" in str(err.value) and "Ask one short question" in err.value.help_message
        streamed = list(pooled.ask_stream("Who should supervise peer workers?"))  # the chat's call
        assert len(streamed) == 1 and streamed[0].to_dict()["answer"] == local.ask(
            "Who should supervise peer workers?").to_dict()["answer"]

        def in_the_ui_process(*args: object, **kwargs: object) -> None:
            raise AssertionError("the UI process's own assistant answered")

        local.ask_stream = in_the_ui_process  # type: ignore[method-assign]
        assert len(list(pooled.ask_stream("What training do peer workers need?"))) == 1  # a worker answered
        del local.ask_stream
        assert {c.id for c in pooled.corpus.cards} == {c.id for c in local.corpus.cards}
        assert pooled.taxonomy is local.taxonomy  # everything but ask comes from the local assistant
    finally:
        pooled.close()
