# OpenFold3 (issue 24): the second model back end, in its own virtual environment .venv-of3
# (its numpy 2 / biotite >= 1 cannot be reconciled with OpenFold 0.0.1's pins in .venv, FACTS).
# Tests only for now: the test suite runs the real OpenFold3 code (reduced configuration) from
# this environment in subprocesses; the demo does not need it. ~2 GB download, a few minutes.
# tools/openfold3/constraints.txt is the full resolved set, frozen from a working install.
OF3_VENV := .venv-of3
OF3_BIN  := $(CURDIR)/$(OF3_VENV)/bin
TEST_SETUP_TARGETS += $(STAMPS)/openfold3

$(STAMPS)/openfold3: mk/openfold3.mk tools/openfold3/requirements.txt \
                    tools/openfold3/constraints.txt
	@mkdir -p $(STAMPS)
	[ -x $(OF3_BIN)/python ] || $(PYTHON) -m venv $(OF3_VENV)
	$(OF3_BIN)/pip install -q -r tools/openfold3/requirements.txt -c tools/openfold3/constraints.txt
	$(OF3_BIN)/python -c "import torch, openfold3, rdkit, biotite.structure.info; \
	  from openfold3.entry_points.experiment_runner import InferenceExperimentRunner; \
	  print('openfold3: torch', torch.__version__, 'biotite', biotite.__version__)"
	@touch $@
