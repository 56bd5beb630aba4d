# Kubernetes: a real 1.20 control plane (etcd + kube-apiserver/controller-manager/scheduler built
# from Debian's `kubernetes` source package) for the integration tests of the Kubernetes executor.
# The build is cached per machine outside the repository (tools/k8s/build_control_plane.sh), so a
# fresh machine builds it once (5-15 minutes on 2 cores; 5.5 minutes measured) and every later
# `make test-setup` (part of `make test`) reuses it; a missing binary (cache wiped) rebuilds it.

TEST_APT_PACKAGES += etcd-server golang-go jq rsync dpkg-dev golang-github-modern-go-reflect2-dev openssl
TEST_SETUP_TARGETS += $(STAMPS)/k8s

K8S_BIN := $(shell bash tools/k8s/build_control_plane.sh --print-bin-dir)

$(K8S_BIN)/kube-apiserver: | $(STAMPS)/apt-test
	bash tools/k8s/build_control_plane.sh

$(STAMPS)/k8s: tools/k8s/build_control_plane.sh $(K8S_BIN)/kube-apiserver | $(STAMPS)/apt-test
	@mkdir -p $(STAMPS)
	bash tools/k8s/build_control_plane.sh
	@touch $@
