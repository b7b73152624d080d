# GAELP — the two commands a user needs are `make demo` and `make test`; both set up .venv on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test test-fast bench demo ui world-demo lint clean dbt-manifest

DAGSTER_HOME_DIR := $(CURDIR)/data/dagster_home

setup: $(STAMP)

# torch is installed first and pinned, with pip (it finds the CPU build where the machine keeps it): anything that
# depends on it would otherwise pull a multi-GB CUDA build. The pinned rest goes in with uv (pinned too), which
# downloads and installs in parallel. The pinned torch already installed satisfies `torch==2.13.0`, so uv installs
# no other. uv compiles the packages' bytecode only when asked, as pip always does: without it, every process
# (each dbt build, each test's subprocess) compiles dagster and dbt again wherever .pyc files are not written
# (PYTHONDONTWRITEBYTECODE), and the test suite took 753 s instead of 580.
UV_VERSION := 0.13.9
$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (GAELP needs Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0 uv==$(UV_VERSION)
	$(PY) -m uv pip install --quiet --compile-bytecode --python $(PY) -r requirements.lock torch==2.13.0
	$(PY) -m uv pip install --quiet --python $(PY) --no-deps -e .
	$(PY) -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

# dbt's manifest is prepared here, before anything imports the Dagster definitions (never at import time). The
# project dir is absolute: the parse is saved with it (root_path) and a warehouse build that reuses the parse runs
# from the project dir, where a relative "dbt_project/seeds/..." does not exist.
MANIFEST := dbt_project/target/manifest.json
$(MANIFEST): $(STAMP) Makefile $(shell find dbt_project -name '*.sql' -o -name '*.yml' -o -name '*.csv' 2>/dev/null | grep -v target/)
	GAELP_DATA_DIR=$${GAELP_DATA_DIR:-$(CURDIR)/data} $(VENV)/bin/dbt parse --quiet \
		--project-dir $(CURDIR)/dbt_project --profiles-dir $(CURDIR)/dbt_project --target demo
dbt-manifest: $(MANIFEST)

test: setup $(MANIFEST)
	$(PY) -m pytest

test-fast: setup $(MANIFEST)
	$(PY) -m pytest -m "not slow"

bench: setup $(MANIFEST)
	$(PY) -m benchmarks.engine
	$(PY) -m benchmarks.oracle
	$(PY) -m benchmarks.backfill
	$(PY) -m benchmarks.warehouse
	$(PY) -m benchmarks.calibration
	$(PY) -m benchmarks.env
	$(PY) -m benchmarks.policy
	$(PY) -m benchmarks.event_log
	$(PY) -m benchmarks.closed_loop
	$(PY) -m benchmarks.ceiling_headroom
	$(PY) -m benchmarks.calibration_regret
	$(PY) -m benchmarks.faults

$(DAGSTER_HOME_DIR)/dagster.yaml: orchestration/instance/dagster.yaml
	mkdir -p $(DAGSTER_HOME_DIR)
	cp $< $@

# The Dagster loop on the demo market: backfill the recent history into DuckDB and summarise it.
demo: setup $(MANIFEST) $(DAGSTER_HOME_DIR)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME_DIR) $(if $(WORLD),GAELP_WORLD_FILE=$(WORLD)) $(if $(SEED),GAELP_WORLD_SEED=$(SEED)) \
		$(VENV)/bin/gaelp demo $(if $(DAYS),--days $(DAYS)) $(if $(LOOP_DAYS),--loop-days $(LOOP_DAYS)) \
		$(if $(VERBOSE),--verbose)

# The demo market on its own: N days under the bids in force, reports and oracle comparison.
world-demo: setup
	$(PY) -m rl.world.demo $(if $(WORLD),--world $(WORLD)) $(if $(SEED),--seed $(SEED)) $(if $(DAYS),--days $(DAYS))

# The Dagster UI on 127.0.0.1:3000 with a persistent instance under data/dagster_home. WORLD and SEED as for the
# demo; a world with its own campaigns has its account seeds in the data directory (`make demo` wrote them there),
# and the UI reads them unless GAELP_ACCOUNT_SEEDS says otherwise.
DATA_ACCOUNT_SEEDS = $(abspath $(or $(GAELP_DATA_DIR),$(CURDIR)/data))/accounts/seeds
ui: setup $(MANIFEST) $(DAGSTER_HOME_DIR)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME_DIR) $(if $(WORLD),GAELP_WORLD_FILE=$(WORLD)) $(if $(SEED),GAELP_WORLD_SEED=$(SEED)) \
		$(if $(GAELP_ACCOUNT_SEEDS),,$(if $(wildcard $(DATA_ACCOUNT_SEEDS)/campaign_registry.csv),GAELP_ACCOUNT_SEEDS=$(DATA_ACCOUNT_SEEDS))) \
		$(VENV)/bin/dagster dev -h 127.0.0.1 -p $(or $(PORT),3000) -w workspace.yaml

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) data .pytest_cache .hypothesis
