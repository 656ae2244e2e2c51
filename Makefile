# Entry point. Every target installs what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed
COLLECTIONS_DIR := $(CURDIR)/build/collections
COLLECTION_LINK := $(COLLECTIONS_DIR)/ansible_collections/ai_mesh/helm_engine

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS_DIR)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv collection toolchain cluster-up cluster-down cluster-status test test-unit test-integration demo bench clean

help:
	@echo "make demo          bring up the local cluster and deploy the demo release (helm 4)"
	@echo "make test          unit tests + integration tests on the local cluster, helm 3 and helm 4"
	@echo "make test-unit     unit tests only (no cluster)"
	@echo "make cluster-up    start (or reuse) the local cluster; cluster-down stops it"
	@echo "make toolchain     build the cluster binaries into the cache (first time: about 10 minutes)"
	@echo "make bench         speed figures on the local cluster"

$(VENV_STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV_STAMP)

# Ansible finds the collection by its namespace path; link the checkout there.
collection:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@ln -sfn $(CURDIR) $(COLLECTION_LINK)

toolchain:
	tools/toolchain.sh build

cluster-up:
	tools/cluster.sh up

cluster-down:
	tools/cluster.sh down

cluster-status:
	tools/cluster.sh status

test-unit: venv collection
	$(VENV)/bin/python -m pytest -q tests/unit

test-integration: venv collection
	tools/with-cluster.sh $(VENV)/bin/python -m pytest -q tests/integration

# The whole suite: unit tests, then integration tests against the local cluster.
test: venv collection
	tools/with-cluster.sh $(VENV)/bin/python -m pytest -q tests/unit tests/integration

demo: venv collection
	tools/demo.sh

# Speed figures on the local cluster (helm 3 and helm 4); prints JSON.
bench: venv collection
	tools/with-cluster.sh $(VENV)/bin/python tools/bench.py

clean:
	rm -rf build tests/output
