# Two commands matter: `make lab` (the main job) and `make test` (the whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: lab test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/drg lab $(CONFIG)

lint: $(STAMP)
	$(VENV)/bin/ruff check controlplane peers tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict controlplane

unit: $(STAMP)
	$(VENV)/bin/pytest -q -m "not interop"

test: lint typecheck $(STAMP)
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
