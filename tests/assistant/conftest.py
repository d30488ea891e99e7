from __future__ import annotations

import shutil
from typing import Any

import pytest

from tests.conftest import CORPUS, make_settings


@pytest.fixture(scope="module")
def fake_assistant(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """An Assistant over a hash-embedder index of the real corpus (no model, milliseconds per answer)."""
    from assistant.chat import Assistant
    from ingest.pipeline import run_ingest

    tmp = tmp_path_factory.mktemp("fake")
    shutil.copytree(CORPUS, tmp / "corpus")
    settings = make_settings(tmp, tmp / "corpus", embedding_model="hash-384", abstain_threshold=-1.0)
    run_ingest(settings)
    return Assistant(settings)
