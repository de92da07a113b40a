# Two commands on a fresh machine with Python 3.11 and make:
#   make run    the whole stack on loopback (Redis, fake provider, sidecar, Envoy)
#   make test   the whole test suite (real Redis and real Envoy processes)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint bench bench-quick bench-profile wrk protos clean

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

# What the sidecar costs each call, against Envoy alone and a no-op ext_proc
# (under ten minutes; results in bench/results/). The load generator is Debian's
# wrk, installed here when missing (this needs root).
bench: $(STAMP) wrk
	$(PY) -m bench.run

bench-quick: $(STAMP) wrk
	$(PY) -m bench.run --quick --out /tmp/extproc-bench

bench-profile: $(STAMP) wrk
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) -m bench.profile

wrk:
	@command -v wrk >/dev/null || apt-get install -y wrk >/dev/null 2>&1 \
		|| (apt-get update >/dev/null && apt-get install -y wrk >/dev/null) \
		|| { echo "install Debian's wrk: apt-get install -y wrk"; exit 1; }

# Regenerate the admin API stubs from protos/ (the generated files are committed,
# so a plain install needs no protoc).
protos: $(STAMP)
	$(PY) scripts/gen_protos.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
