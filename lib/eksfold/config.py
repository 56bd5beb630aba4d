"""Run configuration: small dataclasses with JSON round-trip, stored in the run manifest.

Database paths and presets are defined once here and in the model back ends (:mod:`eksfold.models`); the worker reads
them back from the manifest, so a unit's command line names only the run root, stage and target.
"""
from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass, field

from .contracts import DEFAULT_PRESET, DEFAULT_WEIGHTS
from .errors import ConfigError


@dataclass
class DatabaseConfig:
    """Sequence databases for the alignment stage; None means not configured.

    The fields are the ``role`` of the databases in the catalogue
    (:data:`eksfold.data.databases.DATABASES`). Each maps to the file name OpenFold expects in
    a target's alignment folder: uniref90 -> uniref90_hits.sto, mgnify -> mgnify_hits.sto,
    small_bfd -> small_bfd_hits.sto (jackhmmer, FASTA databases); bfd (+ uniclust30) ->
    bfd_uniclust_hits.a3m (hhblits, HH-suite database prefixes); pdb70 -> pdb70_hits.hhr
    (hhsearch); pdb_seqres -> hmm_output.sto (hmmsearch). Templates (eksfold.templates) also
    need the mmCIF folder and, optionally, the PDB's obsolete-entry list. uniprot ->
    uniprot_hits.sto (jackhmmer; FASTA with UniProt headers, ``tr|ACC|NAME_SPECIES``), or
    uniprot_hits.a3m in MMseqs2 mode (its MMseqs2 database ``<dir>/mmseqs/<stem>``): searched
    only for the protein chains of heteromeric complexes of a family that pairs MSAs by species
    (OpenFold3), never part of the unpaired MSAs. rfam -> rfam_hits.a3m (nhmmer; an RNA
    FASTA): searched only for the RNA chains of complexes of a family that reads RNA MSAs
    (OpenFold3), cached under its own key (:mod:`eksfold.alignment.rna`).
    """

    uniref90: str | None = None
    mgnify: str | None = None
    small_bfd: str | None = None
    bfd: str | None = None
    uniclust30: str | None = None
    pdb70: str | None = None
    # templates (eksfold.templates): the hmmsearch database, the structures, obsolete.dat
    pdb_seqres: str | None = None
    template_mmcif_dir: str | None = None
    obsolete_pdbs: str | None = None
    # species pairing of complexes (AlphaFold-Multimer's and OpenFold3's uniprot_hits)
    uniprot: str | None = None
    # RNA chains of complexes (OpenFold3's rfam_hits): nhmmer, as AlphaFold3 searches Rfam
    rfam: str | None = None

    def configured(self) -> dict[str, str]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v}


@dataclass
class TemplateConfig:
    """Template search and featurisation (:mod:`eksfold.templates`), OpenFold's options."""

    enabled: str = "auto"       # auto: on for presets trained with templates when template
    #                             databases are configured | on | off
    # auto: the preset's family's route (OpenFold: hhsearch, OpenFold3: hmmsearch), fixed when
    # the run is created | hhsearch (PDB70: AF2 monomer presets) | hmmsearch (pdb_seqres)
    search: str = "auto"
    # OpenFold's run_pretrained_openfold.py defaults --max_template_date to today; the date is
    # fixed when the run is created and kept in its manifest, so reruns use the same one
    max_template_date: str = field(default_factory=lambda: datetime.date.today().isoformat())
    release_dates: str | None = None    # OpenFold's --release_dates_path (JSON), optional
    kalign: str = "kalign"              # realigns a hit whose sequence differs from its mmCIF


@dataclass
class AlignConfig:
    """Alignment tool settings (AlphaFold2's published jackhmmer/hhblits options by default)."""

    cpus: int = 2
    jackhmmer_iterations: int = 1
    evalue: float = 1e-4
    uniref90_max_hits: int = 10000
    mgnify_max_hits: int = 501
    uniprot_max_hits: int = 50000     # AlphaFold-Multimer's; OpenFold3 reads up to 50,000
    hhblits_iterations: int = 3
    # Reuse OpenFold's precomputed alignments (s3://openfold/pdb/<chain>/) when they exist for
    # the target's PDB chain and their query row is the target's sequence.
    use_precomputed: bool = False
    precomputed_source: str | None = None   # base URI or directory; None = the public bucket
    msa_mode: str = "jackhmmer"              # "jackhmmer" (+hhblits) | "mmseqs2"
    mmseqs_db: str | None = None             # MMseqs2 database (mode mmseqs2)
    mmseqs_layout: str = "plain"             # "plain" | "colabfold"
    mmseqs_sensitivity: float = 8.0          # ColabFold's defaults
    mmseqs_iterations: int = 3
    mmseqs_max_seqs: int = 10000
    # queries per MMseqs2 search in one warm worker (local executor); a Kubernetes shard is
    # one search whatever its size. MMseqs2's per-search cost is shared by the batch.
    mmseqs_batch: int = 64
    cache: str | None = None                 # MSA cache root (directory, /fsx path or s3://)


@dataclass
class InferConfig:
    """Model settings for the inference stage."""

    preset: str = DEFAULT_PRESET
    # "random" / "random:SEED" (untrained, labelled as such), a .pt/.npz path, an s3:// URI, or a
    # published name such as "finetuning_ptm_2" (resolved by eksfold.data.weights).
    weights: str = DEFAULT_WEIGHTS
    device: str = "auto"          # "auto" | "cpu" | "cuda" | "cuda:N"
    seed: int = 0
    warmup: str = "auto"          # "auto" (on CUDA only) | "on" | "off"
    threads: int | None = None    # torch intra-op threads on CPU; None = unit's CPU share
    settings: str = "auto"        # memory/speed setting ("auto": chosen per target and budget)


@dataclass
class RelaxConfig:
    """Amber relaxation of the predicted model (the optional ``relax`` stage)."""

    enabled: bool = False
    stiffness: float = 10.0       # kcal/mol/A^2, OpenFold's default restraint
    tolerance: float = 2.39       # kcal/mol
    max_iterations: int = 0       # 0: until converged
    max_outer_iterations: int = 20
    max_attempts: int = 5         # tries per round before "did not converge"
    platform: str = "auto"        # OpenMM: auto (CUDA when there is a GPU), CPU, CUDA, Reference
    timeout_s: float = 900.0      # wall-time limit per unit


@dataclass
class ScoreConfig:
    """Accuracy against reference structures (the optional ``score`` stage)."""

    references: str | None = None   # folder of <pdb>.<chain>.pdb; None: no score stage


@dataclass
class RunConfig:
    """Everything a run needs besides its targets."""

    databases: DatabaseConfig = field(default_factory=DatabaseConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    infer: InferConfig = field(default_factory=InferConfig)
    relax: RelaxConfig = field(default_factory=RelaxConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    templates: TemplateConfig = field(default_factory=TemplateConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        try:
            return cls(databases=DatabaseConfig(**data.get("databases", {})),
                       align=AlignConfig(**data.get("align", {})),
                       infer=InferConfig(**data.get("infer", {})),
                       relax=RelaxConfig(**data.get("relax", {})),
                       score=ScoreConfig(**data.get("score", {})),
                       templates=TemplateConfig(**data.get("templates", {})))
        except TypeError as exc:
            raise ConfigError(f"invalid run configuration: {exc}") from exc


def default_databases() -> DatabaseConfig:
    """The installation's default jackhmmer database (see :func:`eksfold.site.default_database`),
    or an empty configuration when there is none (the align stage then says how to get one)."""
    from .site import default_database, default_rfam_db

    from .templates.settings import default_template_databases

    db = default_database()
    # the same stand-in is the default uniprot database: its headers are UniProt's (species)
    dbs = DatabaseConfig(uniref90=str(db), uniprot=str(db)) if db else DatabaseConfig()
    rfam = default_rfam_db()   # the Rfam seed stand-in: RNA chains' MSAs (OpenFold3)
    if db and rfam:
        dbs = dataclasses.replace(dbs, rfam=str(rfam))
    return dataclasses.replace(dbs, **default_template_databases())   # templates hook (#20)
