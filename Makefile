# Every target bootstraps what it needs on a fresh clone: a .venv with pinned Python
# packages, the pinned CDK CLI from package-lock.json, and the demo model artifacts.
SHELL := /bin/bash
.DEFAULT_GOAL := synth

PYTHON_BOOTSTRAP ?= python3
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
export PYTHONDONTWRITEBYTECODE := 1
CDK := node_modules/.bin/cdk

.PHONY: synth test model serve bench clean distclean deps

deps: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON_BOOTSTRAP) >/dev/null || { echo "python3 (3.11+) is required"; exit 1; }
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
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

test: deps model
	$(PY) -m pytest

serve: deps model
	PORT=$(PORT) $(PY) -m serve --model-dir $(MODEL_DIR)

bench: deps model
	$(PY) -m bench

clean:
	rm -rf cdk.out .build .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -not -path './node_modules/*' -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) node_modules artifacts
