# Templates (issue 20): a real, small template database built from the CAMEO 2022 reference
# structures that ship in data/cameo2022, data/demo and data/demo/templates (the demo targets'
# homologues released before them) (eksfold.templates.standin): mmCIF files written with
# gemmi (SEQRES, release dates, method, resolution), pdb_seqres.txt, and a PDB70-style HH-suite
# database made with hhmake / ffindex_build / cstranslate. About 10 s on 2 cores. Registered in
# site.json (template_db), so runs with the default databases search templates for presets
# trained with them, as OpenFold does.
SETUP_TARGETS += $(STAMPS)/templates

TEMPLATE_DB := data/db/templates

TEMPLATE_SETS := data/cameo2022 data/demo data/demo/templates

$(STAMPS)/templates: $(STAMPS)/apt $(STAMPS)/venv mk/templates.mk lib/eksfold/templates/standin.py \
                     $(foreach d,$(TEMPLATE_SETS),$(d)/targets.fasta $(d)/metadata.tsv)
	rm -rf $(TEMPLATE_DB)
	$(BIN)/python -m eksfold.templates.standin $(TEMPLATE_SETS) $(TEMPLATE_DB)
	$(BIN)/python -m eksfold.site template_db=$(TEMPLATE_DB)
	@touch $@
