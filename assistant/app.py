"""The chat UI's old import path, kept for callers (``peer-assist serve``, the load test, docs).

The UI lives in :mod:`assistant.ui`: ``assistant.ui.app.build_app`` (layout and wiring),
``assistant.ui.handlers`` (what the page does), ``assistant.ui.serve`` (``serve``, ``launch_app``).
"""

from __future__ import annotations

from assistant.ui.app import build_app
from assistant.ui.serve import launch_app, serve

__all__ = ["build_app", "launch_app", "serve"]
