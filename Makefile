# Two commands matter on a fresh machine:  `make demo`  and  `make test`.
# Everything they need is installed into .venv from pyproject.toml (the one source of dependencies).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# sam build (BuildMethod python3.12) needs python3.12 on PATH: the venv provides it.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# Python 3.12 is the Lambda runtime we target. Look for it on PATH, then in pyenv.
PYTHON312 ?= $(shell for c in "$$(command -v python3.12)" "$$(pyenv prefix 3.12 2>/dev/null)/bin/python3.12" "$$(pyenv prefix 3.12.1 2>/dev/null)/bin/python3.12" $$HOME/.pyenv/versions/3.12*/bin/python3.12; do [ -n "$$c" ] && [ -x "$$c" ] && "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo "$$c"; break; }; done)

.PHONY: help venv test lint typecheck unit iac demo serve bench layer-requirements clean

help:
	@echo "make demo    run the whole pipeline on the embedded local stack (no AWS account, no Docker)"
	@echo "make test    install what is missing, then ruff, mypy, pytest and the template checks (sam validate --lint, sam build, checkov)"
	@echo "make bench   run the benchmarks and print the ratios"
	@echo "make serve   keep the local stack running on localhost for your own webhooks"

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON312)" ]; then \
	  echo "error: Python 3.12 was not found (looked for python3.12 on PATH and in pyenv)." >&2; \
	  echo "       Install it (for example 'pyenv install 3.12') or run: make PYTHON312=/path/to/python3.12 test" >&2; \
	  exit 1; fi
	@test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check --no-warn-script-location -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(VENV)/bin/pytest

# The template checks: sam validate --lint, sam build, checkov (scripts/iac_checks.sh).
iac: $(STAMP)
	scripts/iac_checks.sh

test: lint typecheck unit iac

bench: $(STAMP)
	$(PY) -m benchmarks

demo: $(STAMP)
	$(VENV)/bin/kantata-bridge demo

serve: $(STAMP)
	$(VENV)/bin/kantata-bridge serve

layer-requirements: $(STAMP)
	$(PY) scripts/layer_requirements.py > layers/bridge/requirements.txt

clean:
	rm -rf $(VENV) .aws-sam .mypy_cache .ruff_cache
