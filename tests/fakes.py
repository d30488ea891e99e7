"""Test doubles with the interfaces of the real collaborators."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ingest.errors import IndexNotBuiltError
from ingest.split import to_metadata
from ingest.types import Embedder, Passage


class InMemoryStore:
    """The ``ingest.store.EvidenceStore`` methods the assistant and the pipeline use (``query``,
    ``passages``, ``ids``, ``count``, ``delete_ids``, ``sync``), over a dict and exact cosine.

    ``tests/ingest/test_store_contract.py`` runs one suite against this and the real Chroma store,
    so the two cannot drift apart.
    """

    def __init__(self) -> None:
        self._rows: dict[str, tuple[Passage, np.ndarray]] = {}
        self._created = False

    def _collection(self) -> dict[str, tuple[Passage, np.ndarray]]:
        if not self._created:
            raise IndexNotBuiltError("The evidence index 'in-memory' does not exist yet.")
        return self._rows

    def count(self) -> int:
        return len(self._rows)

    def ids(self) -> set[str]:
        return set(self._rows)

    def passages(self) -> list[Passage]:
        return sorted((p for p, _ in self._collection().values()), key=lambda p: (p.card_id, p.ordinal))

    def query(self, vector: Sequence[float], k: int, where: dict[str, Any] | None = None) -> list[tuple[Passage, float]]:
        q = np.asarray(vector, dtype="float64")
        q = q / (np.linalg.norm(q) or 1.0)
        hits = [(p, float(v @ q)) for p, v in self._collection().values()
                if not where or all(to_metadata(p).get(key) == value for key, value in where.items())]
        hits.sort(key=lambda hit: -hit[1])
        return hits[:k]

    def delete_ids(self, ids: Sequence[str]) -> None:
        for passage_id in ids:
            self._rows.pop(passage_id, None)

    def sync(self, passages: Iterable[Passage], embedder: Embedder, *, batch_size: int = 512,
             on_batch: Callable[[int], None] | None = None, force: bool = False) -> dict[str, int]:
        self._created = True
        wanted = {p.id: p for p in passages}
        todo = [p for pid, p in wanted.items() if force or pid not in self._rows]
        vectors = embedder.embed_documents([p.embed_text() for p in todo]) if todo else []
        for p, v in zip(todo, vectors):
            arr = np.asarray(v, dtype="float64")
            self._rows[p.id] = (p, arr / (np.linalg.norm(arr) or 1.0))
        gone = [pid for pid in self._rows if pid not in wanted]
        self.delete_ids(gone)
        return {"added": len(todo), "skipped": len(wanted) - len(todo), "deleted": len(gone),
                "orphans_removed": 0, "records_repaired": 0}


# ------------------------------------------------------------------------------------------------
# Chat models for the LLM composer (LangChain's own fake chat model, scripted from the prompt)

def prompt_passages(prompt: str) -> dict[int, str]:
    """The numbered passages of an LLM composer prompt, from its evidence lines: ``{1: "text", ...}``."""
    import re

    out: dict[int, list[str]] = {}
    for line in prompt.split("\nQuestion: ")[0].splitlines():
        m = re.match(r"^(.*\S) \[(\d+)\]$", line)
        if m:
            out.setdefault(int(m.group(2)), []).append(m.group(1))
    return {n: " ".join(sentences) for n, sentences in out.items()}


def first_sentence(text: str) -> str:
    from ingest.text import split_sentences

    return split_sentences(text)[0]


def make_scripted_chat_model(script: Callable[[str], str], *, line_delay: float = 0.0,
                             before_last_line: Any = None, fail_after: int | None = None) -> Any:
    """LangChain's ``GenericFakeChatModel`` whose reply is ``script(prompt)``, streamed line by line.

    ``prompts`` records every prompt it was sent. ``line_delay`` sleeps before each line;
    ``before_last_line`` (a ``threading.Event``) is waited on before the last line is produced;
    ``fail_after`` raises after that many lines (a connection lost mid-reply).
    """
    import time

    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk
    from langchain_core.outputs import ChatGenerationChunk
    from pydantic import Field

    class ScriptedChatModel(GenericFakeChatModel):
        script: Any
        prompts: list[str] = Field(default_factory=list)
        line_delay: float = 0.0
        before_last_line: Any = None
        fail_after: int | None = None

        def _reply(self, messages: Any) -> str:
            prompt = str(messages[-1].content)
            self.prompts.append(prompt)
            return str(self.script(prompt))

        def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
            self.messages = iter([AIMessage(content=self._reply(messages))])
            return super()._generate(messages, stop, run_manager, **kwargs)

        def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
            lines = self._reply(messages).splitlines(keepends=True)
            for i, line in enumerate(lines):
                if self.fail_after is not None and i >= self.fail_after:
                    raise ConnectionError("connection lost mid-reply")
                if self.before_last_line is not None and i == len(lines) - 1:
                    assert self.before_last_line.wait(30), "the last line was never released"
                time.sleep(self.line_delay)
                for j, word in enumerate(line.split(" ")):  # token-sized chunks, as a real stream sends
                    yield ChatGenerationChunk(message=AIMessageChunk(content=("" if j == 0 else " ") + word))

    return ScriptedChatModel(messages=iter([]), script=script, prompts=[], line_delay=line_delay,
                             before_last_line=before_last_line, fail_after=fail_after)
