# One task runner for people and CI. Every target bootstraps .venv from a bare checkout.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test test-faults lint bench bench-load install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[server,embedded,dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/attest serve

lint: $(STAMP)
	$(BIN)/ruff check attest tests bench
	$(BIN)/ruff format --check attest tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: lint
	$(BIN)/pytest -q -n 2 --dist loadgroup

# Faults under load (database outage, slow database, keystore loss): tens of seconds each,
# on clusters and servers of their own; run once per CI by .ci/run, skipped by `make test`.
test-faults: $(STAMP)
	ATTEST_FAULT_TESTS=1 $(BIN)/pytest -q tests/faults

bench: $(STAMP)
	$(BIN)/python bench/bench_verify.py
	$(BIN)/python bench/bench_signing.py

# wrk against one `make run`-style deployment (needs Debian's wrk); ARGS e.g. --profile.
bench-load: $(STAMP)
	@command -v wrk >/dev/null || { echo "bench-load needs wrk: apt-get install -y wrk" >&2; exit 2; }
	$(BIN)/python bench/bench_load.py $(ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info
