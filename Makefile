# The README's commands. `make test` is what CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv install demo test test-fast test-faults lint typecheck check lockfiles clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

venv: $(BIN)/python

install: venv
	$(BIN)/pip install --quiet -e '.[dev]'

# The demo: installs the plugins with Meltano (offline lock files in plugins/), seeds a small warehouse in the
# embedded PostgreSQL (or the one FLX_DATABASE_URL names), loads it through `flx run`, exports the run history
# with tap-flx, then shows the history and where the data is. Run it again: the second load is incremental.
demo: install
	$(BIN)/meltano install
	$(BIN)/flx demo seed
	eval "$$($(BIN)/flx demo source-env)" && $(BIN)/flx run demo-load
	$(BIN)/flx run history-export
	$(BIN)/flx history --limit 8
	$(BIN)/flx demo report

# Runs the whole suite against a real PostgreSQL (see tests/conftest.py for which one).
test: install
	$(BIN)/python -m pytest

# The quick loop while changing code: no end-to-end, fault-injection or real-tap tests.
test-fast: install
	$(BIN)/python -m pytest -m "not slow and not faults and not compat"

# Only the fault-injection suite (it starts its own PostgreSQL cluster to restart and kill).
test-faults: install
	$(BIN)/python -m pytest -m faults

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

# Meltano lock files from the plugins' own --about (a test fails when they are stale).
lockfiles: install
	$(BIN)/python -m flx.scripts.lockfiles

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
