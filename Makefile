# GAELP — the two commands a user needs are `make demo` and `make test`; both set up .venv on first use.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test test-fast bench demo lint clean

setup: $(STAMP)

# torch is installed first and pinned: anything that depends on it would otherwise pull a multi-GB CUDA build.
$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (GAELP needs Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.lock torch==2.13.0
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $(STAMP)

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

bench: setup
	$(PY) -m benchmarks.engine
	$(PY) -m benchmarks.oracle

demo: setup
	$(PY) -m rl.world.demo $(if $(WORLD),--world $(WORLD)) $(if $(SEED),--seed $(SEED)) $(if $(DAYS),--days $(DAYS))

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) data .pytest_cache .hypothesis
