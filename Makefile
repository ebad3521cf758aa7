# Two commands on a fresh machine: `make run` (install + default study), `make test` (tests).
# Everything installs into .venv at the tested versions (constraints.txt); torch is pinned first so pip
# never pulls CUDA wheels here.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
CORES ?= all
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: install run report verify claims test test-fast bench bench-memory lint dry-run clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

run: install
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

report: install
	$(BIN)/snakemake --report results/report.html

verify: install
	$(BIN)/python -m hessmask.store verify results data

claims: install
	$(BIN)/python -m hessmask.claims claims.yaml --results results

dry-run: install
	$(BIN)/snakemake -n

test: install lint
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not workflow and not slow"

lint: install
	$(BIN)/ruff check src scripts tests benchmarks
	$(BIN)/snakefmt --check rules Snakefile
	$(BIN)/snakemake --lint

clean:
	find results -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
	rm -rf .snakemake
	@echo "removed every generated result (results/*) and Snakemake's state; kept results/README.md and the downloaded/prepared data in data/"

bench: install
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bench]'
	$(BIN)/python benchmarks/eigensolvers.py
	$(BIN)/python benchmarks/transforms.py
	$(BIN)/python benchmarks/subspace_training.py

bench-memory: install
	$(BIN)/python benchmarks/memory.py --paper-run
