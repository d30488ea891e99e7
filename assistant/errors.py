"""Typed errors of the answer layer, beside the ingest layer's (re-exported so callers need one import)."""

from __future__ import annotations

from ingest.errors import (
    AssistantError,
    CorpusError,
    EmptyCorpusError,
    IndexBusyError,
    IndexNotBuiltError,
    ModelUnavailableError,
    Problem,
    SettingsError,
    StoreUnavailableError,
)

__all__ = ["AssistantError", "CorpusError", "EmptyCorpusError", "IndexBusyError", "IndexNotBuiltError",
           "InvalidQuestionError", "ModelUnavailableError", "Problem", "SettingsError", "StoreUnavailableError"]


class InvalidQuestionError(AssistantError):
    help_message = "Ask a question in plain words, for example: “Who should supervise peer workers?”"
