# cluster/ (issue 4): what the offline validation of the EKS deployment needs beyond the venv
# (kubernetes-validate, check-jsonschema, hadolint, moto and botocore come from requirements.txt):
#  - the Karpenter v1 schemas: npm @kubernetes-models/karpenter, in its own cache folder (an
#    install with --no-save prunes whatever else shares the prefix), run with node; npm is
#    installed from Debian only when no npm is on PATH (a machine with NodeSource's nodejs has
#    npm already, and Debian's npm package conflicts with it);
#  - shellcheck for cluster's scripts, envsubst (gettext-base) for cluster/render.sh.
TEST_APT_PACKAGES  += shellcheck gettext-base
TEST_SETUP_TARGETS += $(STAMPS)/karpenter-schemas

KARPENTER_MODELS_VERSION := 2.0.0
KARPENTER_NPM            := $(STAMPS)/npm-karpenter
KARPENTER_MODELS_PKG     := $(KARPENTER_NPM)/node_modules/@kubernetes-models/karpenter/package.json

$(STAMPS)/karpenter-schemas: mk/cluster.mk $(STAMPS)/npm-tool
	@mkdir -p $(KARPENTER_NPM)
	@if grep -q '"version": "$(KARPENTER_MODELS_VERSION)"' $(KARPENTER_MODELS_PKG) 2>/dev/null; then \
	  echo "karpenter schemas: @kubernetes-models/karpenter $(KARPENTER_MODELS_VERSION) present"; else \
	  npm install --prefix $(KARPENTER_NPM) --no-save --no-audit --no-fund --ignore-scripts \
	    --omit=dev --omit=optional --no-package-lock \
	    @kubernetes-models/karpenter@$(KARPENTER_MODELS_VERSION) >&2; fi
	@grep -q '"version": "$(KARPENTER_MODELS_VERSION)"' $(KARPENTER_MODELS_PKG)
	@touch $@
