#!/usr/bin/env bash
# Build the small real sequence database used by the demo and the tests:
# Debian mmseqs2-examples' 20,000 UniProt sequences as a FASTA file jackhmmer searches.
set -euo pipefail
dest=${1:-data/db}
src=/usr/share/doc/mmseqs2/example-data/DB.fasta.gz
[ -f "$src" ] || { echo "missing $src: install the Debian package mmseqs2-examples (make setup)" >&2; exit 1; }
mkdir -p "$dest"
if [ ! -s "$dest/uniprot20k.fasta" ]; then
  gzip -dc "$src" > "$dest/uniprot20k.fasta.tmp"
  mv "$dest/uniprot20k.fasta.tmp" "$dest/uniprot20k.fasta"
fi
echo "$dest/uniprot20k.fasta: $(grep -c '>' "$dest/uniprot20k.fasta") sequences"
