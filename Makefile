# Fresh machine: `make demo` or `make test`. Both create .venv and install everything first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/pip --disable-pip-version-check
export PYTHONHASHSEED := 0

.PHONY: demo test test-slow test-all lint format bench install clean lock system-packages \
	readme-figures

install: $(STAMP)

# Debian packages the features and tests need, installed as root on a fresh machine (a stamp
# file skips the check afterwards): PostgreSQL (server and client: tuning storage, the test
# fixture that starts a throwaway server), Prometheus (promtool checks alert rules), Chromium
# (headless browser tests). The demo needs no browser.
SYSTEM_PACKAGES_RUN := postgresql prometheus libpango-1.0-0 libpangoft2-1.0-0
SYSTEM_PACKAGES_TEST := $(SYSTEM_PACKAGES_RUN) chromium poppler-utils
SYSTEM_STAMP_RUN := .stamps/system-packages-run
SYSTEM_STAMP_TEST := .stamps/system-packages-test

system-packages: $(SYSTEM_STAMP_TEST)

$(SYSTEM_STAMP_RUN): .ci/system-packages Makefile
	bash .ci/system-packages $@ $(SYSTEM_PACKAGES_RUN)

$(SYSTEM_STAMP_TEST): .ci/system-packages Makefile
	bash .ci/system-packages $@ $(SYSTEM_PACKAGES_TEST)

# torch is installed first and alone, pinned, so that no later resolution can pull another build.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip==25.3"
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -c requirements.lock -e ".[dev]"
	$(BIN)/python -c "import torch, sys; v = torch.__version__.split('+')[0]; sys.exit(0 if v == '2.13.0' else 'torch ' + v + ' installed; expected 2.13.0')"
	touch $(STAMP)

demo: $(STAMP) $(SYSTEM_STAMP_RUN)
	$(BIN)/stairways demo

test: $(STAMP) $(SYSTEM_STAMP_TEST)
	$(BIN)/pytest -q

test-slow: $(STAMP) $(SYSTEM_STAMP_TEST)
	$(BIN)/pytest -q -m slow

test-all: $(STAMP) $(SYSTEM_STAMP_TEST)
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
	$(BIN)/stairways bench governor
	$(BIN)/stairways bench journal

# Regenerate the README's demo figures (signal on and off, three seeds: six training runs of the
# demo's budget): every figure of its readme-figures block comes from this run, recorded in docs/.
readme-figures: $(STAMP)
	$(BIN)/stairways readme-figures --readme README.md --record docs/readme_figures.json

# Regenerate requirements.lock from the current environment (after changing pyproject.toml).
lock: $(STAMP)
	$(PIP) freeze --exclude-editable | sed 's/+cpu$$//' > requirements.lock

clean:
	rm -rf $(VENV) .stamps .pytest_cache .mypy_cache .ruff_cache
