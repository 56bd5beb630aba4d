# Structure I/O tests (issue 15): real PDB/mmCIF files written by MD packages and by the PDB, from
# the test data that MDAnalysis publishes on PyPI (sdist `mdanalysistests`, pinned by version and
# sha256). Only the structure files are unpacked (about 15 MB); MDAnalysis itself is not installed
# (it needs a newer numpy than OpenFold's pins), the files are just read by the tests.
MDA_TESTS_VERSION := 2.11.0
MDA_TESTS_SHA256  := 5edeb5b01805da728b202103aa8d2b5974a37f1005ab1fe0150ed7d59702d2ea
MDA_STRUCTURES    := $(STAMPS)/mdanalysistests
TEST_SETUP_TARGETS += $(STAMPS)/md-structures

$(STAMPS)/md-structures: mk/structures.mk | $(STAMPS)/venv
	rm -rf $(MDA_STRUCTURES) && mkdir -p $(MDA_STRUCTURES)/sdist
	$(BIN)/pip download -q --no-deps --no-binary :all: -d $(MDA_STRUCTURES)/sdist \
	  mdanalysistests==$(MDA_TESTS_VERSION)
	echo "$(MDA_TESTS_SHA256)  $(MDA_STRUCTURES)/sdist/mdanalysistests-$(MDA_TESTS_VERSION).tar.gz" \
	  | sha256sum -c -
	tar -xzf $(MDA_STRUCTURES)/sdist/mdanalysistests-$(MDA_TESTS_VERSION).tar.gz \
	  -C $(MDA_STRUCTURES) --strip-components=2 --wildcards --exclude='*/windows/*' \
	  '*/MDAnalysisTests/data/*.pdb' '*/MDAnalysisTests/data/*.pdb.gz' \
	  '*/MDAnalysisTests/data/*.cif' '*/MDAnalysisTests/data/*.cif.gz'
	rm -rf $(MDA_STRUCTURES)/sdist
	@touch $@
