# MMseqs2 alignment mode (issue 12): the small MMseqs2 databases built from the 20,000 UniProt
# sequences, in the plain layout and in ColabFold's cluster-profile layout (~2 min on 2 cores).
TEST_SETUP_TARGETS += $(STAMPS)/mmseqs-db

$(STAMPS)/mmseqs-db: $(STAMPS)/db $(STAMPS)/venv tools/build_mmseqs_db.py lib/eksfold/alignment/mmseqs_db.py
	$(BIN)/python tools/build_mmseqs_db.py data/db/uniprot20k.fasta data/db/mmseqs
	$(BIN)/python -m eksfold.site mmseqs_db=data/db/mmseqs/uniprot20k mmseqs_colabfold_db=data/db/mmseqs/uniprot20k_cf
	@touch $@
