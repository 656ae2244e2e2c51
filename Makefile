# Entry point. Every target installs what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.installed
COLLECTIONS_DIR := $(CURDIR)/build/collections
COLLECTION_LINK := $(COLLECTIONS_DIR)/ansible_collections/ai_mesh/helm_engine

export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS_DIR)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv venv-2.17 test-ansible-2.17 lint sanity ee-context collection toolchain cluster-up cluster-down cluster-status test test-unit test-integration demo bench clean

help:
	@echo "make demo          bring up the local cluster and deploy the demo release (helm 4)"
	@echo "make test          unit tests + integration tests on the local cluster, helm 3 and helm 4"
	@echo "make test-unit     unit tests only (no cluster)"
	@echo "make lint          shellcheck, ansible-lint (production profile), antsibull-changelog lint"
	@echo "make sanity        ansible-test sanity and units on a copy at ansible_collections/ai_mesh/helm_engine"
	@echo "make ee-context    the collection tarball and an ansible-builder build context in build/ee"
	@echo "make cluster-up    start (or reuse) the local cluster; cluster-down stops it"
	@echo "make toolchain     build the cluster binaries into the cache (first time: about 10 minutes)"
	@echo "make bench         raw helm, kubernetes.core and this collection side by side; writes bench/RESULTS.md"

$(VENV_STAMP): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV_STAMP)

# The oldest ansible-core the collection supports (requires_ansible), beside the main venv.
VENV_217 := .venv-2.17
VENV_217_STAMP := $(VENV_217)/.installed

$(VENV_217_STAMP): tests/requirements-ansible-2.17.txt
	$(PYTHON) -m venv $(VENV_217)
	$(VENV_217)/bin/pip install --quiet --upgrade pip
	$(VENV_217)/bin/pip install --quiet -r tests/requirements-ansible-2.17.txt
	touch $@

venv-2.17: $(VENV_217_STAMP)

# Unit tests on ansible-core 2.17 (the integration suite runs one playbook on it too).
test-ansible-2.17: venv-2.17 collection
	$(VENV_217)/bin/python -m pytest -q -p no:cacheprovider tests/unit

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

# shellcheck (the venv's, from requirements-dev.txt) on the scripts; ansible-lint on all Ansible
# content (roles, playbooks, molecule, examples; .ansible-lint excludes the rest) with its state in
# a temporary ANSIBLE_HOME and cache, so no .ansible/ is left in the tree; the changelog fragments.
lint: venv collection
	$(VENV)/bin/shellcheck -x tools/*.sh tools/versions.env .ci/run
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  ANSIBLE_HOME="$$tmp/home" XDG_CACHE_HOME="$$tmp/cache" $(VENV)/bin/ansible-lint --offline
	$(VENV)/bin/antsibull-changelog lint

# ansible-test sanity (every test that applies, on the venv's Python) and units (tests/unit).
sanity: venv
	tools/ansible-test.sh sanity
	tools/ansible-test.sh units

# The collection tarball and the execution environment's build context (build/ee/context);
# `podman build build/ee/context` (or docker) builds the image.
ee-context: venv
	rm -rf build/ee && mkdir -p build/ee
	$(VENV)/bin/ansible-galaxy collection build --output-path build/ee .
	mv build/ee/ai_mesh-helm_engine-*.tar.gz build/ee/ai_mesh-helm_engine.tar.gz
	$(VENV)/bin/ansible-builder create -f execution-environment.yml -c build/ee/context

# The whole suite: lint, sanity and the unit tests (through ansible-test), the unit tests on
# ansible-core 2.17, then integration and packaging tests against the local cluster, as two
# pytest runs (each suite's conftest helpers are imported as 'conftest'). Integration cases
# mostly wait on the cluster and helm, so three workers (a file each) fit 2 cores. The
# integration run's reliability log becomes docs/reliability.md, pass or fail.
test: venv collection lint sanity test-ansible-2.17
	tools/with-cluster.sh sh -c '$(VENV)/bin/python -m pytest -q -n 3 --dist loadfile tests/integration; rc=$$?; \
	  $(VENV)/bin/python tools/reliability_report.py || rc=1; \
	  [ $$rc -eq 0 ] && $(VENV)/bin/python -m pytest -q tests/packaging'

demo: venv collection
	tools/demo.sh

# Speed figures: raw helm, kubernetes.core 6.6.0 and this collection side by side on the local
# cluster, helm 3 and helm 4; rewrites bench/RESULTS.md (about 30 minutes; settings at the top of
# bench/run.py). A quick run: BENCH_ROUNDS=1 BENCH_RESOURCES=10 BENCH_SCALES= make bench.
# HELM_ENGINE_CLUSTER_DIR and HELM_ENGINE_PORT_BASE select a private cluster, started (and
# stopped afterwards) when it is not up, so the figures are not shared with other users' tests.
# bench.doomed: a crash-looping upgrade with timeout 5m, fail-fast against helm's own atomic
# (plain helm waits out its timeout: about 6 minutes per helm major); BENCH_DOOMED=0 skips it.
bench: venv collection
	tools/with-cluster.sh sh -c '$(VENV)/bin/python -m bench.run && \
	  if [ "$${BENCH_DOOMED:-1}" != 0 ]; then $(VENV)/bin/python -m bench.doomed; fi'

clean:
	rm -rf build tests/output
