# Aperture's task runner. `make demo` runs a demonstration MOUS through the system; `make test` the suite.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
UV_DIR := $(ROOT)/var/tools/uv
UV := $(shell command -v uv 2>/dev/null || echo $(UV_DIR)/bin/uv)
STACK := $(ROOT)/tools/stack
DEMO_DIR := $(ROOT)/var/demo

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	@echo "installing uv (the Python package manager) into $(UV_DIR)"
	python3 -m pip install --quiet --target $(UV_DIR) uv || \
	  python3 -m pip install --quiet --break-system-packages --target $(UV_DIR) uv

# Bytecode is compiled once here: where PYTHONDONTWRITEBYTECODE is set, every CASA process would otherwise
# recompile casatools/casatasks at import (5.4 s instead of 1.7 s per process, measured by make bench).
$(VENV)/.synced: $(UV) uv.lock pyproject.toml */pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml
	$(UV) sync --frozen --compile-bytecode
	touch $@

# Aladin Lite (the HiPS viewer the previews service copies beside each HiPS), from the npm registry.
VIEWER := $(ROOT)/services/previews/viewer
$(VIEWER)/node_modules/.installed: $(VIEWER)/package-lock.json
	$(STACK)/install.sh --node
	cd $(VIEWER) && npm ci --no-audit --no-fund
	touch $@

.PHONY: venv
venv: $(VENV)/.synced $(VIEWER)/node_modules/.installed ## Create .venv with every package, the `aperture` CLI and the HiPS viewer

.PHONY: infra
infra: ## Install (if missing) and start RabbitMQ, the S3 server and PostgreSQL on 127.0.0.1
	$(STACK)/up.sh --with-postgres

# WITH_POSTGRES=1: also start PostgreSQL and keep the coordinator's state there (unless
# APERTURE_DATABASE_URL says otherwise); by default the state is in SQLite (var/aperture.db).
POSTGRES_URL := postgresql+psycopg://aperture:aperture@127.0.0.1:5432/aperture

.PHONY: up
up: venv ## Start the whole local stack: servers, the coordinator/API (127.0.0.1:8000) and the workers
	$(STACK)/up.sh $(if $(WITH_POSTGRES),--with-postgres,)
	$(if $(WITH_POSTGRES),APERTURE_DATABASE_URL="$${APERTURE_DATABASE_URL:-$(POSTGRES_URL)}",) $(STACK)/services.sh start

.PHONY: down
down: ## Stop everything `make up` started (servers that were already running are left alone)
	-$(STACK)/services.sh stop
	$(STACK)/down.sh

.PHONY: demo
demo: venv ## The main job: generate a test MOUS, run it through the stack, print what happened
	$(ROOT)/tools/demo.sh

.PHONY: test
test: venv ## The whole suite, with real RabbitMQ, S3, PostgreSQL and CASA
	$(ROOT)/tools/run-tests.sh

.PHONY: test-fast
test-fast: venv ## Tests that need no server and no CASA
	$(BIN)/pytest -m "not integration and not casa"

.PHONY: bench
bench: venv ## Scale-out benchmark: one MOUS with 1 and 2 imaging workers vs a serial script of its CASA calls
	$(STACK)/up.sh
	$(BIN)/python $(ROOT)/tools/bench/scaleout.py

.PHONY: bench-campaign
bench-campaign: venv ## Campaign benchmark: MOUS/h of a full-recipe campaign, and the coordinator's cost per job event
	$(STACK)/up.sh
	$(BIN)/python $(ROOT)/tools/bench/campaign_throughput.py --mous 12 --recipe full
	$(BIN)/python $(ROOT)/tools/bench/campaign_coordinator.py --mous 100 --in-flight 50 --database sqlite

.PHONY: contracts
contracts: venv ## Regenerate the JSON Schemas and the AsyncAPI document from the models
	$(BIN)/python -m aperture_contracts.generate

.PHONY: lint
lint: venv ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy contracts/aperture_contracts shared/aperture_shared services cli tools/testdata
