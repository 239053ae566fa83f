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

# PYTHONDONTWRITEBYTECODE (set on some CI machines) would make every spawned `pimbot` process
# compile pimbot's ~210 modules from source again (~0.3 CPU-s each) and each xdist worker
# re-rewrite every test module's asserts (~5 CPU-s): the suite writes its bytecode caches.
test: $(STAMP) lint
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder

bench: $(STAMP)
	$(BIN)/pimbot bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
