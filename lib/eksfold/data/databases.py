"""The sequence databases each alignment mode needs, and the step that downloads and unpacks them.

The manifest follows AlphaFold's ``scripts/download_*.sh`` (the sources OpenFold uses too);
sizes are approximate, from AlphaFold's README ("Genetic databases", v2.3 and CASP14 versions).

========== ======================================================= ==========
mode       databases                                               download
========== ======================================================= ==========
reduced    uniref90, mgnify, small_bfd, pdb70, pdb_seqres, pdb_mmcif ~173 GB
full       uniref90, mgnify, bfd, uniref30, pdb70, pdb_seqres, ... ~541 GB
casp14     uniref90, mgnify_2018_12, bfd, uniclust30, pdb70, ...   ~435 GB
colabfold  colabfold_uniref30, colabfold_envdb, uniprot, pdb_mmcif ~276 GB
========== ======================================================= ==========

``uniprot`` (UniProtKB: TrEMBL and Swiss-Prot, concatenated as AlphaFold's
``download_uniprot.sh`` does) is the ``uniprot`` role: species pairing of complexes
(:mod:`eksfold.alignment.pairing`). It is in ``full`` (AlphaFold's full set, which multimer
needs) and ``colabfold``, where ``prepare`` also builds its MMseqs2 database
(``uniprot/mmseqs/uniprot``, about as large again) for pairing in MMseqs2 mode; any mode's
``prepare --only uniprot`` fetches it alone.

``rfam`` (AlphaFold3's Rfam 14.9 FASTA, clustered at 90 % identity / 80 % coverage, from its
``fetch_databases.sh``; zstd-compressed) is the ``rfam`` role: nhmmer MSAs of the RNA chains of
complexes (:mod:`eksfold.alignment.rna`, OpenFold3's ``rfam_hits``). Not in any mode's set
(the protein modes do not need it): ``prepare --only rfam``.

Layout under the destination (``/fsx/db`` on the cluster; the same as ``cluster/data-prep``)::

    uniref90/uniref90.fasta              mgnify/mgy_clusters_2022_05.fa
    small_bfd/bfd-first_non_consensus_sequences.fasta
    bfd/bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt_{a3m,hhm,cs219}.ff{data,index}
    uniref30/UniRef30_2021_03_*          pdb70/pdb70_*
    uniprot/uniprot.fasta                uniprot/mmseqs/uniprot (MMseqs2 mode's pairing)
    rfam/rfam_14_9_clust_seq_id_90_cov_80_rep_seq.fasta   (RNA chains' MSAs, nhmmer)
    pdb_seqres/pdb_seqres.txt            (template search: pdb70 by hhsearch, pdb_seqres by
    pdb_mmcif/mmcif_files/*.cif           hmmsearch; templates read pdb_mmcif)
    pdb_mmcif/obsolete.dat
    <db>/.done                           written last; a rerun skips that database

``mirror`` replaces the public sources by your own copy (``s3://bucket/prefix`` or a URL):
``<mirror>/<db>/<file name of the source>``, and for pdb_mmcif ``<mirror>/pdb_mmcif/mmCIF/``
(the RCSB ``divided/mmCIF`` tree of ``<id>.cif.gz``) plus ``<mirror>/pdb_mmcif/obsolete.dat``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

GCS = "https://storage.googleapis.com/alphafold-databases"
AF3_RFAM = "rfam_14_9_clust_seq_id_90_cov_80_rep_seq.fasta"
UNIPROT_FTP = "https://ftp.ebi.ac.uk/pub/databases/uniprot/current_release/knowledgebase/complete"


@dataclass(frozen=True)
class Source:
    """One file (or file tree) to download; ``unpack`` is gunzip|unzstd|untar|none|mmcif."""

    url: str
    unpack: str
    download_gb: float

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Database:
    """A sequence/structure database: where it comes from and what tools are pointed at."""

    name: str
    tool: str                   # jackhmmer | hhblits | hhsearch | templates
    path: str                   # relative to the db root: a file, an HH-suite prefix or a dir
    size_gb: float              # unpacked, approximate
    sources: tuple[Source, ...] = field(default_factory=tuple)
    note: str = ""
    role: str | None = None     # the eksfold.config.DatabaseConfig field it fills
    concat: bool = False        # the unpacked sources, in order, concatenated into ``path``

    @property
    def download_gb(self) -> float:
        return round(sum(s.download_gb for s in self.sources), 1)


DATABASES: dict[str, Database] = {db.name: db for db in (
    Database("uniref90", "jackhmmer", "uniref90/uniref90.fasta", 67, (Source(
        "https://ftp.ebi.ac.uk/pub/databases/uniprot/uniref/uniref90/uniref90.fasta.gz",
        "gunzip", 34),), "current UniProt release; changes monthly", role="uniref90"),
    Database("mgnify", "jackhmmer", "mgnify/mgy_clusters_2022_05.fa", 120, (Source(
        f"{GCS}/v2.3/mgy_clusters_2022_05.fa.gz", "gunzip", 67),), role="mgnify"),
    Database("mgnify_2018_12", "jackhmmer", "mgnify/mgy_clusters_2018_12.fa", 64, (Source(
        f"{GCS}/casp14_versions/mgy_clusters_2018_12.fa.gz", "gunzip", 32.9),),
        "the version OpenFold was trained with", role="mgnify"),
    Database("small_bfd", "jackhmmer", "small_bfd/bfd-first_non_consensus_sequences.fasta", 17,
             (Source(f"{GCS}/reduced_dbs/bfd-first_non_consensus_sequences.fasta.gz",
                     "gunzip", 9.6),), role="small_bfd"),
    Database("bfd", "hhblits", "bfd/bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt",
             1800, (Source(f"{GCS}/casp14_versions/"
                           "bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt.tar.gz",
                           "untar", 271.6),), role="bfd"),
    Database("uniref30", "hhblits", "uniref30/UniRef30_2021_03", 206, (Source(
        f"{GCS}/v2.3/UniRef30_2021_03.tar.gz", "untar", 52.5),),
        "successor of uniclust30 (AlphaFold >= 2.3)", role="uniclust30"),
    Database("uniclust30", "hhblits", "uniclust30/uniclust30_2018_08/uniclust30_2018_08", 86, (
        Source(f"{GCS}/casp14_versions/uniclust30_2018_08_hhsuite.tar.gz", "untar", 24.9),),
        "the version OpenFold was trained with", role="uniclust30"),
    Database("pdb70", "hhsearch", "pdb70/pdb70", 56, (Source(
        "https://wwwuser.gwdg.de/~compbiol/data/hhsuite/databases/hhsuite_dbs/old-releases/"
        "pdb70_from_mmcif_200401.tar.gz", "untar", 19.5),), role="pdb70"),
    Database("uniprot", "jackhmmer", "uniprot/uniprot.fasta", 105, (
        Source(f"{UNIPROT_FTP}/uniprot_trembl.fasta.gz", "gunzip", 52.9),
        Source(f"{UNIPROT_FTP}/uniprot_sprot.fasta.gz", "gunzip", 0.1)),
        "UniProtKB TrEMBL + Swiss-Prot, current release (AlphaFold's download_uniprot.sh); "
        "species pairing of complexes (--uniprot)", role="uniprot", concat=True),
    # 138,115,553 nucleotides (AlphaFold3's rfam_z_value, 138.115553 Mb): ~0.2 GB unpacked;
    # the compressed size is an estimate (zstd on nucleotide FASTA, ~4x)
    Database("rfam", "nhmmer", f"rfam/{AF3_RFAM}", 0.2, (Source(
        f"{GCS}/v3.0/{AF3_RFAM}.zst", "unzstd", 0.05),),
        "Rfam 14.9, AlphaFold3's clustered FASTA (fetch_databases.sh); MSAs of RNA chains "
        "(--rfam, OpenFold3)", role="rfam"),
    Database("pdb_seqres", "hmmsearch", "pdb_seqres/pdb_seqres.txt", 0.3, (Source(
        "https://files.wwpdb.org/pub/pdb/derived_data/pdb_seqres.txt", "none", 0.3),),
        "SEQRES of every PDB chain; hmmsearch template route (AlphaFold 2.3, OpenFold multimer)",
        role="pdb_seqres"),
    Database("pdb_mmcif", "templates", "pdb_mmcif/mmcif_files", 238, (
        Source("rsync://rsync.rcsb.org:33444/ftp_data/structures/divided/mmCIF/", "mmcif", 43),
        Source("https://files.wwpdb.org/pub/pdb/data/status/obsolete.dat", "none", 0.0)),
        "about 200,000 files; also in the public bucket s3://pdbsnapshots/<date>/pub/pdb/data/"
        "structures/divided/mmCIF/ (use it as pdb_mmcif's mirror)", role="template_mmcif_dir"),
)}

# ColabFold's MMseqs2 databases (what colabfold_search reads); the data-preparation Job turns
# the downloads into expandable MMseqs2 databases and indexes them (alignment.mmseqs_db).
# Sizes as ColabFold's setup_databases.sh documents them (approximate).
DATABASES.update({db.name: db for db in (
    Database("colabfold_uniref30", "mmseqs2", "colabfold_uniref30/uniref30_2302_db", 200, (
        Source("https://wwwuser.gwdg.de/~compbiol/colabfold/uniref30_2302.tar.gz", "untar", 70),),
        "UniRef30 cluster profiles; search with --msa mmseqs2 --mmseqs-layout colabfold"),
    Database("colabfold_envdb", "mmseqs2", "colabfold_envdb/colabfold_envdb_202108_db", 600, (
        Source("https://wwwuser.gwdg.de/~compbiol/colabfold/colabfold_envdb_202108.tar.gz",
               "untar", 110),), "ColabFold's environmental database (BFD, MGnify, metagenomes)"),
)})

MODES: dict[str, tuple[str, ...]] = {
    "reduced": ("uniref90", "mgnify", "small_bfd", "pdb70", "pdb_seqres", "pdb_mmcif"),
    "full": ("uniref90", "mgnify", "bfd", "uniref30", "pdb70", "pdb_seqres", "pdb_mmcif",
             "uniprot"),
    "casp14": ("uniref90", "mgnify_2018_12", "bfd", "uniclust30", "pdb70", "pdb_mmcif"),
    "colabfold": ("colabfold_uniref30", "colabfold_envdb", "uniprot", "pdb_mmcif"),
}


def manifest(mode: str = "reduced") -> list[Database]:
    """The databases of an alignment mode (``reduced``, ``full``, ``casp14``)."""
    if mode not in MODES:
        raise ConfigError(f"unknown database mode {mode!r}; known: {', '.join(MODES)}")
    return [DATABASES[name] for name in MODES[mode]]


def database_paths(mode: str, root: str | os.PathLike) -> dict[str, Path]:
    """What the aligners are pointed at, by database name, for a db root such as ``/fsx/db``."""
    return {db.name: Path(root) / db.path for db in manifest(mode)}


def database_config(mode: str, root: str | os.PathLike):
    """An :class:`eksfold.config.DatabaseConfig` for ``mode`` under ``root``: each database
    fills the field its ``role`` names; pdb_mmcif also brings its obsolete.dat (templates)."""
    from ..config import DatabaseConfig
    fields = {db.role: str(Path(root) / db.path) for db in manifest(mode) if db.role}
    if "template_mmcif_dir" in fields:
        fields["obsolete_pdbs"] = str(Path(root) / "pdb_mmcif" / "obsolete.dat")
    return DatabaseConfig(**fields)


def describe(mode: str = "reduced") -> str:
    """A table of a mode's databases: name, tool, download and unpacked sizes."""
    rows = [f"{'database':<16}{'tool':<11}{'download':>10}{'unpacked':>10}  path"]
    for db in manifest(mode):
        rows.append(f"{db.name:<16}{db.tool:<11}{db.download_gb:>8.1f}GB{db.size_gb:>8.0f}GB  {db.path}")
    dl = sum(db.download_gb for db in manifest(mode))
    size = sum(db.size_gb for db in manifest(mode))
    rows.append(f"{'total':<27}{dl:>8.1f}GB{size:>8.0f}GB")
    return "\n".join(rows)

