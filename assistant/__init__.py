"""Peer Provision Assistant: cited evidence on supporting peer workers in mental health services.

Importing this package is cheap: models, stores and the UI load only when first used.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
