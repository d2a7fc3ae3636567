# One-command set-up: `make demo` and `make test` each run `make setup` first.
# setup is quick when nothing changed: the venv is rebuilt only when pyproject.toml changes,
# and Debian packages are installed only when missing (and only when running as root).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# postgresql: the evidence store's PostgreSQL tests start a throwaway cluster from its binaries
# (/usr/lib/postgresql/<version>/bin); the package's own cluster is not used.
# chromium: the dock page's browser test drives /usr/bin/chromium with Playwright (no browser download).
DEB_PACKAGES := libusb-1.0-0 portaudio19-dev dbus-daemon postgresql chromium
PYTEST_ARGS ?=

.PHONY: setup deb demo test lint typecheck unit clean bench

setup: deb $(STAMP)

deb:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing (run 'sudo make setup' or install them with apt-get)"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(BIN)/bwc demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

test: lint typecheck unit

# Benchmarks (docs/bench.md). The peers are command-line tools (ffmpeg, curl, rclone), each
# from the Debian package named like its command; bench-deps installs the missing ones when
# running as root. A peer still missing is reported as such in the results: `make bench` never
# fails for it. `make bench BENCH_ARGS=--quick` is the short run; docs/bench.md gives both times.
BENCH_DEB_PACKAGES := ffmpeg curl rclone
BENCH_ARGS ?=

.PHONY: bench-deps
bench-deps:
	@missing=""; for p in $(BENCH_DEB_PACKAGES); do \
	  command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing benchmark peers:$$missing"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; } \
	      || echo "could not install$$missing: their figures will have no peer value"; \
	  else \
	    echo "benchmark peers missing:$$missing (run 'sudo make bench-deps'): their figures will have no peer value"; \
	  fi; \
	fi

bench: setup bench-deps
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
