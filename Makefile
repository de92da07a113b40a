# Two commands on a fresh machine with Python 3.11 and make:
#   make run    the whole stack on loopback (Redis, fake provider, sidecar, Envoy)
#   make test   the whole test suite (real Redis and real Envoy processes)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench protos clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m extproc.devstack.run

# The whole suite, end-to-end tests included, then the linters.
test: $(STAMP)
	$(PY) -m pytest -q
	$(MAKE) lint

# Without the slower end-to-end tests through Envoy.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not e2e"

lint: $(STAMP)
	$(VENV)/bin/ruff check extproc tests
	$(VENV)/bin/ruff format --check extproc tests
	$(VENV)/bin/mypy extproc

# Regenerate the admin API stubs from protos/ (the generated files are committed,
# so a plain install needs no protoc).
protos: $(STAMP)
	$(PY) scripts/gen_protos.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
