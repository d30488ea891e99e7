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

__all__ = ["AssistantError", "CorpusError", "EmptyCorpusError", "ExposureError", "IndexBusyError",
           "IndexNotBuiltError", "InvalidQuestionError", "ModelUnavailableError", "Problem", "SettingsError", "StoreUnavailableError"]


class InvalidQuestionError(AssistantError):
    help_message = "Ask a question in plain words, for example: “Who should supervise peer workers?”"


class ExposureError(AssistantError):
    """``serve`` was asked to listen beyond this machine with no login."""

    help_message = ("Set a login (PEER_ASSIST_AUTH_USER and PEER_ASSIST_AUTH_PASSWORD), or pass --allow-no-login "
                    "if anyone who can reach this address may use the assistant, or serve on 127.0.0.1.")
