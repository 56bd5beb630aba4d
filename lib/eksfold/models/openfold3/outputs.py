"""What one OpenFold3 query wrote, verified and ranked (either environment: gemmi, numpy).

OpenFold3 exits 0 and writes nothing for a query whose prediction failed (FACTS), so a query
counts as done only when every (seed, diffusion sample) it asked for has a structure that
parses with atoms at finite coordinates, full confidence arrays of consistent shapes (pLDDT
per atom; PAE and PDE token x token) and aggregated scores (pTM, ipTM, per-chain pTM,
per-chain-pair ipTM, OpenFold3's sample ranking score). Layout read (OpenFold3 0.5 writer):
``<out>/<query>/seed_<s>/<query>_seed_<s>_sample_<k>_{model.cif, confidences.npz,
confidences_aggregated.json}``.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

RANKING_FILE = "ranking.json"
AGGREGATE_KEYS = ("avg_plddt", "ptm", "iptm", "sample_ranking_score", "chain_ptm",
                  "chain_pair_iptm", "has_clash")


class OutputError(Exception):
    """A query's outputs are missing or do not parse; the message names the file."""


@dataclass
class Sample:
    """One (seed, diffusion sample): file paths relative to the output directory."""

    seed: int
    sample: int
    structure: str
    confidences: str
    aggregated: str
    atoms: int
    tokens: int
    chains: list[str]
    scores: dict = field(default_factory=dict)


def _prefix(out_dir: Path, query: str, seed: int, sample: int) -> Path:
    return out_dir / query / f"seed_{seed}" / f"{query}_seed_{seed}_sample_{sample}"


def check_sample(out_dir: str | Path, query: str, seed: int, sample: int) -> Sample:
    """Parse one sample's three files; :class:`OutputError` names what is wrong."""
    import gemmi
    import numpy as np

    out_dir = Path(out_dir)
    prefix = _prefix(out_dir, query, seed, sample)
    cif = Path(f"{prefix}_model.cif")
    npz = Path(f"{prefix}_confidences.npz")
    agg = Path(f"{prefix}_confidences_aggregated.json")
    for path in (cif, npz, agg):
        if not path.is_file() or path.stat().st_size == 0:
            raise OutputError(f"query {query!r} seed {seed} sample {sample}: {path.name} "
                              "missing or empty")
    try:
        structure = gemmi.read_structure(str(cif))
    except (RuntimeError, ValueError) as exc:
        raise OutputError(f"{cif.name}: does not parse as mmCIF: {exc}") from exc
    if len(structure) == 0:
        raise OutputError(f"{cif.name}: no model")
    coords = [a.pos for ch in structure[0] for res in ch for a in res]
    if not coords or not all(math.isfinite(p.x + p.y + p.z) for p in coords):
        raise OutputError(f"{cif.name}: no atoms, or coordinates that are not finite")
    chains = [ch.name for ch in structure[0]]
    with np.load(npz) as data:
        missing = {"plddt", "pae", "pde"} - set(data.files)
        if missing:
            raise OutputError(f"{npz.name}: lacks {', '.join(sorted(missing))}")
        plddt, pae, pde = data["plddt"], data["pae"], data["pde"]
    if plddt.shape != (len(coords),):
        raise OutputError(f"{npz.name}: pLDDT has shape {plddt.shape}, the structure "
                          f"{len(coords)} atoms")
    if pae.ndim != 2 or pae.shape[0] != pae.shape[1] or pde.shape != pae.shape:
        raise OutputError(f"{npz.name}: PAE {pae.shape} / PDE {pde.shape} not square and equal")
    for name, arr in (("pLDDT", plddt), ("PAE", pae), ("PDE", pde)):
        if not np.isfinite(arr).all():
            raise OutputError(f"{npz.name}: {name} has values that are not finite")
    try:
        scores = json.loads(agg.read_text())
    except ValueError as exc:
        raise OutputError(f"{agg.name}: not JSON: {exc}") from exc
    missing = [k for k in AGGREGATE_KEYS if k not in scores]
    if missing:
        raise OutputError(f"{agg.name}: lacks {', '.join(missing)}")
    # Paths relative to the output directory, so a ranking stays true when a run is copied.
    cif, npz, agg = (str(p.relative_to(out_dir)) for p in (cif, npz, agg))
    return Sample(seed, sample, cif, npz, agg, len(coords), int(pae.shape[0]),
                  chains, {k: scores[k] for k in AGGREGATE_KEYS})


def collect(out_dir: str | Path, query: str, seeds: list[int], samples: int) -> list[Sample]:
    """Every (seed, sample) checked; raises :class:`OutputError` at the first failure."""
    return [check_sample(out_dir, query, seed, k) for seed in seeds
            for k in range(1, samples + 1)]


def rank(samples: list[Sample]) -> list[dict]:
    """All samples, best first by OpenFold3's own ranking score (ties: seed, sample)."""
    ordered = sorted(samples, key=lambda s: (-float(s.scores["sample_ranking_score"]),
                                             s.seed, s.sample))
    return [{"rank": i, **asdict(s)} for i, s in enumerate(ordered, 1)]


def write_ranking(out_dir: str | Path, query: str, samples: list[Sample],
                  extra: dict | None = None) -> Path:
    """``<out>/<query>/ranking.json``, written last: its presence marks the query done."""
    path = Path(out_dir) / query / RANKING_FILE
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps({"query": query, **(extra or {}), "samples": rank(samples)},
                              indent=1) + "\n")
    tmp.replace(path)
    return path
