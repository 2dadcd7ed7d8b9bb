# Two entry points: `make run` and `make test`. Both create the virtual
# environment on first use, so a fresh machine needs only Python 3.11.
#
# Every package comes from a lock file, hash-checked: uv itself from .ci/uv.txt
# (installed by pip with --require-hashes into $(TOOLS)), everything else from
# uv.lock (installed by `uv sync --locked` into $(VENV)). `make lock` re-resolves
# uv.lock after a change to pyproject.toml; `make upgrade` moves every pin to the
# newest release that pyproject.toml allows.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .venv-uv
UV := $(TOOLS)/bin/uv
STAMP := $(VENV)/.installed
# uv must never fetch an interpreter of its own: the environment uses $(PYTHON).
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test lock-check lint typecheck unit lock upgrade uv-pin bench bench-compare clean

$(UV): .ci/uv.txt
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --require-hashes --no-deps -r .ci/uv.txt
	@touch $(UV)

$(STAMP): uv.lock pyproject.toml $(UV)
	$(UV) sync --locked --all-extras --python $(PYTHON)
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python server.py serve $(ARGS)

# Fails when pyproject.toml and uv.lock disagree (run `make lock`).
lock-check: $(UV)
	$(UV) lock --check --python $(PYTHON)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: lock-check lint typecheck unit

lock: $(UV)
	$(UV) lock --python $(PYTHON)

upgrade: $(UV)
	$(UV) lock --upgrade --python $(PYTHON)

# Rewrites .ci/uv.txt with the hashes of the uv release named in it.
uv-pin: $(UV)
	grep -o '^uv==[^ ]*' .ci/uv.txt | $(UV) pip compile --generate-hashes --no-header \
	  --python $(PYTHON) - -o .ci/uv.txt.new
	{ grep '^#' .ci/uv.txt; cat .ci/uv.txt.new; } > .ci/uv.txt && rm .ci/uv.txt.new

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .pytest_cache .ruff_cache

# The standard benchmark set (about 9 minutes); results in bench/results/, summary and
# plots in docs/BENCHMARKS.md. Each run starts its own server (cluster: its own Redis
# and two nodes); the messaging scenarios' load client is picows (--client picows).
# PAIRS_RATES: the offered rates of the open-loop pairs runs (the latency-vs-rate plot).
BENCH_RESULTS := bench/results
PAIRS_RATES ?= 250 500 1000 2000
LOAD := $(BIN)/python bench/load.py
bench: $(STAMP)
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

# A/B: SCENARIO against the server of BASE (a commit, checked out into a temporary
# worktree) and of HEAD (a commit or a checkout's path; default this checkout), in
# ROUNDS alternating rounds; each figure per round and as a ratio head/base. E.g.
#   make bench-compare BASE=7e75275 SCENARIO=pairs ARGS="--pairs 500 --duration 10"
ROUNDS ?= 3
SCENARIO ?= pairs
bench-compare: $(STAMP)
	@test -n "$(BASE)" || { echo "bench-compare needs BASE=<commit>"; exit 2; }
	$(LOAD) compare --base $(BASE) $(if $(HEAD),--head $(HEAD)) --rounds $(ROUNDS) \
	  $(SCENARIO) $(ARGS)
