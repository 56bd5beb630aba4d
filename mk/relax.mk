# Amber relaxation (issue 15). OpenFold's relax code reads openfold/resources/
# stereo_chemical_props.txt, which the openfold 0.0.1 sdist leaves out (FACTS); the same file
# ships in the PyPI wheel alphafold-colabfold 2.3.27. Fetch that wheel with pip (no deps, not
# installed) and copy the file, checked by sha256, into the installed openfold package.
SETUP_TARGETS += $(STAMPS)/relax

RELAX_WHEEL_DIR := $(STAMPS)/relax-wheel

$(STAMPS)/relax: $(STAMPS)/openfold mk/relax.mk
	$(BIN)/pip download -q --no-deps --only-binary :all: alphafold-colabfold==2.3.27 -d $(RELAX_WHEEL_DIR)
	$(BIN)/python -c "import glob, eksfold.models.openfold2.compat as c; \
	  print('relax: installed', c.install_stereo_chemical_props(glob.glob('$(RELAX_WHEEL_DIR)/alphafold_colabfold-2.3.27-*.whl')[0]))"
	@touch $@
