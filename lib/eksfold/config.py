"""Run configuration: small dataclasses with JSON round-trip, stored in the run manifest.

Database paths and presets are defined once here and in :mod:`eksfold.presets`; the worker reads
them back from the manifest, so a unit's command line names only the run root, stage and target.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError


@dataclass
class DatabaseConfig:
    """Sequence databases for the alignment stage; None means not configured.

    Each maps to the file name OpenFold expects in a target's alignment folder:
    uniref90 -> uniref90_hits.sto, mgnify -> mgnify_hits.sto (jackhmmer, FASTA databases);
    bfd (+ uniclust30) -> bfd_uniclust_hits.a3m (hhblits, HH-suite database prefixes);
    pdb70 -> pdb70_hits.hhr (hhsearch; template hits are recorded, templates need mmCIF files).
    """

    uniref90: str | None = None
    mgnify: str | None = None
    bfd: str | None = None
    uniclust30: str | None = None
    pdb70: str | None = None

    def configured(self) -> dict[str, str]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v}


@dataclass
class AlignConfig:
    """Alignment tool settings (AlphaFold2's published jackhmmer/hhblits options by default)."""

    cpus: int = 2
    jackhmmer_iterations: int = 1
    evalue: float = 1e-4
    uniref90_max_hits: int = 10000
    mgnify_max_hits: int = 501
    hhblits_iterations: int = 3
    # Reuse OpenFold's precomputed alignments (s3://openfold/pdb/<chain>/) when they exist for
    # the target's PDB chain and their query row is the target's sequence.
    use_precomputed: bool = False
    precomputed_source: str | None = None   # base URI or directory; None = the public bucket


@dataclass
class InferConfig:
    """Model settings for the inference stage."""

    preset: str = "model_1_ptm"
    # "random" / "random:SEED" (untrained, labelled as such), a .pt/.npz path, an s3:// URI, or a
    # published name such as "finetuning_ptm_2" (resolved by eksfold.data.weights).
    weights: str = "random"
    device: str = "auto"          # "auto" | "cpu" | "cuda" | "cuda:N"
    seed: int = 0
    warmup: str = "auto"          # "auto" (on CUDA only) | "on" | "off"
    threads: int | None = None    # torch intra-op threads on CPU; None = unit's CPU share


@dataclass
class RunConfig:
    """Everything a run needs besides its targets."""

    databases: DatabaseConfig = field(default_factory=DatabaseConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    infer: InferConfig = field(default_factory=InferConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        try:
            return cls(databases=DatabaseConfig(**data.get("databases", {})),
                       align=AlignConfig(**data.get("align", {})),
                       infer=InferConfig(**data.get("infer", {})))
        except TypeError as exc:
            raise ConfigError(f"invalid run configuration: {exc}") from exc


def default_databases(project_dir: str | Path | None = None) -> DatabaseConfig:
    """The small real database `make setup` builds (20,000 UniProt sequences) as uniref90."""
    base = Path(project_dir) if project_dir else Path.cwd()
    db = base / "data" / "db" / "uniprot20k.fasta"
    return DatabaseConfig(uniref90=str(db.resolve())) if db.exists() else DatabaseConfig()
