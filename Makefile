# Two entry points matter: `make demo` and `make test`. Both work on a fresh machine.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
export UV_LINK_MODE ?= copy

.PHONY: demo test lint typecheck pytest bench soak sync uv chromium clean

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

sync: uv
	$(UV) sync --frozen --all-extras

# Debian chromium for the playground's browser tests (headless); skipped when already present.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); }

demo: sync
	$(UV) run --frozen vocalis demo

lint: sync
	$(UV) run --frozen ruff check src tests bench examples
	$(UV) run --frozen ruff format --check src tests bench examples

typecheck: sync
	$(UV) run --frozen mypy

pytest: sync chromium
	$(UV) run --frozen pytest -q

test: lint typecheck pytest

bench: sync
	$(UV) run --frozen python -m bench.run

soak: sync
	$(UV) run --frozen python -m bench.soak

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
