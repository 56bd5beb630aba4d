#!/usr/bin/env bash
# Measure the MSA depth jackhmmer finds in the shipped 20,000-sequence database for the short
# CAMEO-2022 targets that have reference structures (shared/data/cameo2022_refs), as the align
# stage runs it (AlphaFold2's filters, -N 1, E 1e-4). Prints "<pdb>.<chain> <length> <depth>";
# data/demo/ holds eight of those with depth > 1 (see data/demo/README.md).
#   tools/pick_demo_targets.sh /work/shared/data/cameo2022_refs data/db/uniprot20k.fasta [130]
set -euo pipefail
refs=${1:?cameo2022_refs folder}; db=${2:?FASTA database}; max=${3:-130}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
awk -v max="$max" -v dir="$tmp" '
  /^>/ { if (name != "" && length(seq) <= max) print ">" name "\n" seq > (dir "/" name ".fa");
         name = substr($1, 2); seq = ""; next }
  { seq = seq $0 }
  END { if (name != "" && length(seq) <= max) print ">" name "\n" seq > (dir "/" name ".fa") }
' "$refs/cameo2022_seqres.fasta"
for fa in "$tmp"/*.fa; do
  name=$(basename "$fa" .fa)
  jackhmmer -o /dev/null -A "$tmp/$name.sto" --noali --F1 0.0005 --F2 0.00005 --F3 0.0000005 \
    --incE 1e-4 -E 1e-4 --cpu 1 -N 1 "$fa" "$db"
  depth=$(grep -v '^#' "$tmp/$name.sto" | awk 'NF == 2 && $1 != "//" { print $1 }' | sort -u | wc -l)
  echo "$name $(sed -n 2p "$fa" | tr -d '\n' | wc -c) $depth"
done | sort -k2,2n
