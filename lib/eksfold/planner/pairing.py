"""The UniProt search for species pairing in a heteromer's align unit (align time only).

A family that pairs MSAs (OpenFold3) searches UniProt once per distinct protein chain of a
heteromer, after that chain's own MSA, in the same align unit (:mod:`eksfold.stages.align`).
Its cost is priced as a measured ratio of the chain's own search: ``bench pairing`` runs both
searches of each query with the align stage's settings against the same stand-in database and
commits ``profiles/<machine>/pairing.csv``; the ratio is the UniProt search's CPU seconds over
the MSA's, summed over the queries of the mode. A heteromer's align unit gains
``ratio * align(chain length)`` per distinct protein chain. Stated assumption: UniProt is
searched at the cost the MSA databases are (the real UniProt, ~250 M sequences, is larger
than UniRef90; the stand-in is one database for both).

The planner's simulators cost a target by its length (token count for OpenFold3), so the
extra seconds are given per length: the mean over the targets of that length, which keeps
every length's total exact.
"""
from __future__ import annotations

import csv

PROFILE = "cpu-2core"


def pairing_ratio(msa_mode: str, profile: str = PROFILE) -> tuple[float, str]:
    """(UniProt search CPU / chain MSA CPU, source) for ``msa_mode`` from ``pairing.csv``."""
    from .costs import _profile_file

    path = _profile_file(profile, "pairing.csv")
    rows = [r for r in csv.DictReader(path.open()) if r["mode"] == msa_mode]
    msa = sum(float(r["msa_cpu_s"]) for r in rows)
    if not rows or msa <= 0:
        from ..errors import ConfigError
        raise ConfigError(f"profiles/{profile}/pairing.csv has no {msa_mode} rows: run "
                          "`eksfold bench pairing --csv ...`")
    ratio = sum(float(r["uniprot_cpu_s"]) for r in rows) / msa
    return ratio, (f"align: + UniProt search of heteromer chains for pairing, {ratio:.2f}x the "
                   f"chain's own {msa_mode} search (measured, profiles/{profile}/pairing.csv)")


def heteromer_chains(targets, limit=None, preset: str | None = None) -> dict[str, list[int]]:
    """Target id -> lengths of its distinct protein chains, for the heteromers a pairing
    preset's run searches UniProt for (empty for other presets or for bare lengths)."""
    from pathlib import Path

    if preset is None or not isinstance(targets, (str, Path, list, tuple)):
        return {}
    from ..alignment.pairing import protein_entities, skip_reason
    from ..models import get_backend

    backend = get_backend(preset)
    if not backend.inputs().paired_msas:
        return {}
    if isinstance(targets, (str, Path)):
        from ..pipeline import load_targets_for_run

        targets, _, _ = load_targets_for_run(targets, limit=limit, backend=backend)
    return {t.id: [len(c["sequence"]) for c in protein_entities(t.complex)]
            for t in targets if getattr(t, "complex", None) is not None
            and skip_reason(t.complex) is None}


def with_pairing_search(costs, chains: dict[str, list[int]], lengths: dict[str, int],
                        msa_mode: str, profile: str = PROFILE):
    """``costs`` whose align units of the heteromers in ``chains`` include their UniProt
    searches (unchanged without heteromers). Returns (costs, note or None)."""
    chains = {tid: c for tid, c in chains.items() if tid in lengths and c}
    if not chains:
        return costs, None
    ratio, source = pairing_ratio(msa_mode, profile)
    base = costs.curves["align"]
    by_length: dict[int, list[float]] = {}
    for tid, length in lengths.items():
        extra = ratio * sum(base(n) for n in chains.get(tid, ()))
        by_length.setdefault(length, []).append(extra)
    extra_at = {n: sum(v) / len(v) for n, v in by_length.items()}

    def align(length: float) -> float:
        return base(length) + extra_at.get(length, 0.0)
    costs.curves["align"] = align
    costs.sources.append(source)
    total = sum(ratio * sum(base(n) for n in c) for c in chains.values())
    return costs, (f"align time includes the UniProt search for pairing of {len(chains)} "
                   f"heteromer(s): {total:.1f} s in all ({ratio:.2f}x each chain's own search)")
