#!/usr/bin/env bash
# Candidates for the demo set among the CAMEO-2022 targets that have reference structures
# (shared/data/cameo2022_refs), per target of at most MAX residues:
#   <pdb>.<chain> <length> <depth> <submission date> <earlier homologues>
# - depth: the MSA depth jackhmmer finds in the shipped 20,000-sequence database, as the align
#   stage runs it (AlphaFold2's filters, -N 1, E 1e-4);
# - earlier homologues: the other CAMEO-2022 chains that phmmer finds (E <= 1e-3, all 183
#   against all 183) and that were RELEASED BEFORE the target's submission date, as
#   <pdb>.<chain>@<release date>: structures the stand-in template database can hold so that
#   the target has templates under a cut-off that still excludes its own structure.
# data/demo/ holds eight of those (see data/demo/README.md) and data/demo/templates/ the
# earlier homologues they use.
#   tools/pick_demo_targets.sh /work/shared/data/cameo2022_refs data/db/uniprot20k.fasta [130]
set -euo pipefail
refs=${1:?cameo2022_refs folder}; db=${2:?FASTA database}; max=${3:-130}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
phmmer --cpu 1 -E 1e-3 --tblout "$tmp/all.tbl" -o /dev/null \
  "$refs/cameo2022_seqres.fasta" "$refs/cameo2022_seqres.fasta"
# name -> submission date, release date (columns of cameo2022_targets_metadata.tsv)
awk -F'\t' 'NR > 1 { print $1, $3, $6 }' "$refs/cameo2022_targets_metadata.tsv" > "$tmp/dates"
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
  earlier=$(awk -v q="$name" '
    FNR == NR { sub_[$1] = $2; rel[$1] = $3; next }
    /^#/ { next }
    $3 == q && $1 != q && rel[$1] < sub_[q] && !seen[$1]++ { printf " %s@%s", $1, rel[$1] }
  ' "$tmp/dates" "$tmp/all.tbl")
  submitted=$(awk -v q="$name" '$1 == q { print $2 }' "$tmp/dates")
  echo "$name $(sed -n 2p "$fa" | tr -d '\n' | wc -c) $depth $submitted${earlier:- -}"
done | sort -k2,2n
