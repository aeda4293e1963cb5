# Two commands matter: `make lab` (the main job) and `make test` (the whole suite).
# Both create the virtual environment in .venv when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
CONFIG ?= examples/transport-mode.yaml

.PHONY: lab test lint typecheck unit bench clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test]'
	touch $@ $(RUN_STAMP)

lab: $(RUN_STAMP)
	$(VENV)/bin/drg lab $(CONFIG)

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check controlplane peers bench tests examples

typecheck: $(TEST_STAMP)
	$(VENV)/bin/mypy --strict controlplane tests

unit: $(TEST_STAMP)
	$(VENV)/bin/pytest -q -m "not interop"

test: lint typecheck
	$(VENV)/bin/pytest -q -rs

bench: $(TEST_STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
