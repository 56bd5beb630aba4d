# RNA MSAs (issue 24): a small real RNA database for the rfam role, which OpenFold3 reads MSAs of
# RNA chains from (eksfold.alignment.rna; nhmmer is HMMER's, already installed). The Debian
# package infernal ships real Rfam seed alignments (tRNA, Vault, snR75, Plant_SRP, PK-HAV,
# U1/U2/U3; Rfam is CC0) in its test suite; eksfold.alignment.rfam_standin turns them into an
# unaligned, deduplicated FASTA under their ENA names (1,338 sequences, < 1 s). Registered in
# site.json (rfam_db), so runs with the default databases give RNA chains MSAs.
APT_PACKAGES  += infernal
SETUP_TARGETS += $(STAMPS)/rfam

RFAM_STANDIN := data/db/rfam_standin.fasta

$(STAMPS)/rfam: $(STAMPS)/apt $(STAMPS)/venv mk/rna.mk lib/eksfold/alignment/rfam_standin.py
	$(BIN)/python -m eksfold.alignment.rfam_standin $(RFAM_STANDIN)
	$(BIN)/python -m eksfold.site rfam_db=$(RFAM_STANDIN)
	@touch $@
