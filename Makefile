# eksfold: two commands on a fresh Debian machine with Python 3.11 —
#   make demo   installs everything, then folds a few CAMEO targets on this machine
#   make test   installs everything, then runs the test suite
# Set-up steps are idempotent and stamp-filed under .setup/, so reruns cost seconds.

PYTHON    ?= python3
VENV      := .venv
BIN       := $(CURDIR)/$(VENV)/bin
STAMPS    := .setup
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export PATH := $(BIN):$(PATH)

# Debian packages; each mk/*.mk fragment may append to APT_PACKAGES and SETUP_TARGETS.
APT_PACKAGES  := hmmer hhsuite kalign mmseqs2 mmseqs2-examples hmmer-doc tm-align
SETUP_TARGETS := $(STAMPS)/venv $(STAMPS)/openfold $(STAMPS)/db

include $(sort $(wildcard mk/*.mk))

DEMO_ROOT    ?= runs/demo
DEMO_TARGETS ?= 6
DEMO_ARGS    ?= --limit $(DEMO_TARGETS) --shortest --preset demo --weights random
PYTEST_ARGS  ?=

.PHONY: demo test setup clean
demo: setup
	$(BIN)/eksfold run data/cameo92/targets.fasta --root $(DEMO_ROOT) $(DEMO_ARGS)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(STAMPS)/apt $(SETUP_TARGETS)

$(STAMPS)/apt: Makefile $(wildcard mk/*.mk)
	@mkdir -p $(STAMPS)
	@if dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then echo "apt: all packages present"; else \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(APT_PACKAGES); fi
	@touch $@

$(STAMPS)/venv: requirements.txt constraints.txt pyproject.toml
	@mkdir -p $(STAMPS)
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	@touch $@

$(STAMPS)/openfold: $(STAMPS)/venv tools/install_openfold.sh
	bash tools/install_openfold.sh $(BIN)/python
	@touch $@

$(STAMPS)/db: $(STAMPS)/apt tools/build_db.sh
	bash tools/build_db.sh data/db
	@touch $@

clean:
	rm -rf $(STAMPS) $(VENV) data/db runs
