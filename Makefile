# One front door: `make help` lists every target. CI runs `make test` (see .ci/run).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# apt needs root; use sudo when we are not root and it exists.
SUDO   := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)
PYTEST_ARGS ?=
# Test processes (pytest-xdist): the integration tests mostly wait on the broker and Redis,
# so two processes halve the suite on 2 cores. 0 runs everything in this process.
TEST_WORKERS ?= 2
BENCH_EVENTS ?= 30000

.DEFAULT_GOAL := help
.PHONY: help setup run test test-unit lint format bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || \
		($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## Create the virtualenv, install the project and redis-server
	@command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || \
		($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q redis-server)

run: setup ## Run the whole stack locally with synthetic traffic (Ctrl-C stops it)
	$(BIN)/pipeline dev

test: setup ## Run the whole test suite (unit + integration on embedded services)
	@# The browser tests drive Debian's chromium (no Playwright/Selenium downloads).
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || \
		($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

test-unit: setup ## Run the unit tests only (no services needed)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal tests/unit $(PYTEST_ARGS)

lint: setup ## Lint (ruff), check formatting and types (mypy)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check pipeline tests
	$(BIN)/mypy

format: setup ## Format with ruff
	$(BIN)/ruff format pipeline tests

bench: setup ## Run every benchmark (figures against a baseline in the same run; minutes)
	@command -v wrk >/dev/null 2>&1 || ($(SUDO) apt-get install -y -q wrk || true)
	$(BIN)/pipeline bench micro --events $(BENCH_EVENTS)
	$(BIN)/pipeline bench ingest
	$(BIN)/pipeline bench freshness
	$(BIN)/pipeline bench reader
	$(BIN)/pipeline bench memory

clean: ## Remove the virtualenv, caches and local logs
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .run
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
