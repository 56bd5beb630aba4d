"""Projections for target sets that do not exist yet: N proteins of UniProt's length mix.

Source of the length distribution: UniProtKB/Swiss-Prot release statistics
(https://web.expasy.org/docs/relnotes/relstat.html, "Sequence length") report an average
sequence length of about 360 residues in recent releases. They cannot be downloaded from this
machine, so the distribution here is a stated model, not the histogram itself: a log-normal
with that mean and a shape sigma = 0.6 (median ~300 residues; the shape is our assumption),
clipped to 16..2,700 residues (the AlphaFold Protein Structure Database's upper length for
UniProt entries). The seed makes it reproducible.
"""
from __future__ import annotations

import math

MEAN_LENGTH = 360.0      # UniProtKB/Swiss-Prot release statistics: average length (approx.)
SIGMA = 0.6              # assumption: log-normal shape
CLIP = (16, 2700)
SOURCE = ("UniProt-like lengths: log-normal, mean 360 residues (UniProtKB/Swiss-Prot release "
          "statistics, approximate), sigma 0.6 (assumed), clipped to 16-2,700")


def uniprot_lengths(n: int, seed: int = 0) -> list[int]:
    """``n`` lengths drawn from the stated UniProt-like distribution (module docstring)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    mu = math.log(MEAN_LENGTH) - SIGMA ** 2 / 2
    lengths = np.clip(np.rint(rng.lognormal(mu, SIGMA, n)), *CLIP).astype(int)
    return [int(x) for x in lengths]


def project(n: int, cluster=None, msa_mode: str = "mmseqs2", spot: bool = True,
            batch_window: float | None = None, seed: int = 0, msa_cache_hit: float = 0.0,
            mmseqs_index_gib: float | None = None, **scale):
    """Plan ``n`` UniProt-like proteins; ``scale``: node limits per pool (``{"eksfold-infer":
    256}``) beyond those in ``cluster/`` (a what-if: raise the NodePool limits to match).

    Returns a compact summary dict (the full Plan of a million units is large).
    """
    from . import _cluster, plan

    spec = _cluster(cluster)
    if scale:
        spec = spec.scaled(**scale)
    p = plan(uniprot_lengths(n, seed), cluster=spec, msa_mode=msa_mode, spot=spot,
             batch_window=batch_window, msa_cache_hit=msa_cache_hit,
             mmseqs_index_gib=mmseqs_index_gib)
    gpu_h = sum(u.end - u.start for u in p.units if u.stage == "infer") / 3600
    by_pool: dict[str, float] = {}
    for node in p.nodes:
        by_pool[node.pool] = by_pool.get(node.pool, 0.0) + node.cost
    return {"proteins": n, "msa_mode": msa_mode, "spot": spot, "makespan_days":
            round(p.makespan_s / 86400, 2), "cost_usd": round(p.cost, 0),
            "cost_by_stage": {k: round(v, 0) for k, v in p.cost_by_stage.items()},
            "cost_by_pool": {k: round(v, 0) for k, v in by_pool.items()},
            "nodes": p.node_counts, "gpu_hours": round(gpu_h, 0),
            "over_2500": sum(1 for u in p.units if u.stage == "infer" and u.length > 2500),
            "usd_per_protein": round(p.cost / n, 4), "critical": p.critical_stage(),
            "usd_per_protein_on_demand_fallback": round((p.cost_fallback or p.cost) / n, 4),
            "lower_bound_days": round(p.bounds.get("lower bound", 0) / 86400, 2),
            "dominated_by": p.levers.get("dominated_by"), "pools": p.levers.get("pools"),
            "msa_cache": p.levers.get("msa_cache"),
            "length_source": SOURCE, "sources": p.sources}
