# Two commands matter on a fresh machine:  `make demo`  and  `make test`.
# Everything they need is installed into .venv from pyproject.toml (the one source of dependencies):
# `make demo` (and `make serve`) install only the runtime and the "demo" extra; `make test` installs the whole
# development toolchain ("dev" extra: SAM CLI, mypy, cfn-lint, ...). Each kind of install has its own stamp
# file, so `make test` after `make demo` installs the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV       := .venv
PY         := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.installed-demo
DEV_STAMP  := $(VENV)/.installed-dev
PIP        := $(PY) scripts/pip_progress.py --log $(VENV)/pip-install.log --
# sam build (BuildMethod python3.12) needs python3.12 on PATH: the venv provides it.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# Python 3.12 is the Lambda runtime we target. Look for it on PATH, then in pyenv.
PYTHON312 ?= $(shell for c in "$$(command -v python3.12)" "$$(pyenv prefix 3.12 2>/dev/null)/bin/python3.12" "$$(pyenv prefix 3.12.1 2>/dev/null)/bin/python3.12" $$HOME/.pyenv/versions/3.12*/bin/python3.12; do [ -n "$$c" ] && [ -x "$$c" ] && "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { echo "$$c"; break; }; done)
# "3.12" for a Python 3.12 interpreter; empty when the program does not run.
python_version = $(shell "$(1)" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)

.PHONY: help venv python-check test lint typecheck unit iac demo serve bench layer-requirements clean

help:
	@echo "make demo    run the whole pipeline on the embedded local stack (no AWS account, no Docker)"
	@echo "make test    install what is missing, then ruff, mypy, pytest and the template checks (sam validate --lint, sam build, checkov)"
	@echo "make bench   run the benchmarks and print the ratios"
	@echo "make serve   keep the local stack running on localhost for your own webhooks (options: make serve ARGS='--port 9000')"

# Refuses a .venv made with another Python (it would be reused for ever), and a PYTHON312 that is not 3.12.
python-check:
	@if [ -e "$(PY)" ]; then \
	  v="$(call python_version,$(PY))"; \
	  if [ "$$v" != "3.12" ]; then \
	    echo "error: $(VENV) was made with Python $${v:-(which no longer runs)}, but kantata-bridge needs Python 3.12." >&2; \
	    echo "       Run 'make clean', then this command again (with PYTHON312=/path/to/python3.12 if 3.12 is not found)." >&2; \
	    exit 1; fi; \
	elif [ -z "$(PYTHON312)" ]; then \
	  echo "error: Python 3.12 was not found (looked for python3.12 on PATH and in pyenv)." >&2; \
	  echo "       Install it (for example 'pyenv install 3.12') or run: make PYTHON312=/path/to/python3.12 $(MAKECMDGOALS)" >&2; \
	  exit 1; \
	else \
	  v="$(call python_version,$(PYTHON312))"; \
	  if [ "$$v" != "3.12" ]; then \
	    echo "error: PYTHON312=$(PYTHON312) is $${v:+Python }$${v:-not a Python that runs}, but kantata-bridge needs Python 3.12 (the Lambda runtime)." >&2; \
	    echo "       Point PYTHON312 at a python3.12, or leave it out to let make look for one." >&2; \
	    exit 1; fi; \
	fi

# The demo's install: the runtime dependencies and moto's server for the local stack (~30 MB, about 12 s).
$(DEMO_STAMP): pyproject.toml | python-check
	@test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	@echo "Installing what the demo needs into $(VENV) (first run only; about 12 s) ..."
	@$(PIP) install --disable-pip-version-check --no-warn-script-location -e '.[demo]'
	@touch $(DEMO_STAMP)

# Everything: the demo's install plus the development toolchain (SAM CLI, mypy, cfn-lint, ...; about 500 MB).
$(DEV_STAMP): pyproject.toml | python-check
	@test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	@echo "Installing the development toolchain into $(VENV) (SAM CLI, mypy, cfn-lint, ...; first run only; 1-2 min) ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PIP) install --disable-pip-version-check --no-warn-script-location -e '.[dev]'
	@touch $(DEV_STAMP) $(DEMO_STAMP)

venv: python-check $(DEV_STAMP)

lint: python-check $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: python-check $(DEV_STAMP)
	$(VENV)/bin/mypy

unit: python-check $(DEV_STAMP)
	$(VENV)/bin/pytest

# The template checks: sam validate --lint, sam build, checkov (scripts/iac_checks.sh).
iac: python-check $(DEV_STAMP)
	scripts/iac_checks.sh

test: lint typecheck unit iac

bench: python-check $(DEV_STAMP)
	$(PY) -m benchmarks

# ARGS passes options through, e.g. make demo ARGS='--timeout 30', make serve ARGS='--port 9000'.
demo: python-check $(DEMO_STAMP)
	@$(VENV)/bin/kantata-bridge demo $(ARGS)

# serve ends with exit 0 on Ctrl-C, so make reports no error for it.
serve: python-check $(DEMO_STAMP)
	@$(VENV)/bin/kantata-bridge serve $(ARGS)

layer-requirements: python-check $(DEV_STAMP)
	$(PY) scripts/layer_requirements.py > layers/bridge/requirements.txt

clean:
	rm -rf $(VENV) .aws-sam .mypy_cache .ruff_cache
