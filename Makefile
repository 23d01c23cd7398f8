# One command to set up and run the demo, one to set up and run the tests.
#   make demo   — install tools + .venv, then run the whole path on the embedded defaults
#   make test   — install tools + .venv, then run the test suite
#   make check  — the developer loop: ruff, mypy on the packages, the fast tests (not 'slow')
# Both are idempotent: a second run only re-installs what changed.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := infernal mafft ncbi-blast+ mmseqs2 hmmer
# one program per Debian package, to tell whether it is installed
APT_PROGRAMS := cmalign mafft blastn mmseqs nhmmer
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: setup tools venv galaxy-venv demo test check lint bench clean

setup: tools venv

tools:
	@missing=""; for program in $(APT_PROGRAMS); do command -v $$program >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $(APT_PACKAGES)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and alone, pinned, so no resolver can swap in a CUDA build
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@

# a real Galaxy for the wrappers' functional tests, in its own venv (it pins its own libraries)
galaxy-venv:
	bash tests/galaxy/setup_galaxy.sh

demo: setup
	$(BIN)/rinalmo-search demo

# not 'python -m pytest': that puts the repository root on sys.path, where our milvus/ folder
# would shadow the Milvus server package of the same import name
test: setup galaxy-venv
	$(BIN)/pytest $(PYTEST_ARGS)

check: setup
	$(BIN)/ruff check rinalmo_search embedder milvus training tests bench
	$(BIN)/mypy rinalmo_search embedder milvus training
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check rinalmo_search embedder milvus training tests bench
	$(BIN)/planemo lint --fail_level warn --skip BioToolsValid -r galaxy_tools/

# the quality section scores on the split the shipped model was tested on (never a split of its own)
BENCH_SPLIT := bench/out/split
bench: setup
	@[ -f $(BENCH_SPLIT)/split.json ] || $(BIN)/rinalmo-search data prepare --rfam-dir ../shared/data/rfam --out $(BENCH_SPLIT) --mmseqs-k 0
	$(BIN)/python bench/run.py --quick --split $(BENCH_SPLIT)

clean:
	rm -rf $(VENV) .venv-galaxy rinalmo-search-demo .pytest_cache
