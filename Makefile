# Two commands set up everything: `make run` and `make test`. The rest are conveniences.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench bench-api bench-webhooks bench-directory bench-calendar bench-offboarding clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# caldav's HTTP client brings urllib3-future, whose wheel would shadow urllib3 itself (requests,
	# google-auth): built from source with URLLIB3_NO_OVERRIDE it installs as urllib3_future only.
	URLLIB3_NO_OVERRIDE=1 $(BIN)/python -m pip install --quiet --no-binary urllib3-future -e '.[dev]'
	touch $(STAMP)

## run: the embedded mode (SQLite + in-process broker) on 127.0.0.1:8000 (DESKBRIDGE_PORT, or in .env, to
## change it). Webhooks and feeds may target this machine and its network, as in every embedded-mode
## command (CLI included); DESKBRIDGE_ALLOW_PRIVATE_WEBHOOKS=false refuses, as production does by default.
run: $(STAMP)
	$(BIN)/deskbridge db upgrade
	$(BIN)/deskbridge serve

## test: lint, type-check and the whole test suite
test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

## bench: every benchmark (each prints its figures)
bench: bench-api bench-webhooks bench-directory bench-calendar bench-offboarding

bench-api: $(STAMP)
	$(BIN)/python -m bench.api

## bench-webhooks: 50,000 events to 2 endpoints through PostgreSQL, Redis and dramatiq workers, beside the ceiling
bench-webhooks: $(STAMP)
	$(BIN)/python -m bench.webhooks

## bench-directory: initial sync of a 100,000-user tenant from the fake Graph into PostgreSQL, then 1,000 changes and a resync, beside COPY
bench-directory: $(STAMP)
	$(BIN)/python -m bench.directory

## bench-calendar: initial sync of 1,000 people x 200 events from the fake Google and Graph into PostgreSQL, then 1% changed, beside decoding alone
bench-calendar: $(STAMP)
	$(BIN)/python -m bench.calendar

## bench-offboarding: 200 people leaving Entra ID and Google Workspace, notification to membership removed and signed webhook received (p50, p99)
bench-offboarding: $(STAMP)
	$(BIN)/python -m bench.offboarding

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
