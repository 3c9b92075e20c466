# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create their own virtual environment in .venv from pinned versions (constraints/: runtime.txt
# for what the package needs, optional.txt for the extras and dev tools).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck check bench bench-scale bench-many mutation mutation-reset clean

$(STAMP): pyproject.toml setup.py constraints/runtime.txt constraints/optional.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints/runtime.txt -c constraints/optional.txt -e ".[dev,evidently,report,duckdb,spark,pdf]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vigil demo --dir vigil-demo

test: $(STAMP)
	scripts/ensure-system-deps.sh
	scripts/ensure-postgres.sh
	PYTHON=$(PYTHON) scripts/ensure-nannyml.sh
	DO_NOT_TRACK=1 $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# Mutation testing of detectors/ and monitor/engine/ (config: [tool.mutmut] in pyproject.toml).
# Not part of `make test`; see docs/mutation.md for the score and how long it takes.
# A run cut by the timeout resumes where it stopped: mutmut keeps each verdict in mutants/
# and judges again only the mutants of functions whose code changed. `make mutation-reset`
# (or `rm -rf mutants`) starts over.
MUTATION_TIMEOUT ?= 5400
mutation: $(STAMP)
	$(BIN)/pip install --quiet -c constraints/runtime.txt -c constraints/optional.txt -e ".[mutation]"
	-timeout $(MUTATION_TIMEOUT) $(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut export-cicd-stats
	$(BIN)/mutmut results > mutants/survivors.txt
	cat mutants/mutmut-cicd-stats.json
	@echo "surviving mutants: mutants/survivors.txt (inspect one with: $(BIN)/mutmut show NAME)"

mutation-reset:
	rm -rf mutants

# The scale benchmarks (about 20 min loaded; needs the PostgreSQL server of `make test`):
# the pull path from PostgreSQL, and push-down against pull on PostgreSQL, DuckDB and Spark.
bench-scale: $(STAMP)
	$(BIN)/python bench/pg_read_bench.py --rows 100000 --features 20 200 --repeats 3
	$(BIN)/python bench/pushdown_bench.py --rows 1000000 10000000 --engines duckdb \
		--pull-max-rows 1000000 --out pushdown_duckdb.json
	$(BIN)/python bench/pushdown_bench.py --rows 1000000 --engines postgresql \
		--out pushdown_postgresql.json
	$(BIN)/python bench/pushdown_bench.py --rows 1000000 --engines spark --out pushdown_spark.json

# Many models, one daemon (20 and 200 models on a PostgreSQL store; about 30 min on a loaded
# 2-core machine, so not in `make bench`): figures in bench/README.md.
bench-many: $(STAMP)
	nice -n 19 $(BIN)/python bench/many_models_bench.py --models 20 200 --rounds 2

clean:
	rm -rf $(VENV) .venv-nannyml vigil-demo mutants .pytest_cache .mypy_cache .ruff_cache
