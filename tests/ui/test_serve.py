"""`peer-assist serve` as a real process: prints its URL, serves the page, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from assistant.settings import PROJECT_ROOT, Settings
from tests.ui.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_serve_prints_the_url_serves_the_page_and_stops(real_index: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PEER_ASSIST_INDEX_DIR": str(real_index.index.index_dir),
           "PEER_ASSIST_CORPUS_DIR": str(real_index.index.corpus_dir),
           "PEER_ASSIST_FEEDBACK_PATH": str(tmp_path / "feedback.jsonl"), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "assistant.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    output: list[str] = []
    # selectors (epoll) rather than select(): after a long test session this process may hold more
    # than 1,024 file descriptors, which select() cannot watch.
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
    try:
        deadline = time.monotonic() + 120
        while not any("is running at" in line for line in output):
            assert proc.poll() is None, "".join(output)
            assert time.monotonic() < deadline, "".join(output)
            if selector.select(timeout=1.0):
                output.append(proc.stdout.readline())  # type: ignore[union-attr]
        text = "".join(output)
        assert "building it" not in text  # the index exists: no rebuild
        assert f"running at http://127.0.0.1:{port}/" in text
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=30)
        assert page.status_code == 200 and "Peer Provision Assistant" in page.text
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, rest
        assert "Stopped." in rest and "Traceback" not in rest
    finally:
        selector.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
