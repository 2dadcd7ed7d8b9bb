# Two entry points: `make run` and `make test`. Both create the virtual
# environment on first use, so a fresh machine needs only Python 3.11.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python server.py serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: lint typecheck unit

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# The standard benchmark set (about 3 minutes); results in bench/results/, summary and
# plot in docs/BENCHMARKS.md. Needs the plotting extra, installed here.
BENCH_RESULTS := bench/results
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@mkdir -p $(BENCH_RESULTS)
	rm -f $(BENCH_RESULTS)/*.json
	-$(BIN)/python bench/load.py connect --clients 5000 --json --save $(BENCH_RESULTS)/connect.json
	-$(BIN)/python bench/load.py sync --friends 5000 --changes 10 --json --save $(BENCH_RESULTS)/sync.json
	$(BIN)/python bench/report.py
