# eksfold: two commands on a fresh Debian machine with Python 3.11 —
#   make demo   installs everything, folds a few CAMEO targets on this machine, renders a report
#   make test   installs everything, then runs the test suite
# Set-up steps are idempotent and stamp-filed under .setup/, so reruns cost seconds.

PYTHON    ?= python3
VENV      := .venv
BIN       := $(CURDIR)/$(VENV)/bin
STAMPS    := .setup
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export PATH := $(BIN):$(PATH)

# What the demo needs (setup) and what only the tests need (test-setup). Each mk/*.mk
# fragment appends to these lists.
APT_PACKAGES       := hmmer hhsuite kalign mmseqs2 mmseqs2-examples hmmer-doc tm-align
SETUP_TARGETS      := $(STAMPS)/venv $(STAMPS)/openfold $(STAMPS)/db $(STAMPS)/site
TEST_APT_PACKAGES  :=
TEST_SETUP_TARGETS := $(STAMPS)/hhdb

include $(sort $(wildcard mk/*.mk))

DEMO_ROOT    ?= runs/demo
# Eight CAMEO-2022 targets with shipped references and homologues in data/db (data/demo/README.md).
# --weights auto: OpenFold's published finetuning_ptm_2 when its bucket is reachable, else
# labelled random weights; the first line of the output and of the report says which, and why.
# Templates are searched in the stand-in built from CAMEO 2022 structures (data/cameo2022,
# data/demo and the demo targets' earlier homologues in data/demo/templates). The cut-off is the
# day before the earliest demo target's CAMEO submission (8doa-A, 2022-10-01), as a benchmark
# needs: no template released after any demo target may help fold it, each target's own
# structure is found and left out, and homologues released before the targets are used
# (7tgi-B, 7w52-B), with OpenFold's rules.
DEMO_TARGETS ?= data/demo/targets.fasta
DEMO_ARGS    ?= --preset demo --weights auto --max-template-date 2022-09-30
PYTEST_ARGS  ?=

.PHONY: demo test setup test-setup clean
demo: setup
	$(BIN)/eksfold run $(DEMO_TARGETS) --root $(DEMO_ROOT) $(DEMO_ARGS); rc=$$?; \
	  $(BIN)/eksfold report $(DEMO_ROOT) && exit $$rc   # the report shows failed units too

test: setup test-setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(STAMPS)/apt $(SETUP_TARGETS)
test-setup: $(STAMPS)/apt-test $(TEST_SETUP_TARGETS)

# apt-get only when a package is missing (dpkg -s), so reruns and offline reruns are quick.
define apt_install
	@mkdir -p $(STAMPS)
	@if dpkg -s $(1) >/dev/null 2>&1; then echo "apt: $(words $(1)) packages present"; else \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(1); fi
	@touch $@
endef

$(STAMPS)/apt: Makefile $(wildcard mk/*.mk)
	$(call apt_install,$(APT_PACKAGES))

$(STAMPS)/apt-test: Makefile $(wildcard mk/*.mk) | $(STAMPS)/apt
	$(call apt_install,$(TEST_APT_PACKAGES))

# npm from Debian only where none is on PATH: Debian's npm conflicts with NodeSource's nodejs.
$(STAMPS)/npm-tool:
	@mkdir -p $(STAMPS)
	@command -v npm >/dev/null || { $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends nodejs npm; }
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

# Where this installation's data lives, so eksfold finds it from any working directory.
$(STAMPS)/site: $(STAMPS)/venv $(STAMPS)/db
	$(BIN)/python -m eksfold.site database=data/db/uniprot20k.fasta data=data runs=runs \
	  threedmol_js=$(STAMPS)/npm/node_modules/3dmol/build/3Dmol-min.js
	@touch $@

$(STAMPS)/hhdb: $(STAMPS)/db tools/build_hhdb.sh
	bash tools/build_hhdb.sh data/db/uniprot20k.fasta data/db/hhsuite 150
	@touch $@

clean:
	rm -rf $(STAMPS) $(VENV) data/db runs
