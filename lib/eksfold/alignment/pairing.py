"""Species pairing of complexes: when the align stage searches UniProt, and why not.

A family whose :class:`~eksfold.models.base.AlignInputs` has ``paired_msas`` (OpenFold3) pairs
the rows of its chains' MSAs itself, by species, from per-chain files named
``uniprot_hits.*`` whose row names are UniProt's (``tr|ACC|NAME_SPECIES/start-end``: OpenFold3's
``process_msa_pairing_metadata`` takes ``SPECIES``), as AlphaFold-Multimer does. The align stage
gives it one: jackhmmer of each distinct protein chain against the ``uniprot`` database role
(:class:`~eksfold.config.DatabaseConfig`), cached per chain sequence like the other MSAs.

OpenFold3 pairs only heteromers: a monomer or a homomer (one distinct protein chain, however
many copies) gets no paired rows (``find_monomer_homomer``), so it gets no UniProt search either.

:func:`plan` decides once per run (the stage and the pipeline ask it); :func:`skip_reason`
per complex. Every complex's align record says whether it was paired and, if not, why.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

UNIPROT_HITS = "uniprot_hits.sto"
ROLE = "uniprot"


@dataclass(frozen=True)
class PairingPlan:
    """``active``: search UniProt for heteromers; ``reason``: why not (None when active)."""

    wanted: bool            # the family pairs MSAs (AlignInputs.paired_msas)
    active: bool
    reason: str | None = None


def plan(config) -> PairingPlan:
    """The run's pairing: a family that pairs, jackhmmer mode and a ``uniprot`` database.

    Raises :class:`~eksfold.errors.ConfigError` for a configured uniprot database that is not
    a file (a typo must not turn into silently unpaired complexes)."""
    from ..models import get_backend

    wanted = bool(get_backend(config.infer.preset).inputs().paired_msas)
    if not wanted:
        return PairingPlan(False, False, f"preset {config.infer.preset} does not pair MSAs")
    database = config.databases.uniprot
    if database and not Path(database).is_file():
        raise ConfigError(f"uniprot database {database} not found: pass --uniprot FASTA (UniProt "
                          "headers, for species-paired MSAs of complexes), or leave it out to "
                          "fold complexes with unpaired MSAs")
    if config.align.msa_mode != "jackhmmer":
        return PairingPlan(True, False, f"MSA mode {config.align.msa_mode}: no species pairing "
                                        "(unpaired MSAs; docs/DESIGN.md, OpenFold3 back end)")
    if not database:
        return PairingPlan(True, False, "no uniprot database configured (--uniprot): unpaired "
                                        "MSAs")
    return PairingPlan(True, True)


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


__all__ = ["UNIPROT_HITS", "ROLE", "PairingPlan", "plan", "databases_for", "protein_entities",
           "skip_reason"]
