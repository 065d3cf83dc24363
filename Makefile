# The README's two commands: `make study` (set up, run the mini study, build the book) and
# `make test` (set up if needed, run the tests). Setup is idempotent.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PROFILE ?= mini
STAMP  := $(VENV)/.installed

.PHONY: setup system-deps slurm-deps vendor test test-all study book bench lint clean-book

setup: $(STAMP) system-deps vendor

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Fashion-MNIST (the mini study's downstream task) and Chromium (the browser tests) come from
# Debian; installed only where apt-get is usable and they are missing.
system-deps:
	@if [ -d /usr/share/datasets/fashion-mnist ] && command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist chromium chromium-driver >/dev/null; \
	else echo "note: install dataset-fashion-mnist, chromium and chromium-driver for the full study and browser tests"; fi

# SLURM and munge from Debian for the tests' one-node cluster (tests/slurm_cluster.py), installed
# only where apt-get is usable as root and they are missing; elsewhere those tests skip, saying why.
slurm-deps:
	@if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null; \
	else echo "note: install slurmctld, slurmd, slurm-client and munge (as root) for the SLURM tests"; fi

# MathJax, require.js and the ipywidgets HTML manager from npm, so the book needs no CDN; the
# explorer page's files and data (the first 1,000 categories of the search, searched once).
vendor: $(STAMP)
	$(BIN)/python -m ofdb_study vendor --book book

# pytest's exit code 5 (nothing collected) is a failure here, not a pass.
test: setup slurm-deps
	@HF_HUB_OFFLINE=1 $(BIN)/python -m pytest; code=$$?; \
	if [ $$code -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$code

test-all: setup slurm-deps
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not gpu"

study: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m ofdb_study study --profile $(PROFILE) --book

bench: setup
	$(BIN)/python benchmarks/bench_ifs.py

lint: $(STAMP)
	$(BIN)/ruff check ofdb_study tests benchmarks
	$(BIN)/ruff format --check ofdb_study tests benchmarks
