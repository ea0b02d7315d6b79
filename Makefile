# Two commands on a fresh machine (python3, pip, make): `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
UV_VER  := 0.13.8
LINES   ?= 100000
FILES   ?= 10
SIZES   ?= 100000,300000,1000000,2000000,5000000
PYTEST_ARGS ?= --durations=25

.PHONY: help install demo run test test-fast lint format bench bench-worst bench-scale lock serve clean fuzz mutate

help:
	@echo "make demo   - create .venv if missing, write the synthetic sample inbox, run the nightly flow, print a summary"
	@echo "make test   - lint (ruff check, ruff format --check, mypy), then the whole test suite"
	@echo "make lint   - only the lint and type checks; make format fixes what ruff can"
	@echo "make fuzz   - the whole hostile-file corpus (about 2,000 files): each file, then 20 real nights, then peers' workbooks"
	@echo "make mutate - mutation testing with mutmut (ONLY='transforms.numbers*' for a part); prints the score"
	@echo "make bench  - benchmarks (LINES=$(LINES) FILES=$(FILES)); writes BENCHMARKS.md"
	@echo "make bench-worst - peak memory of a run and an export on Excel's largest sheet, every row failing (~10 min)"
	@echo "make bench-scale - the scaling run (SIZES=$(SIZES) lines; ~30 min, corpora cached in ~/.cache/dcf-bench)"
	@echo "make lock   - re-resolve requirements.lock from pyproject.toml (then commit it)"

# The environment: exactly the locked set (requirements.lock), installed with uv; never re-resolved on install.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VER)
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/dcf sample
	$(BIN)/dcf run

run: $(STAMP)
	$(BIN)/dcf run

# two workers (one per core on CI), a file's tests on one worker: the system tests mostly wait on subprocesses
PYTEST_WORKERS ?= -n auto --maxprocesses=2 --dist loadfile

test: lint
	$(BIN)/python -m pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

# ruff (lint + format check) and mypy: part of make test, so CI refuses unformatted or mistyped code
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-fast: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

# mutation testing (mutmut, [tool.mutmut] in pyproject.toml); not part of make test: hours for every module on 2 cores.
# ONLY narrows it to mutants by name, e.g. make mutate ONLY='transforms.numbers*'
ONLY ?=
mutate: $(STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 $(ONLY)
	$(BIN)/mutmut export-cicd-stats
	$(BIN)/python -m tests.mutation_score

fuzz: $(STAMP)
	$(BIN)/python -m tests.hostile.run --count 2000 --memory-gib 2
	$(BIN)/python -m tests.hostile.nightly --count 2000 --batch 100
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/hostile/test_peer_workbooks.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --lines $(LINES) --files $(FILES)

# the largest legal sheet, every row failing: peak RSS of one run and of the export (BENCHMARKS.md "Worst legal sheet")
bench-worst: $(STAMP)
	$(BIN)/python -m benchmarks.worst_sheet

# every issue-15 target from one run: 100k..5M lines, each size's flows in a child process (BENCHMARKS.md "Scaling")
bench-scale: $(STAMP)
	$(BIN)/python -m benchmarks.scale --sizes $(SIZES)

lock: $(STAMP)
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf data .pytest_cache
