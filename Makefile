# Quick start: `make demo` (sets up .venv, runs the whole pipeline on the bundled sample)
# and `make test` (sets up .venv, runs the test suite). CI runs `make test` too.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean-demo

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch; an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,ray]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python cli.py demo

# Ray's local runtime in the tests sends no usage report.
test: $(STAMP)
	RAY_USAGE_STATS_ENABLED=0 RAY_DISABLE_IMPORT_WARNING=1 $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
