"""Answers in worker processes, for a ``serve`` on several cores (``answer_workers`` > 0).

Answering is CPU-bound Python: in one process the GIL lets about one core's worth of answers run,
whatever the concurrency limit, and Gradio's own work per request shares that core. With N worker
processes the UI process only receives requests and renders replies; each worker holds its own
``Assistant`` (model, passages, BM25) and switches index generations by itself, like any long-lived
assistant. The cost is memory: each worker holds what one ``serve`` holds (docs/OPERATIONS.md).
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from assistant.errors import AssistantError
from assistant.settings import Settings
from assistant.types import Answer

log = logging.getLogger(__name__)

_WORKER: Any = None  # the Assistant of this worker process


def _start(settings: Settings) -> None:
    """Worker initializer: load and warm the assistant once (one answer loads every lazy part)."""
    global _WORKER
    from assistant.chat import Assistant

    _WORKER = Assistant(settings)
    _WORKER.warm_up()
    _WORKER.ask("Who should supervise peer workers?")


def _ready() -> bool:
    time.sleep(0.2)  # long enough for every worker to take one of these
    return _WORKER is not None


def _answer(question: str, history: Sequence[str] | None, theme: str | None) -> tuple[str, Any, str]:
    """One answer in a worker: ("ok", Answer, "") or (error class name, message, help) for a typed
    error (an exception's own help text does not survive pickling, so it travels as text)."""
    try:
        return "ok", _WORKER.ask(question, history=history, theme=theme), ""
    except AssistantError as exc:
        return type(exc).__name__, str(exc), exc.help_message


def _typed_error(name: str, message: str, help_text: str) -> AssistantError:
    """The worker's typed error again, as its own class when that takes (message, help) (for example
    ``InvalidQuestionError``, which the HTTP API answers with 400), else as ``AssistantError``."""
    from assistant import errors

    cls = getattr(errors, name, AssistantError)
    if not (isinstance(cls, type) and issubclass(cls, AssistantError)) or name in ("CorpusError",):
        cls = AssistantError
    try:
        return cls(message, help_text or None)
    except TypeError:  # a class with another constructor
        return AssistantError(message, help_text or None)


class PooledAssistant:
    """The part of ``Assistant`` the UI uses, with ``ask`` run in worker processes; everything else
    (the corpus for cards and the evidence map) comes from a local assistant that loads no model."""

    def __init__(self, settings: Settings, local: Any, workers: int) -> None:
        self.settings = settings
        self.local = local
        self.workers = workers
        self._lock = threading.Lock()
        self._pool = self._new_pool()
        self._corpus: Any = None
        self._corpus_generation: str | None = None
        self._corpus_checked = 0.0

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn: a fresh interpreter per worker (forking a process that runs threads is unsafe)
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start, initargs=(self.settings,))

    def warm_up(self) -> None:
        """Start every worker and wait until each has loaded and answered once."""
        futures = [self._pool.submit(_ready) for _ in range(self.workers * 2)]
        for f in futures:
            f.result()

    def ask(self, question: str, history: Sequence[str] | None = None, theme: str | None = None) -> Answer:
        for attempt in (1, 2):
            pool = self._pool
            try:
                status, value, help_text = pool.submit(_answer, question, list(history or []), theme).result()
                break
            except BrokenProcessPool:
                log.error("an answer worker stopped; starting new workers")
                with self._lock:
                    if self._pool is pool:
                        self._pool = self._new_pool()
                if attempt == 2:
                    raise
        if status != "ok":
            raise _typed_error(status, value, help_text)
        return value

    def ask_stream(self, question: str, history: Sequence[str] | None = None,
                   theme: str | None = None) -> Iterator[str | Answer]:
        """The chat's streaming call, answered by a worker: the whole Answer at once (a worker's answer
        does not stream across processes; without this, the local assistant would answer in the UI process)."""
        yield self.ask(question, history=history, theme=theme)

    @property
    def corpus(self) -> Any:
        """The cards of the current index generation (re-read at most once per check interval)."""
        from assistant.generations import read_generation

        every = self.settings.ui.generation_check_s
        now = time.monotonic()
        if self._corpus is None or (every > 0 and now - self._corpus_checked >= every):
            self._corpus_checked = now
            generation = read_generation(self.settings.index, self.local.store)
            if self._corpus is None or generation != self._corpus_generation:
                from ingest.cards import load_corpus

                s = self.settings.index
                self._corpus, self._corpus_generation = load_corpus(s.corpus_dir, s.max_card_bytes), generation
        return self._corpus

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.local, name)
