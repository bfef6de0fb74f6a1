# Every target refreshes .venv from requirements.lock when the lock or pyproject changed, else reuses it.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
DVC_VENV := .venv-dvc
DVC_STAMP := $(DVC_VENV)/.installed
PIP_FLAGS := -q --disable-pip-version-check
export DAGSTER_HOME ?= $(CURDIR)/.dagster

.PHONY: venv run test lint docs docs-serve test-slow test-services ui mlflow-ui dvc repro bench dvc-yaml clean services services-down run-prod backfill

$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@echo "installing locked dependencies into $(VENV) (first time only)"
	@$(VENV)/bin/pip install $(PIP_FLAGS) -r requirements-dev.lock
	@$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps -e .
	@touch $@

venv: $(STAMP)

# Telemetry and the UI's first-run dialog off (cli/quiet.py writes it; an edited dagster.yaml is kept).
$(DAGSTER_HOME)/dagster.yaml: | venv
	@$(VENV)/bin/python -m cli.quiet $(DAGSTER_HOME)

run: venv $(DAGSTER_HOME)/dagster.yaml
	@$(VENV)/bin/mobile-mlops run

test: venv
	$(VENV)/bin/pytest -q --durations=12

# ruff (lint) and mypy (types) on the project's code; both configured in pyproject.toml.
lint: venv
	$(VENV)/bin/ruff check pipelines assets cli benchmarks tests
	$(VENV)/bin/mypy

# The documentation site (mkdocs.yml): reference pages regenerated from the code, then built with --strict.
docs: venv
	$(VENV)/bin/mobile-mlops docs generate
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: venv
	$(VENV)/bin/mobile-mlops docs generate
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve -a 127.0.0.1:8001

test-slow: venv $(DVC_STAMP)
	PATH="$(CURDIR)/$(DVC_VENV)/bin:$$PATH" $(VENV)/bin/pytest -q --durations=12 -m "slow and not services"

# The integration suite starts its own PostgreSQL, Redis, MLflow server and Celery workers (needs redis-server).
test-services: venv
	$(VENV)/bin/pytest -q -s -m services tests/services

# The production profile on loopback (docs/deployment.md): PostgreSQL cluster in .services/, Redis, MLflow server,
# two Celery workers, Dagster daemon and webserver. run-prod queues the release job on it and waits.
SERVICES := $(CURDIR)/.services
services: venv
	@$(VENV)/bin/mobile-mlops services up --folder $(SERVICES)

services-down: venv
	@$(VENV)/bin/mobile-mlops services down --folder $(SERVICES)

run-prod: venv
	@$(VENV)/bin/mobile-mlops services run --folder $(SERVICES)

# daily_batch partitions on the stack: DAYS days from data.incoming.start_date, one run per day (README "Daily partitions")
DAYS ?= 30
backfill: venv
	@$(VENV)/bin/mobile-mlops services backfill --folder $(SERVICES) --days $(DAYS)

ui: venv $(DAGSTER_HOME)/dagster.yaml
	@$(VENV)/bin/mobile-mlops automation status
	$(VENV)/bin/dagster dev -w workspace.yaml

# One worker: up in ~10 s instead of ~40 s with the default four on a laptop. Port 5000 = params mlflow.ui_url.
mlflow-ui: venv
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --port 5000 --workers 1

# DVC lives in its own environment: its hydra/omegaconf pin antlr4 4.9, Dagster needs 4.13.
$(DVC_STAMP): requirements-dvc.lock
	@test -x $(DVC_VENV)/bin/python || $(PYTHON) -m venv $(DVC_VENV)
	@$(DVC_VENV)/bin/pip install $(PIP_FLAGS) -r requirements-dvc.lock
	@touch $@

dvc: $(DVC_STAMP)
	@echo "dvc is at $(CURDIR)/$(DVC_VENV)/bin/dvc; add it to PATH: export PATH=\"$(CURDIR)/$(DVC_VENV)/bin:\$$PATH\""

# dvc.yaml is generated from the stage catalog (pipelines/catalog.py); CI fails when it is stale.
dvc-yaml: venv
	$(VENV)/bin/mobile-mlops dvc generate

repro: venv $(DVC_STAMP)
	$(DVC_VENV)/bin/dvc repro

bench: venv $(DVC_STAMP)
	PATH="$(CURDIR)/$(DVC_VENV)/bin:$$PATH" $(VENV)/bin/mobile-mlops bench

# The pipeline end to end on 1M, 10M and 30M synthetic rows, each step in its own process (hours on 2 cores):
# reports/bench-scale.json, docs/images/bench-scale.png; docs/benchmarks.md "Scale" quotes them
.PHONY: bench-scale
bench-scale: venv
	nice $(VENV)/bin/python -m benchmarks.scale

# Baselines and the real pipeline on every example data set, 5 splits each (~20 min): docs/fairness-benchmark.md
.PHONY: bench-fairness
bench-fairness: venv
	nice $(VENV)/bin/python -m benchmarks.fairness

# The fleet analyses over 100k and 1M devices x 30 days of stored telemetry (~15 min, ~3 GB in a temp folder)
.PHONY: bench-fleet
bench-fleet: venv
	nice $(VENV)/bin/python -m benchmarks.fleet_scale --scales 100000,1000000 --days 30 --write-docs

clean:
	rm -rf data/raw data/prepared models build .dagster
