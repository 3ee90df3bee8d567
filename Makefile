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

## Every check CI runs: lint, types, unit, integration and infrastructure tests.
test: setup lint typecheck
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy shared functions sandbox infra cli bench app.py

unit: setup
	$(BIN)/python -m pytest tests/unit

integration: setup
	$(BIN)/python -m pytest tests/integration

infra: setup
	$(BIN)/python -m pytest tests/infra

test-slow: setup
	$(BIN)/python -m pytest -m slow

synth: setup
	CDK_OUTDIR=cdk.out $(BIN)/python app.py -c client=example

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) cdk.out .build .pytest_cache .mypy_cache .ruff_cache
