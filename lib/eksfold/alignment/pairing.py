"""Species pairing of complexes: when the align stage searches UniProt, and why not.

A family whose :class:`~eksfold.models.base.AlignInputs` has ``paired_msas`` (OpenFold3) pairs
the rows of its chains' MSAs itself, by species, from per-chain files named
``uniprot_hits.*`` whose row names are UniProt's (``tr|ACC|NAME_SPECIES/start-end``: OpenFold3's
``process_msa_pairing_metadata`` takes ``SPECIES``), as AlphaFold-Multimer does. The align stage
gives it one per distinct protein chain, searched against the ``uniprot`` database role
(:class:`~eksfold.config.DatabaseConfig`) by the run's MSA mode and cached per chain sequence
like the other MSAs: jackhmmer of the FASTA into ``uniprot_hits.sto``, or in MMseqs2 mode an
MMseqs2 search of the FASTA's MMseqs2 database into ``uniprot_hits.a3m`` with the rows renamed
as UniProt's (:mod:`eksfold.alignment.uniprot_mmseqs`).

OpenFold3 pairs only heteromers: a monomer or a homomer (one distinct protein chain, however
many copies) gets no paired rows (``find_monomer_homomer``), so it gets no UniProt search either.

:func:`plan` decides once per run (the stage and the pipeline ask it); :func:`skip_reason`
per complex. Every complex's align record says whether it was paired and, if not, why.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .uniprot_mmseqs import UNIPROT_A3M as UNIPROT_HITS_A3M   # MMseqs2 mode

UNIPROT_HITS = "uniprot_hits.sto"          # jackhmmer mode
ROLE = "uniprot"


@dataclass(frozen=True)
class PairingPlan:
    """``active``: search UniProt for heteromers; ``reason``: why not (None when active);
    ``database``: what is searched (the FASTA, or in MMseqs2 mode its MMseqs2 database)."""

    wanted: bool            # the family pairs MSAs (AlignInputs.paired_msas)
    active: bool
    reason: str | None = None
    database: str | None = None


def plan(config) -> PairingPlan:
    """The run's pairing: a family that pairs and a ``uniprot`` database (in MMseqs2 mode, with
    its MMseqs2 database built).

    Raises :class:`~eksfold.errors.ConfigError` for a configured uniprot database that is not
    a file, or in MMseqs2 mode has no MMseqs2 database (a typo or a missing build must not turn
    into silently unpaired complexes)."""
    from ..models import get_backend
    from .mmseqs import db_exists
    from .uniprot_mmseqs import database_for, expected_database

    wanted = bool(get_backend(config.infer.preset).inputs().paired_msas)
    if not wanted:
        return PairingPlan(False, False, f"preset {config.infer.preset} does not pair MSAs")
    database = config.databases.uniprot
    if database and not Path(database).is_file():
        raise ConfigError(f"uniprot database {database} not found: pass --uniprot FASTA (UniProt "
                          "headers, for species-paired MSAs of complexes), or leave it out to "
                          "fold complexes with unpaired MSAs")
    if not database:
        return PairingPlan(True, False, "no uniprot database configured (--uniprot): unpaired "
                                        "MSAs")
    mode = config.align.msa_mode
    if mode == "mmseqs2":
        prefix = database_for(database)
        if prefix is None:
            built = expected_database(database)
            raise ConfigError(
                f"uniprot database {database}: MSA mode mmseqs2 pairs complexes from its MMseqs2 "
                f"database, and there is none (no {built}.dbtype): build it with `python -m "
                f"eksfold.alignment.mmseqs_db createdb {database} {built}` (`eksfold data "
                "databases prepare` builds it with the download), pass the MMseqs2 database "
                "prefix as --uniprot, or leave --uniprot out to fold complexes unpaired")
        return PairingPlan(True, True, database=str(prefix))
    if mode != "jackhmmer":
        return PairingPlan(True, False, f"MSA mode {mode}: no species pairing")
    if db_exists(database):
        raise ConfigError(f"uniprot database {database} is an MMseqs2 database: jackhmmer mode "
                          "searches the FASTA it was made from (pass that as --uniprot)")
    return PairingPlan(True, True, database=str(database))


def databases_for(backend, databases):
    """``databases`` without the uniprot role when ``backend``'s family does not pair MSAs,
    so the run's manifest states only the databases it searches."""
    import dataclasses

    if databases.uniprot and not backend.inputs().paired_msas:
        return dataclasses.replace(databases, uniprot=None)
    return databases


def protein_entities(complex_: dict) -> list[dict]:
    """The protein entities of a complex record (``Target.complex``) that the align stage
    aligns (chains that bring their own MSA files are left as they are)."""
    return [c for c in complex_["chains"]
            if c["molecule_type"] == "protein" and not c.get("main_msa_file_paths")]


def skip_reason(complex_: dict) -> str | None:
    """Why a complex gets no UniProt search even when the run pairs, or None."""
    entities = [c for c in complex_["chains"] if c["molecule_type"] == "protein"]
    if len(entities) < 2:
        copies = sum(len(c["chain_ids"]) for c in entities)
        kind = "a homomer" if copies > 1 else "one protein chain"
        return (f"{kind}: OpenFold3 pairs MSAs only across distinct protein chains "
                "(heteromers)")
    return None


__all__ = ["UNIPROT_HITS", "UNIPROT_HITS_A3M", "ROLE", "PairingPlan", "plan", "databases_for",
           "protein_entities",
           "skip_reason"]
