# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: setup run test lint typecheck unit integration infra test-slow synth bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

## The whole flow in the local sandbox: Ignition -> signed webhook -> ingest -> SQS -> sync -> Xero.
run: setup
	$(BIN)/python -m sandbox demo

## Every check CI runs: lint, types, then the suites. Each sandbox owns process-wide state (the AWS
## endpoint, the imported handler modules), so the suites that start one run in their own processes.
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider
test: setup lint typecheck
	$(PYTEST) -n 2 -m "not slow" tests/unit tests/contract tests/infra
	$(PYTEST) -n 2 --dist loadgroup -m "not slow" tests/integration
	$(PYTEST) -m "not slow" tests/fuzz
	$(PYTEST) -m "not slow" tests/chaos

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy shared functions sandbox infra cli bench app.py

unit: setup
	$(PYTEST) -n 2 tests/unit tests/contract

integration: setup
	$(PYTEST) -n 2 --dist loadgroup -m "not slow" tests/integration

infra: setup
	$(PYTEST) -n 2 tests/infra

test-slow: setup
	$(PYTEST) -m slow tests/integration
	$(PYTEST) -m slow tests/fuzz
	$(PYTEST) -m slow tests/chaos

synth: setup
	CDK_OUTDIR=cdk.out $(BIN)/python app.py -c client=example

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) cdk.out .build .pytest_cache .mypy_cache .ruff_cache
