# Fresh machine: `make demo` or `make test`. Both create .venv and install everything first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/pip --disable-pip-version-check
export PYTHONHASHSEED := 0

.PHONY: demo test test-slow test-all lint format bench install clean lock

install: $(STAMP)

# torch is installed first and alone, pinned, so that no later resolution can pull another build.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip==25.3"
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -c requirements.lock -e ".[dev]"
	$(BIN)/python -c "import torch, sys; v = torch.__version__.split('+')[0]; sys.exit(0 if v == '2.13.0' else 'torch ' + v + ' installed; expected 2.13.0')"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/stairways demo

test: $(STAMP)
	$(BIN)/pytest -q

test-slow: $(STAMP)
	$(BIN)/pytest -q -m slow

test-all: $(STAMP)
	$(BIN)/pytest -q -m "slow or not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

bench: $(STAMP)
	$(BIN)/stairways bench data
	$(BIN)/stairways bench env
	$(BIN)/stairways bench train
	$(BIN)/stairways bench eval
	$(BIN)/stairways bench tune

# Regenerate requirements.lock from the current environment (after changing pyproject.toml).
lock: $(STAMP)
	$(PIP) freeze --exclude-editable | sed 's/+cpu$$//' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
