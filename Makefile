# The two commands: `make run` starts the product, `make test` runs every test tier.
# Both create .venv/ and install everything on first use (about 3 minutes on a fresh machine).
# `make check` is the fast gate run before everything else: ruff, mypy and the unit tier.

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: run check test install browser eval bench screenshots clean

run: install
	$(VENV)/bin/peer-assist serve

# Lint, types, and the unit tier (hash embedder, no model, no server, no browser): under a minute of tests.
FAST := not integration and not slow and not browser and not server
check: install
	$(VENV)/bin/ruff check assistant ingest evals
	$(VENV)/bin/mypy assistant ingest evals
	$(PY) -m pytest -m "$(FAST)"

test: install browser
	$(PY) -m pytest

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# torch is pinned in the same pip command so pip takes the local CPU wheel, not a CUDA build.
	$(VENV)/bin/pip install --disable-pip-version-check "torch==2.13.0" -e ".[test]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

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
