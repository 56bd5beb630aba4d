"""RNA MSAs of complexes: when the align stage searches the ``rfam`` database, and why not.

A family whose :class:`~eksfold.models.base.AlignInputs` names ``rna_msas`` (OpenFold3:
``("rfam",)``) reads an MSA for each RNA chain; the align stage searches each distinct RNA
chain (entity) once with nhmmer (:mod:`eksfold.alignment.nhmmer`, AlphaFold3's settings)
into ``chain_<id>/rfam_hits.a3m``, cached per chain sequence under the mode ``rfam-nhmmer``
and a key of that database and the search settings. DNA chains and ligands get none
(AlphaFold3 searches no DNA MSA; OpenFold3's MSA molecule types are protein and RNA).

Without an ``rfam`` database RNA chains fold single-sequence, and the align record says so;
a configured database that does not exist is a :class:`~eksfold.errors.ConfigError`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .nhmmer import RFAM_HITS

ROLE = "rfam"
MODE = "rfam-nhmmer"          # the MSA cache's mode for these entries
RECORD = "rna_msa.json"       # beside the hits: rows and cache hit, for the infer record


@dataclass(frozen=True)
class RnaPlan:
    """``wanted``: the family reads RNA MSAs; ``active``: an rfam database to search;
    ``reason``: why not (None when active)."""

    wanted: bool
    active: bool
    reason: str | None = None
    database: str | None = None


def plan(config) -> RnaPlan:
    """The run's RNA search (:class:`ConfigError` for a configured database that is missing)."""
    from ..models import get_backend

    wanted = ROLE in get_backend(config.infer.preset).inputs().rna_msas
    if not wanted:
        return RnaPlan(False, False, f"preset {config.infer.preset} reads no RNA MSAs")
    database = config.databases.rfam
    if database and not Path(database).is_file():
        raise ConfigError(f"rfam database {database} not found: pass --rfam FASTA (RNA "
                          "sequences, e.g. AlphaFold3's Rfam FASTA or the stand-in `make setup` "
                          "builds), or leave it out to fold RNA chains single-sequence")
    if not database:
        return RnaPlan(True, False, "no rfam database configured (--rfam): RNA chains fold "
                                    "single-sequence")
    return RnaPlan(True, True, database=str(database))


def databases_for(backend, databases):
    """``databases`` without the rfam role when ``backend``'s family reads no RNA MSAs."""
    import dataclasses

    if databases.rfam and ROLE not in backend.inputs().rna_msas:
        return dataclasses.replace(databases, rfam=None)
    return databases


def rna_entities(complex_: dict) -> list[dict]:
    """The RNA entities of a complex record that the align stage searches (chains that bring
    their own MSA files are left as they are)."""
    return [c for c in complex_["chains"]
            if c["molecule_type"] == "rna" and not c.get("main_msa_file_paths")]


def write_record(folder: Path, record: dict) -> None:
    (folder / RECORD).write_text(json.dumps(record) + "\n")


def read_record(folder: Path) -> dict | None:
    try:
        return json.loads((folder / RECORD).read_text())
    except (FileNotFoundError, ValueError):
        return None


__all__ = ["ROLE", "MODE", "RECORD", "RFAM_HITS", "RnaPlan", "plan", "databases_for",
           "rna_entities", "write_record", "read_record"]
