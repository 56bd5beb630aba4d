#!/usr/bin/env bash
# Build a real Kubernetes 1.20 control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler) from Debian's `kubernetes` source package, once per machine.
#
#   tools/k8s/build_control_plane.sh [--print-bin-dir]
#
# Binaries land in $EKSFOLD_K8S_BIN (default ${XDG_CACHE_HOME:-$HOME/.cache}/eksfold/k8s-1.20/bin),
# outside the repository, so every checkout on the machine shares one build. Idempotent: exits at
# once when the three binaries are there. See ../../../shared/FACTS.md ("Kubernetes and AWS pieces")
# for why each step is needed (deb-src entry, reflect2 vendor fix, CGO_ENABLED=0).
set -euo pipefail

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/eksfold/k8s-1.20"
BIN="${EKSFOLD_K8S_BIN:-$CACHE/bin}"
WHAT=(kube-apiserver kube-controller-manager kube-scheduler)
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

if [ "${1:-}" = "--print-bin-dir" ]; then echo "$BIN"; exit 0; fi

have_all() { for b in "${WHAT[@]}"; do [ -x "$BIN/$b" ] || return 1; done; }
if have_all; then echo "k8s control plane: cached in $BIN"; exit 0; fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9                       # a second concurrent build waits, then finds the binaries
if have_all; then echo "k8s control plane: cached in $BIN"; exit 0; fi

start=$(date +%s)
log() { echo "k8s build [$(( $(date +%s) - start ))s]: $*"; }

# 1. Tools and the reflect2 fix source (normally installed by `make setup` via mk/k8s.mk).
need=()
for p in golang-go jq rsync dpkg-dev etcd-server golang-github-modern-go-reflect2-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# 2. A deb-src entry for bookworm, so `apt-get source` can fetch the package.
if ! grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  log "adding a bookworm deb-src entry"
  $SUDO tee /etc/apt/sources.list.d/eksfold-deb-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  $SUDO apt-get update -q
fi

# 3. Fetch and unpack the source package (Debian patches applied by dpkg-source).
WORK="$CACHE/work"
rm -rf "$WORK"; mkdir -p "$WORK/src"
log "apt-get source kubernetes"
(cd "$WORK/src" && apt-get source -q kubernetes >"$WORK/apt-source.log" 2>&1) \
  || { tail -20 "$WORK/apt-source.log"; exit 1; }
SRCDIR=$(find "$WORK/src" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
[ -n "$SRCDIR" ] || { echo "no kubernetes-* source dir in $WORK/src" >&2; exit 1; }
log "source in $SRCDIR"

# 4. Go 1.19 + vendored reflect2 1.0.1 segfaults on custom-resource requests: use Debian's 1.0.2.
R2=/usr/share/gocode/src/github.com/modern-go/reflect2
[ -d "$R2" ] || { echo "missing $R2 (golang-github-modern-go-reflect2-dev)" >&2; exit 1; }
rm -rf "$SRCDIR/vendor/github.com/modern-go/reflect2"
cp -r "$R2" "$SRCDIR/vendor/github.com/modern-go/reflect2"

# 5. Build under a GOPATH whose src/k8s.io/kubernetes is the tree; static binaries.
mkdir -p "$WORK/gopath/src/k8s.io"
ln -sfn "$SRCDIR" "$WORK/gopath/src/k8s.io/kubernetes"
log "make (takes 5-15 minutes on 2 cores)"
(
  cd "$WORK/gopath/src/k8s.io/kubernetes"
  export GOPATH="$WORK/gopath" CGO_ENABLED=0 GOCACHE="$WORK/gocache"
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler" >"$WORK/make.log" 2>&1
) || { tail -40 "$WORK/make.log"; echo "build failed; full log: $WORK/make.log" >&2; exit 1; }

# 6. Install atomically into the cache, then drop the (multi-GB) work tree.
OUTDIR=$(find "$SRCDIR/_output" -type d -path '*/bin' | head -1)
mkdir -p "$BIN.tmp"
for b in "${WHAT[@]}"; do install -m 0755 "$OUTDIR/$b" "$BIN.tmp/$b"; done
rm -rf "$BIN"; mv "$BIN.tmp" "$BIN"
"$BIN/kube-apiserver" --version
rm -rf "$WORK"
log "done: $BIN"
