# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# requirements*.txt say what we depend on; requirements*.lock pin every package they pull in, with
# the hash of every file (`make lock` writes them). Installs take the lock only, hashes required.
LOCKS  := requirements.lock requirements-dev.lock
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt $(LOCKS) | cksum | cut -d' ' -f1)

.PHONY: setup browser run test lint typecheck unit integration infra test-slow synth bench audit lock clean

$(STAMP): requirements.txt requirements-dev.txt $(LOCKS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

## Re-pin after editing requirements*.txt: resolve from PyPI alone (no local wheel folders or mirror
## settings), hashes of every file of each version (the Lambda's arm64 wheels included). The dev lock
## is constrained by the runtime one, so the tests run exactly what the functions run.
PIP_COMPILE := env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null \
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	--no-emit-find-links
lock: setup
	$(PIP_COMPILE) --output-file requirements.lock requirements.txt
	$(PIP_COMPILE) --constraint requirements.lock --output-file requirements-dev.lock requirements-dev.txt

## Known vulnerabilities in the locked packages (pip-audit); skipped, saying why, where PyPI's
## vulnerability data cannot be reached, so it never fails a build for want of network.
audit: setup
	$(BIN)/python -m tools.audit

## The whole flow in the local sandbox: Ignition -> signed webhook -> ingest -> SQS -> sync -> Xero.
run: setup
	$(BIN)/python -m sandbox demo

## Debian's chromium, for the report's browser test (Playwright drives it: Playwright's own browser
## download needs network a set-up cannot assume). Installed once where apt-get runs as root (about
## 20 s with apt-get update); elsewhere the test skips and says why.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	else echo "make browser: no $(CHROMIUM) and no apt-get as root: the report's browser test is skipped"; fi

## Every check CI runs: lint, types, then the suites. Each sandbox owns process-wide state (the AWS
## endpoint, the imported handler modules), so the suites that start one run in their own processes.
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider
test: setup browser lint typecheck audit
	$(PYTEST) -n 2 -m "not slow" tests/unit tests/contract tests/infra
	$(PYTEST) -n 2 --dist loadgroup -m "not slow" tests/integration
	$(PYTEST) -m "not slow" tests/poll
	$(PYTEST) -m "not slow" tests/fuzz
	$(PYTEST) -m "not slow" tests/chaos

## Style and McCabe complexity (ruff), and the import contracts of pyproject.toml (import-linter:
## production never imports test or operator code, adapters never import use cases, the layers of
## shared/). Run from the repository root, which lint-imports puts on the import path.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo

typecheck: setup
	$(BIN)/mypy shared functions sandbox infra cli bench tools app.py

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
