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

# The standard benchmark set (about 9 minutes); results in bench/results/, summary and
# plots in docs/BENCHMARKS.md. Needs the plotting extra, installed here. Each run starts
# its own server (cluster: its own Redis and two nodes). PAIRS_RATES: the offered rates
# of the open-loop pairs runs (the latency-vs-rate plot).
BENCH_RESULTS := bench/results
PAIRS_RATES ?= 250 500 1000 2000
LOAD := $(BIN)/python bench/load.py
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@mkdir -p $(BENCH_RESULTS)
	rm -f $(BENCH_RESULTS)/*.json
	-$(LOAD) connect --clients 5000 --json --save $(BENCH_RESULTS)/connect.json
	-$(LOAD) sync --friends 5000 --changes 10 --json --save $(BENCH_RESULTS)/sync.json
	-$(LOAD) pairs --pairs 500 --duration 20 --json --save $(BENCH_RESULTS)/pairs.json
	-for rate in $(PAIRS_RATES); do \
	  $(LOAD) pairs --pairs 500 --rate $$rate --duration 15 --json \
	    --save $(BENCH_RESULTS)/pairs-rate-$$rate.json; \
	done
	-$(LOAD) group --members 1000 --senders 4 --rate 10 --messages 200 --duration 20 --json \
	  --save $(BENCH_RESULTS)/group.json
	-$(LOAD) cluster --pairs 500 --duration 20 --json --save $(BENCH_RESULTS)/cluster.json
	$(BIN)/python bench/report.py
