# One target per job. `make run` and `make test` install what they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
PYTEST_ARGS ?=
# bench-figures' telemetry comparisons (every trace exported, then a tenth): a small tenant, off/on alternating.
TELEMETRY_BENCH ?= --users 60 --events 20 --rate 50 --duration 5 --changes 20 --telemetry both --rounds 3
# The browser tests drive Debian's Chromium (no `playwright install`: its CDN is out of reach).
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser || echo /usr/bin/chromium)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help install run emulator test test-browser check lint typecheck bench clean infra-check

help:
	@echo "make run       start Azurite, the Microsoft 365 emulator and the local function host (demo organisation)"
	@echo "make test      install what is needed and run the whole suite (includes make check)"
	@echo "make test-browser  the admin console in headless Chromium (Playwright on Debian's chromium)"
	@echo "make check     ruff + mypy"
	@echo "make emulator  start the Microsoft 365 emulator alone with the demo organisation"
	@echo "make bench     run the benchmarks and print their figures"
	@echo "make chaos     writes, Outlook changes and injected faults on the local stack, then a check that nothing was lost"
	@echo "               or duplicated (CHAOS_ARGS=\"--minutes 10 --users 4 --rate 2 --seed N\")"
	@echo "make bench-figures  run the sync (telemetry off and on, all traces and a tenth) and appointment benchmarks, publish docs/benchmarks.md"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json devhost/patch_azurite.js
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CHECKOV_VENV)/.installed:
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check checkov==3.3.30
	@touch $@

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "the browser tests need Chromium at $(CHROMIUM) (CHROMIUM=...)"; exit 1; }
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium || \
		{ $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

install: $(VENV)/.installed node_modules/.installed $(CHECKOV_VENV)/.installed $(CHROMIUM)

run: $(VENV)/.installed node_modules/.installed
	$(PY) -m devhost.stack

emulator: $(VENV)/.installed
	@$(PY) -m m365emulator --seed demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

check: lint typecheck

test: install check
	@CHECKOV=$(CHECKOV_VENV)/bin/checkov $(VENV)/bin/pytest --durations=25 $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: a run that tests nothing fails"; exit 1; fi; \
	exit $$status

test-browser: $(VENV)/.installed node_modules/.installed $(CHROMIUM)
	CHROMIUM=$(CHROMIUM) $(VENV)/bin/pytest -m browser $(PYTEST_ARGS)

bench: $(VENV)/.installed node_modules/.installed
	$(PY) -m benchmarks
	$(PY) -m benchmarks.availability_engine

.PHONY: chaos
chaos: $(VENV)/.installed node_modules/.installed  # e.g. make chaos CHAOS_ARGS="--minutes 10 --seed 42"
	$(PY) -m benchmarks.chaos $(CHAOS_ARGS)

.PHONY: bench-sync
bench-sync: $(VENV)/.installed node_modules/.installed  # e.g. make bench-sync BENCH_ARGS="--users 200"
	$(PY) -m benchmarks.sync_bench $(BENCH_ARGS)

.PHONY: bench-table-ops
bench-table-ops: $(VENV)/.installed node_modules/.installed  # e.g. make bench-table-ops BENCH_ARGS="--layouts 100,1000"
	$(PY) -m benchmarks.table_ops $(BENCH_ARGS)

.PHONY: bench-task-table-ops
bench-task-table-ops: $(VENV)/.installed node_modules/.installed  # table requests a migrated user's To Do list adds
	$(PY) -m benchmarks.task_table_ops $(BENCH_ARGS)

.PHONY: bench-graph-pool
bench-graph-pool: $(VENV)/.installed  # the Graph client's connection pool: CPU per request, side by side
	$(PY) -m benchmarks.graph_pool $(BENCH_ARGS)

.PHONY: bench-graph-sender
bench-graph-sender: $(VENV)/.installed  # a Graph request's client-side CPU: the SDK's adapter against the sender
	$(PY) -m benchmarks.graph_sender $(BENCH_ARGS)

.PHONY: bench-progress-read
bench-progress-read: $(VENV)/.installed node_modules/.installed  # a tenant's progress: whole rows against the projection
	$(PY) -m benchmarks.progress_read $(BENCH_ARGS)

.PHONY: bench-monitor
bench-monitor: $(VENV)/.installed  # e.g. make bench-monitor BENCH_ARGS="--users 1000"
	$(PY) -m benchmarks.monitor_bench $(BENCH_ARGS)
.PHONY: bench-tasks-sync
bench-tasks-sync: $(VENV)/.installed node_modules/.installed  # e.g. make bench-tasks-sync BENCH_ARGS="--users 1000"
	$(PY) -m benchmarks.task_sync_bench $(BENCH_ARGS)

.PHONY: bench-mail
bench-mail: $(VENV)/.installed node_modules/.installed  # e.g. make bench-mail BENCH_ARGS="--burst 1000"
	$(PY) -m benchmarks.mail_bench $(BENCH_ARGS)

.PHONY: bench-tasks
bench-tasks: $(VENV)/.installed node_modules/.installed  # e.g. make bench-tasks BENCH_ARGS="--samples 100"
	$(PY) -m benchmarks.task_bench $(BENCH_ARGS)

.PHONY: bench-availability
bench-availability: $(VENV)/.installed node_modules/.installed  # e.g. make bench-availability BENCH_ARGS="--staff 20"
	$(PY) -m benchmarks.availability_bench $(BENCH_ARGS)

.PHONY: bench-teams
bench-teams: $(VENV)/.installed node_modules/.installed  # e.g. make bench-teams BENCH_ARGS="--samples 20"
	$(PY) -m benchmarks.teams_bench $(BENCH_ARGS)

.PHONY: bench-figures
bench-figures: $(VENV)/.installed node_modules/.installed  # the published figures: docs/benchmarks.md
	rm -f docs/figures/telemetry*.json
	$(PY) -m benchmarks.sync_bench --telemetry both --rounds 3 --json docs/figures/sync.json $(BENCH_ARGS)
	$(PY) -m benchmarks.sync_bench $(TELEMETRY_BENCH) --sampling-ratio 1 --json docs/figures/telemetry.json
	$(PY) -m benchmarks.sync_bench $(TELEMETRY_BENCH) --sampling-ratio 0.1 --json docs/figures/telemetry-sampled.json
	$(PY) -m benchmarks.appointment_bench --json docs/figures/appointments.json
	$(PY) -m benchmarks.publish

.PHONY: bench-appointments
bench-appointments: $(VENV)/.installed node_modules/.installed  # e.g. make bench-appointments BENCH_ARGS="--burst 1000"
	$(PY) -m benchmarks.appointment_bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .mypy_cache .ruff_cache .pytest_cache .devstack
