#!/usr/bin/env bash
# Install the npm package 3dmol (the JS library py3Dmol loads from a CDN by default) into a
# local cache, so notebooks and HTML reports can inline it and render 3D views offline.
#   usage: tools/fetch_3dmol.sh [CACHE_DIR]   (default .setup/npm)
# Idempotent: does nothing when the pinned version is already there.
set -euo pipefail

VERSION="${THREEDMOL_VERSION:-2.5.5}"   # must match py3Dmol's default CDN URL (py3Dmol 2.5.5)
CACHE="${1:-.setup/npm}"
JS="$CACHE/node_modules/3dmol/build/3Dmol-min.js"
PKG="$CACHE/node_modules/3dmol/package.json"

installed_version() {
  [ -f "$PKG" ] && sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$PKG" | head -n1
}

if [ -s "$JS" ] && [ "$(installed_version)" = "$VERSION" ]; then
  echo "3dmol $VERSION already in $CACHE"
  exit 0
fi

command -v npm >/dev/null || { echo "npm not found: install the Debian package npm" >&2; exit 1; }
mkdir -p "$CACHE"
# --ignore-scripts: we need only the prebuilt bundle, never run package install hooks.
npm install --prefix "$CACHE" --no-save --no-audit --no-fund --ignore-scripts \
  --omit=dev --omit=optional --no-package-lock "3dmol@$VERSION" >&2

[ -s "$JS" ] || { echo "3dmol installed but $JS is missing" >&2; exit 1; }
echo "3dmol $(installed_version) -> $JS"
