#!/usr/bin/env bash
# Download the sequence databases and the OpenFold weights into the shared volume.
#
#   prepare-data.sh reduced|full|colabfold [ROOT]        ROOT defaults to /fsx
#
# Runs in the eksfold-worker image (aria2c, rsync, pigz, python3 + boto3) as the Job in
# data-prep/job.yaml. Layout, as eksfold expects it (docs/DESIGN.md):
#   ROOT/db/uniref90/uniref90.fasta            ROOT/db/mgnify/mgy_clusters_2022_05.fa
#   ROOT/db/pdb70/pdb70_*                      ROOT/db/pdb_mmcif/{mmcif_files/,obsolete.dat}
#   ROOT/db/pdb_seqres/pdb_seqres.txt          (templates: pdb70 for hhsearch, pdb_seqres for
#                                               hmmsearch, pdb_mmcif for the structures)
#   ROOT/db/small_bfd/bfd-first_non_consensus_sequences.fasta            (reduced)
#   ROOT/db/bfd/bfd_metaclust_*  ROOT/db/uniref30/UniRef30_2021_03_*     (full)
#   ROOT/db/uniprot/uniprot.fasta   (full, colabfold: species pairing of complexes; colabfold
#                                    also ROOT/db/uniprot/mmseqs/uniprot, its MMseqs2 database)
#   ROOT/weights/openfold/*.pt   (s3://openfold/openfold_params/, public bucket, unsigned)
#
# Sizes, from the AlphaFold README (google-deepmind/alphafold, "Genetic databases"), which
# lists the same sources: full set ~490 GB to download, ~2.5 TB unpacked (AlphaFold's totals
# with the multimer extras: 556 GB, 2.62 TB; bfd alone 1.8 TB); reduced set (small_bfd instead
# of bfd + uniref30) ~175 GB download, ~0.5 TB unpacked (AlphaFold asks for 600 GB of disk for
# reduced_dbs). See cluster/README.md for times.
#
# Idempotent: every item ends by touching ROOT/db/<item>/.done and is skipped on a rerun (a Job
# retry resumes where it stopped; aria2c continues partial downloads).
set -euo pipefail

preset=${1:?usage: prepare-data.sh reduced|full|colabfold [ROOT]}
root=${2:-/fsx}
case "$preset" in reduced|full|colabfold) ;;
  *) echo "preset must be reduced, full or colabfold, not '$preset'" >&2; exit 2;; esac

db=$root/db
mkdir -p "$db" "$root/weights" "$root/runs"
log() { echo "[$(date -u +%FT%TZ)] $*"; }

# fetch ITEM URL: download URL into db/ITEM and unpack it there (.gz or .tar.gz).
fetch() {
  local item=$1 url=$2 dir=$db/$1 file
  file=$(basename "$url")
  if [ -e "$dir/.done" ]; then log "$item: present"; return; fi
  mkdir -p "$dir"
  log "$item: downloading $url"
  aria2c --continue=true --max-connection-per-server=8 --split=8 --summary-interval=300 \
    --dir="$dir" --out="$file" "$url"
  log "$item: unpacking $file"
  case "$file" in   # pigz -d removes the .gz; a plain file (pdb_seqres.txt) stays as it is
    *.tar.gz) tar --use-compress-program=pigz -xf "$dir/$file" -C "$dir" && rm -f "$dir/$file" ;;
    *.gz) pigz -d -f "$dir/$file" ;;
  esac
  touch "$dir/.done"
  log "$item: done ($(du -sh "$dir" | cut -f1))"
}

pdb_mmcif() {
  local dir=$db/pdb_mmcif
  if [ -e "$dir/.done" ]; then log "pdb_mmcif: present"; return; fi
  mkdir -p "$dir/raw" "$dir/mmcif_files"
  log "pdb_mmcif: rsync from the RCSB mirror (about 200,000 files)"
  rsync --recursive --links --perms --times --compress --info=progress2 --delete --port=33444 \
    rsync.rcsb.org::ftp_data/structures/divided/mmCIF/ "$dir/raw"
  log "pdb_mmcif: flattening and unpacking"
  find "$dir/raw" -type f -name '*.cif.gz' -exec mv -t "$dir/mmcif_files" {} +
  find "$dir/mmcif_files" -name '*.cif.gz' -print0 | xargs -0 -r -n 500 -P "$(nproc)" gunzip -f
  rm -rf "$dir/raw"
  aria2c --continue=true --dir="$dir" --out=obsolete.dat \
    https://files.wwpdb.org/pub/pdb/data/status/obsolete.dat
  touch "$dir/.done"
  log "pdb_mmcif: done ($(du -sh "$dir" | cut -f1))"
}

weights() {
  local dir=$root/weights/openfold
  if [ -e "$dir/.done" ]; then log "weights: present"; return; fi
  mkdir -p "$dir"
  log "weights: s3://openfold/openfold_params/ (public, unsigned)"
  python3 - "$dir" <<'PY'
import sys, pathlib, boto3
from botocore import UNSIGNED
from botocore.config import Config
out = pathlib.Path(sys.argv[1])
s3 = boto3.client("s3", region_name="us-east-1", config=Config(signature_version=UNSIGNED))
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="openfold", Prefix="openfold_params/"):
    for obj in page.get("Contents", []):
        name = obj["Key"].rsplit("/", 1)[-1]
        if name and not (out / name).exists():
            print("  ", name, obj["Size"] // 2**20, "MiB", flush=True)
            s3.download_file("openfold", obj["Key"], str(out / (name + ".part")))
            (out / (name + ".part")).rename(out / name)
PY
  touch "$dir/.done"
}

# colabfold ITEM NAME: ColabFold's MMseqs2 databases (what colabfold_search reads): unpack the
# exprofile TSVs into an expandable MMseqs2 database, then index it (createindex; the GPU
# padded copy needs MMseqs2 >= 16: set MMSEQS_GPU=1 in an image that has it).
colabfold() {
  local item=$1 name=$2 dir=$db/$1
  if [ -e "$dir/.indexed" ]; then log "$item: present"; return; fi
  fetch "$item" "https://wwwuser.gwdg.de/~compbiol/colabfold/$name.tar.gz"
  cd "$dir"
  mmseqs tsv2exprofiledb "$name" "${name}_db"
  python3 -m eksfold.alignment.mmseqs_db index "${name}_db" colabfold "$dir/tmp" ${MMSEQS_GPU:+--gpu}
  rm -rf "$dir/tmp"
  touch "$dir/.indexed"
  cd - >/dev/null
}

# uniprot: TrEMBL then Swiss-Prot in one FASTA (as AlphaFold's download_uniprot.sh makes it),
# the uniprot role for species pairing of complexes (~53 GB download, ~105 GB); in MMseqs2 mode
# also its MMseqs2 database, where the align stage looks for it (uniprot/mmseqs/uniprot).
uniprot() {
  local dir=$db/uniprot
  local ftp=https://ftp.ebi.ac.uk/pub/databases/uniprot/current_release/knowledgebase/complete
  if [ ! -e "$dir/.done" ]; then
    mkdir -p "$dir"
    for file in uniprot_trembl.fasta.gz uniprot_sprot.fasta.gz; do
      part=${file%.fasta.gz}
      [ -e "$dir/$part.fasta" ] && continue
      log "uniprot: downloading $part.fasta.gz"
      aria2c --continue=true --max-connection-per-server=8 --split=8 --summary-interval=300 \
        --dir="$dir" --out="$part.fasta.gz" "$ftp/$part.fasta.gz"
      pigz -d -f "$dir/$part.fasta.gz"
    done
    cat "$dir/uniprot_trembl.fasta" "$dir/uniprot_sprot.fasta" > "$dir/.uniprot.fasta.tmp"
    mv "$dir/.uniprot.fasta.tmp" "$dir/uniprot.fasta"
    rm -f "$dir/uniprot_trembl.fasta" "$dir/uniprot_sprot.fasta"
    touch "$dir/.done"
  fi
  if [ "$preset" = colabfold ]; then   # skipped when built
    python3 -m eksfold.alignment.mmseqs_db createdb "$dir/uniprot.fasta" "$dir/mmseqs/uniprot"
  fi
  log "uniprot: done ($(du -sh "$dir" | cut -f1))"
}

GCS=https://storage.googleapis.com/alphafold-databases
weights
if [ "$preset" = colabfold ]; then
  colabfold colabfold_uniref30 uniref30_2302
  colabfold colabfold_envdb colabfold_envdb_202108
  uniprot
  pdb_mmcif
  log "all done: $(du -sh "$db" | cut -f1) in $db"
  exit 0
fi
fetch uniref90 https://ftp.ebi.ac.uk/pub/databases/uniprot/uniref/uniref90/uniref90.fasta.gz
fetch mgnify "$GCS/v2.3/mgy_clusters_2022_05.fa.gz"
fetch pdb70 https://wwwuser.gwdg.de/~compbiol/data/hhsuite/databases/hhsuite_dbs/old-releases/pdb70_from_mmcif_200401.tar.gz
fetch pdb_seqres https://files.wwpdb.org/pub/pdb/derived_data/pdb_seqres.txt
pdb_mmcif
if [ "$preset" = reduced ]; then
  fetch small_bfd "$GCS/reduced_dbs/bfd-first_non_consensus_sequences.fasta.gz"
else
  fetch bfd "$GCS/casp14_versions/bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt.tar.gz"
  fetch uniref30 "$GCS/v2.3/UniRef30_2021_03.tar.gz"
  uniprot
fi
log "all done: $(du -sh "$db" | cut -f1) in $db"
