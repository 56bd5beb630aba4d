"""MMseqs2's cost split into a per-batch and a per-query part, per database size.

jackhmmer reads the whole database for every query, so its cost per query is one number per
database size. MMseqs2 searches a batch of queries in one invocation chain (an alignment shard,
see :mod:`eksfold.stages.align`): part of its cost is paid once per batch (process starts,
reading the k-mer index and the database, per iteration) and part per query. Measuring one
batch size mixes the two, and at a small batch the per-batch part (which grows with the
database) looks like a per-query cost. Here the same database is searched with batches of
several sizes and, per size, a line is fitted:

    batch CPU(N, Q) = F(N) + Q * g(N)

``F`` and ``g`` are then fitted as power laws in the database size N and extrapolated; the
per-query cost of a batch of Q queries at N is ``F(N) / Q + g(N)``.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


def extend_queries(queries: dict[str, str], targets_fasta: str, examples: str,
                   n: int) -> dict[str, str]:
    """``queries`` first, then further real queries (CAMEO-92 and MMseqs2 examples, any length
    from 50 to 600) up to ``n``, none repeated."""
    from . import align_compare as ac

    out, seen = dict(queries), set(queries.values())
    for name, seq in ac.pick_queries(targets_fasta, examples, 2 * n, lengths=(50, 600)).items():
        if len(out) >= n:
            break
        if seq not in seen:
            out[f"b{name}"] = seq
            seen.add(seq)
    return out


def measure(prefix: str, size: int, sensitivity: float, queries: dict[str, str],
            batch_sizes: list[int], scratch: Path, cpus: int, log=print) -> list[dict]:
    """One MMseqs2 batch search per batch size (the first Q queries); one row each."""
    from ..alignment.mmseqs import MMseqs2Search

    search, rows = MMseqs2Search(prefix, "plain", sensitivity=sensitivity, cpus=cpus), []
    for q in sorted(batch_sizes):
        chosen = dict(list(queries.items())[:q])
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            res = search.search(chosen, {n: Path(tmp) / n for n in chosen}, work=tmp)
        m = next(iter(res.values()))
        rows.append({"db_size": size, "sensitivity": sensitivity, "batch": len(chosen),
                     "batch_cpu_s": m["batch_cpu_s"], "batch_wall_s": m["batch_wall_s"],
                     "per_query_cpu_s": round(m["batch_cpu_s"] / len(chosen), 4),
                     "failed": sum(r["status"] != "ok" for r in res.values())})
        log(f"mmseqs2 -s {sensitivity:g} size={size} batch={len(chosen)}: "
            f"{m['batch_cpu_s']} CPU s, {m['batch_wall_s']} s wall")
    return rows


def split_costs(df) -> "pd.DataFrame":   # noqa: F821
    """Per database size: least-squares ``F`` (per batch) and ``g`` (per query) CPU seconds."""
    import pandas as pd

    out = []
    for size, d in df.groupby("db_size"):
        if d.batch.nunique() < 2:
            continue
        g, f = np.polyfit(d.batch.to_numpy(float), d.batch_cpu_s.to_numpy(float), 1)
        out.append({"db_size": int(size), "per_batch_s": round(float(f), 4),
                    "per_query_s": round(float(g), 5)})
    return pd.DataFrame(out)


def model(df, to: int, batch: int) -> dict:
    """Fits of ``F`` and ``g`` against database size and the per-query cost at ``to``
    sequences for a batch of ``batch`` queries (and for a very large batch: ``g`` alone)."""
    from .align_compare import fit_and_extrapolate

    split = split_costs(df)
    if len(split) < 2:
        return {}
    per_batch = fit_and_extrapolate(list(split.db_size), list(split.per_batch_s.clip(lower=1e-3)), to)
    per_query = fit_and_extrapolate(list(split.db_size), list(split.per_query_s.clip(lower=1e-5)), to)
    f, g = per_batch.get("extrapolated_s"), per_query.get("extrapolated_s")
    # the two largest sizes only, as for jackhmmer (the conservative slope)
    f2 = per_batch.get("last_two_extrapolated_s", f)
    g2 = per_query.get("last_two_extrapolated_s", g)
    return {"split": split.to_dict("records"), "per_batch_fit": per_batch,
            "per_query_fit": per_query, "batch": batch,
            "per_query_at_batch_s": round(f / batch + g, 3) if None not in (f, g) else None,
            "per_query_at_batch_last_two_s": round(f2 / batch + g2, 3) if None not in (f2, g2) else None,
            "marginal_per_query_s": g, "marginal_per_query_last_two_s": g2}
