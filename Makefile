# Every target bootstraps what it needs on a fresh clone: a .venv with pinned Python
# packages, the pinned CDK CLI from package-lock.json, and the demo model artifacts.
SHELL := /bin/bash
.DEFAULT_GOAL := synth

# Any python3 (3.9-3.13) starts the set-up; the pinned stack (numpy 1.24.1, scikit-learn 1.2.1) has wheels
# only for CPython 3.10/3.11, so the .venv gets one of those: found here, or fetched by uv.
PYTHON_BOOTSTRAP ?= python3
VENV_PYTHONS := 3.11 3.10
UV_VERSION := 0.13.9
# Kept in the user's cache folder, like pip's and uv's own caches: every clone reuses it.
UV_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ml-deploy-patterns/uv-$(UV_VERSION)
UV ?= $(UV_DIR)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
MODEL_DIR := artifacts/fraud-detector
MODEL_STAMP := $(MODEL_DIR)/metadata.json
PORT ?= 8080

# Offline-friendly CDK: no notices, no telemetry, no version check; silence jsii's Node 20 banner.
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Bytecode caches go to .build/pycache, never next to the sources: source folders are CDK assets, and
# site-packages is compiled lazily (only what is imported) instead of all at install time. A
# PYTHONDONTWRITEBYTECODE from the caller's shell would make every process (pytest's workers, each
# `cdk synth`, each training run) compile aws_cdk, botocore and scikit-learn again: it is dropped here.
export PYTHONPYCACHEPREFIX := $(CURDIR)/.build/pycache
unexport PYTHONDONTWRITEBYTECODE
CDK := node_modules/.bin/cdk

.PHONY: synth test model serve bench clean distclean deps deploy

deps: $(VENV)/.installed node_modules/.installed

# uv from PyPI (pinned): it creates the .venv and installs the packages in parallel.
$(UV):
	@command -v $(PYTHON_BOOTSTRAP) >/dev/null || { echo "error: no $(PYTHON_BOOTSTRAP): install Python 3 (3.9 to 3.13) or run make PYTHON_BOOTSTRAP=/path/to/python3"; exit 1; }
	@$(PYTHON_BOOTSTRAP) -m pip --version >/dev/null 2>&1 || { echo "error: $(PYTHON_BOOTSTRAP) has no pip: install it (apt-get install python3-pip) or run make UV=/path/to/uv"; exit 1; }
	$(PYTHON_BOOTSTRAP) -m pip install --quiet --disable-pip-version-check --target $(UV_DIR) uv==$(UV_VERSION)

# The interpreter for the .venv: $(PYTHON_BOOTSTRAP) when it is 3.10/3.11, else python3.11/python3.10 on PATH,
# else pyenv's, else "3.11" (uv uses a managed one or downloads it).
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(UV)
	@set -e; choice=3.11; \
	for candidate in $(PYTHON_BOOTSTRAP) $(addprefix python,$(VENV_PYTHONS)) \
	    $(foreach v,$(VENV_PYTHONS),$(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/$(v).*/bin/python$(v))); do \
	  found=$$($$candidate -c 'import sys; print(sys.executable if sys.version_info[:2] in ((3, 10), (3, 11)) else "")' 2>/dev/null) || continue; \
	  if [ -n "$$found" ]; then choice=$$found; break; fi; \
	done; \
	echo "creating $(VENV) with Python $$choice"; \
	$(UV) venv --quiet --seed --clear --python "$$choice" $(VENV) 2>/dev/null || { \
	  echo "error: the pinned packages need CPython 3.10 or 3.11 and none was found or could be fetched: install one (apt-get install python3.11, brew install python@3.11, pyenv install 3.11) and run make again"; exit 1; }
	$(UV) pip install --quiet --python $(PY) -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "node and npm are required (apt-get install nodejs npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(MODEL_STAMP): $(VENV)/.installed $(wildcard training/*.py)
	$(PY) -m training.build --out artifacts

model: $(MODEL_STAMP)

synth: deps model
	$(CDK) synth --no-notices --quiet --output cdk.out
	@ls -1 cdk.out/*.template.json

# One worker per core; a test file stays on one worker, so its module fixtures are built once.
test: deps model
	$(PY) -m pytest -n auto --dist loadfile

# What the deploy workflow runs (needs AWS credentials): every stack of the environment ENV (none: the defaults).
ENV ?=
deploy: deps model
	$(CDK) deploy --all --no-notices --require-approval never $(if $(ENV),-c env=$(ENV))

serve: deps model
	PORT=$(PORT) $(PY) -m serve --model-dir $(MODEL_DIR)

bench: deps model
	$(PY) -m bench

clean:
	rm -rf cdk.out .build .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -not -path './node_modules/*' -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) node_modules artifacts
