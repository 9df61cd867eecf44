# Tenantry — `make help` lists the targets.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help install run test test-servers lint typecheck check bench clean

help: ## show this help
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install Tenantry with its dev tools

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

run: $(STAMP) ## migrate, load demo data into an empty ./tenantry.db, serve on $(HOST):$(PORT)
	$(BIN)/tenantry db upgrade
	$(BIN)/tenantry demo --if-empty
	$(BIN)/tenantry serve --host $(HOST) --port $(PORT)

test: $(BENCH_STAMP) test-servers ## lint, type-check and run the whole test suite (SQLite and PostgreSQL; the bench code's tests need the bench extra)
	$(BIN)/ruff check src tests $(wildcard bench) $(wildcard compare)
	$(BIN)/ruff format --check src tests $(wildcard bench) $(wildcard compare)
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

test-servers: ## install the real servers the tests start (OpenLDAP's slapd, ldap-utils) where root and apt-get can
	@command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] && command -v ldapadd >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && { export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q slapd ldap-utils >/dev/null 2>&1 \
	       || (apt-get update -q >/dev/null && apt-get install -y -q slapd ldap-utils >/dev/null); }; } \
	  || echo "slapd/ldap-utils missing: the LDAP realm tests will fail (apt-get install slapd ldap-utils)"

lint: $(STAMP) ## ruff (lint rules, formatting) and the import contract (pyproject [tool.importlinter])
	$(BIN)/ruff check src tests $(wildcard bench) $(wildcard compare)
	$(BIN)/ruff format --check src tests $(wildcard bench) $(wildcard compare)
	$(BIN)/lint-imports

typecheck: $(BENCH_STAMP) ## mypy --strict only: src, tests, bench and compare (pyproject's [tool.mypy] files)
	$(BIN)/mypy

bench: $(BENCH_STAMP) ## the benchmark suite, ≈55 min (mix ≈35): bench/results/*.json, docs/performance.md, docs/img/
	@# wrk (C) is the load generator: the asyncio fallback takes a whole core of the two.
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get install -y -q wrk >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null)); } \
	  || echo "wrk not installed: the asyncio load generator is used (install the Debian package wrk)"
	$(BIN)/python -m bench.suite $(BENCH_ARGS)

clean: ## remove the virtualenv and local database
	rm -rf $(VENV) tenantry.db tenantry.db-wal tenantry.db-shm
