#!/usr/bin/env bash
# Build a small real HH-suite database (the format of BFD / UniRef30) from the first N
# sequences of the small UniProt FASTA, for hhblits in the tests. Each entry is a
# single-sequence A3M (a plain FASTA record is valid A3M), profiled with hhmake and translated
# to the cs219 alphabet with cstranslate, as HH-suite's "build your own database" recipe does.
set -euo pipefail
fasta=${1:-data/db/uniprot20k.fasta}
dest=${2:-data/db/hhsuite}
n=${3:-300}
name=uniprot${n}
[ -s "$dest/${name}_cs219.ffdata" ] && { echo "$dest/$name: present"; exit 0; }
mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
awk -v n="$n" '/^>/{k++} k<=n' "$fasta" > "$tmp/seqs.fasta"
ffindex_from_fasta -s "$tmp/${name}_a3m.ffdata" "$tmp/${name}_a3m.ffindex" "$tmp/seqs.fasta" >/dev/null
ffindex_apply "$tmp/${name}_a3m.ffdata" "$tmp/${name}_a3m.ffindex" \
  -i "$tmp/${name}_hhm.ffindex" -d "$tmp/${name}_hhm.ffdata" -- hhmake -i stdin -o stdout -v 0 >/dev/null
# Debian's cstranslate wrapper is broken: call the binary for this CPU directly.
cs=/usr/libexec/hhsuite/cstranslate-plain
for isa in avx2 sse3; do
  if grep -qw "$isa" /proc/cpuinfo && [ -x "/usr/libexec/hhsuite/cstranslate-$isa" ]; then
    cs=/usr/libexec/hhsuite/cstranslate-$isa; break; fi
done
"$cs" -f -x 0.3 -c 4 -I a3m -b -i "$tmp/${name}_a3m" -o "$tmp/${name}_cs219" \
  -A /usr/share/hhsuite/data/cs219.lib -D /usr/share/hhsuite/data/context_data.lib >/dev/null
mv "$tmp"/${name}_* "$dest/"
echo "$dest/$name: $n sequences"
