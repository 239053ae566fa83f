# pimbot — `make run` tries it in a terminal, `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/pimbot run

lint: $(STAMP)
	$(BIN)/ruff check src adapters tests bench tools
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder

bench: $(STAMP)
	$(BIN)/pimbot bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
