# modelfleet — newcomer entry points: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test demo lint cluster-build bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@bash devcluster/system_deps.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,local]'
	@touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy fleet tui

# Builds (or finds) the control-plane binaries; cached outside the repo.
cluster-build: setup
	$(VENV)/bin/fleet cluster build

test: setup cluster-build
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy fleet tui
	NO_PROXY=127.0.0.1,localhost $(PY) -m pytest -q -ra

demo: setup cluster-build
	$(VENV)/bin/fleet demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
