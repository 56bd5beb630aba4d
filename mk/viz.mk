# 3D views and reports (issue 6): 3Dmol.js from npm so viewers render offline, and a headless
# Chromium that the report tests use to open rendered HTML with networking off.
TEST_APT_PACKAGES += chromium
SETUP_TARGETS     += $(STAMPS)/3dmol

THREEDMOL_CACHE := $(STAMPS)/npm

$(STAMPS)/3dmol: $(STAMPS)/npm-tool tools/fetch_3dmol.sh
	bash tools/fetch_3dmol.sh $(THREEDMOL_CACHE)
	@touch $@
