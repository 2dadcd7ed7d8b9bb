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
NODE_STAMP := node_modules/.installed
WEB_VENDOR := webclient/vendor/.built
CHROMIUM ?= /usr/bin/chromium
NEEDS_NODE := node >= 20 and npm (e.g. apt-get install nodejs npm)
# uv must never fetch an interpreter of its own: the environment uses $(PYTHON).
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test lock-check lint typecheck unit lock upgrade uv-pin bench bench-scale bench-compare \
  clean \
  js js-types js-check js-test

$(UV): .ci/uv.txt
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --require-hashes --no-deps -r .ci/uv.txt
	@touch $(UV)

$(STAMP): uv.lock pyproject.toml $(UV)
	$(UV) sync --locked --all-extras --python $(PYTHON)
	@touch $(STAMP)

# The web client (webclient/) needs its vendored modules, built from node_modules;
# without npm the node still runs, without the web client's files.
run: $(STAMP) $(if $(shell command -v npm),$(WEB_VENDOR))
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

test: lock-check lint typecheck js-check unit js-test

# -- JavaScript: the SDK (client-js/), the web client (webclient/), their tests ----
# npm packages come from package-lock.json (`npm ci`); the browser tests drive the
# system's Chromium (CHROMIUM) with playwright-core. Without node, npm or Chromium
# `make test` stops with a line saying what to install.

$(NODE_STAMP): package.json package-lock.json client-js/package.json
	@command -v node >/dev/null && command -v npm >/dev/null || \
	  { echo "make: the JavaScript SDK and web client need $(NEEDS_NODE)"; exit 1; }
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' || \
	  { echo "make: node $$(node --version) is too old: they need $(NEEDS_NODE)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

js: $(NODE_STAMP) $(WEB_VENDOR)

# The SDK and @msgpack/msgpack's ES module build, copied where the node serves them.
$(WEB_VENDOR): $(NODE_STAMP) $(wildcard client-js/src/*)
	rm -rf webclient/vendor
	mkdir -p webclient/vendor/parley webclient/vendor/msgpack
	cp client-js/src/*.js webclient/vendor/parley/
	cp -R node_modules/@msgpack/msgpack/dist.esm/. webclient/vendor/msgpack/
	cp node_modules/@msgpack/msgpack/LICENSE webclient/vendor/msgpack/
	@touch $(WEB_VENDOR)

# client-js/src/protocol.d.ts and codes.js from the server's definitions in protocol/.
js-types: $(STAMP)
	$(BIN)/python client-js/tools/protocol_types.py

js-check: $(STAMP) $(NODE_STAMP)
	$(BIN)/python client-js/tools/protocol_types.py --check
	node_modules/.bin/tsc -p client-js/tsconfig.json

js-test: $(STAMP) js
	@test -x $(CHROMIUM) || { echo "make: the browser tests need Chromium at $(CHROMIUM)" \
	  "(apt-get install chromium, or CHROMIUM=/path/to/chrome)"; exit 1; }
	CHROMIUM=$(CHROMIUM) TEST_PYTHON=$(abspath $(BIN))/python node --test client-js/test/*.test.js tests/browser/*.test.js

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
	rm -rf $(VENV) $(TOOLS) .mypy_cache .pytest_cache .ruff_cache node_modules webclient/vendor

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
	$(MAKE) --no-print-directory bench-scale

# Scale-out (part of `make bench`, about 8 minutes alone): in SCALE_ROUNDS alternating
# rounds, 2 nodes on a Redis Cluster of 3 masters against the same on one Redis, and
# `--workers 2` against one process, as ratios; then two master failovers (SIGKILL,
# replica promoted), with and without redis.durability = "replicas" (WAIT 1 per batch),
# each conversation read back and checked. Needs redis-server >= 7.0 on PATH.
SCALE_ROUNDS ?= 3
bench-scale: $(STAMP)
	@mkdir -p $(BENCH_RESULTS)/compare
	-$(LOAD) compare --base-args '--store redis' --head-args '--store cluster' \
	  --rounds $(SCALE_ROUNDS) cluster --pairs 500 --duration 10 \
	  --save $(BENCH_RESULTS)/compare/cluster-store-redis-vs-cluster.json
	-$(LOAD) compare --head-args '--workers 2' --rounds $(SCALE_ROUNDS) \
	  pairs --pairs 500 --duration 10 --save $(BENCH_RESULTS)/compare/workers-1-vs-2.json
	-$(LOAD) cluster --store cluster --replicas 1 --failover-at 5 --pairs 200 --duration 15 \
	  --set redis.durability=replicas --json \
	  --save $(BENCH_RESULTS)/cluster-failover-replicas.json
	-$(LOAD) cluster --store cluster --replicas 1 --failover-at 5 --pairs 200 --duration 15 \
	  --json --save $(BENCH_RESULTS)/cluster-failover.json
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
