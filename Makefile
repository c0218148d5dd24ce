# The two README commands: `make demo` (install + main job) and `make test` (install + suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.linlim-installed
OUT    ?= linlim_demo_output

.PHONY: demo test lint bench docs clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/linlim demo --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q --doctest-modules linlim tests

lint: $(STAMP)
	$(BIN)/ruff check linlim tests examples benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_rime.py

docs: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	$(BIN)/sphinx-build -q -b html docs docs/_build/html

clean:
	rm -rf $(VENV) $(OUT) docs/_build .pytest_cache
