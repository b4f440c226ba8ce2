# The two commands of the README:
#   make demo   set up, create the sample project, train, open the TUI
#   make test   set up, then lint, type-check, check the import contract and run every test
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench evidently clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/workbench demo $(DIR)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@# mypy reads the packages under their installed names (workbench_tui is screens/, ...)
	@mkdir -p build/typecheck
	@ln -sfn ../../screens build/typecheck/workbench_tui
	@ln -sfn ../../plugins build/typecheck/workbench_plugins
	@ln -sfn ../../sample_projects build/typecheck/workbench_samples
	MYPYPATH=build/typecheck $(BIN)/mypy -p workbench -p workbench_tui -p workbench_plugins

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/startup.py

# Evidently, for benchmarks/drift.py's side-by-side line, in a virtualenv of its own: it
# needs pandas < 3, which the project's own packages do not pin.
evidently: .venv-evidently/bin/.installed
.venv-evidently/bin/.installed:
	$(PYTHON) -m venv .venv-evidently
	.venv-evidently/bin/python -m pip install --quiet 'evidently==0.7.23' 'pandas<3'
	@touch $@

clean:
	rm -rf $(VENV) .venv-evidently build *.egg-info .pytest_cache .ruff_cache
