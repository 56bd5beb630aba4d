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


def extend_queries(queries: dict[str, str], n: int) -> dict[str, str]:
    """``queries`` first, then near-copies of them up to ``n``: copy k of a query has one
    residue substituted (position and residue vary with k). A batch of any size thus has the
    measured queries' lengths and homologues, so batches of different sizes differ only in
    how many queries share the per-batch cost; MMseqs2 cannot deduplicate the copies."""
    amino = "ACDEFGHIKLMNPQRSTVWY"
    out, seen, k = dict(queries), set(queries.values()), 0
    base = list(queries.items())
    while len(out) < n:
        name, seq = base[k % len(base)]
        copy = k // len(base) + 1
        pos = (copy * 7919 + k) % len(seq)
        sub = amino[(amino.find(seq[pos]) + copy) % len(amino)] if seq[pos] in amino else "A"
        mutated = seq[:pos] + sub + seq[pos + 1:]
        if mutated not in seen:
            out[f"{name}-copy{copy}"] = mutated
            seen.add(mutated)
        k += 1
    return out


def measure(prefix: str, size: int, sensitivity: float, queries: dict[str, str],
            batch_sizes: list[int], scratch: Path, cpus: int, log=print) -> list[dict]:
    """One MMseqs2 batch search per batch size (the first Q queries); one row each."""
    from eksfold.alignment.mmseqs import MMseqs2Search
    from .compare import warm_up

    search, rows = MMseqs2Search(prefix, "plain", sensitivity=sensitivity, cpus=cpus), []
    # a cold first read would be charged to whichever batch size came first
    warm_up(search, queries, scratch)
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
    from .compare import fit_and_extrapolate

    split = split_costs(df)
    if len(split) < 2 or (split.per_batch_s <= 0).any() or (split.per_query_s <= 0).any():
        return {"split": split.to_dict("records"),
                "note": "per-batch and per-query costs not separable at every size"}
    per_batch = fit_and_extrapolate(list(split.db_size), list(split.per_batch_s), to)
    per_query = fit_and_extrapolate(list(split.db_size), list(split.per_query_s), to)
    f, g = per_batch.get("extrapolated_s"), per_query.get("extrapolated_s")
    # the two largest sizes only, as for jackhmmer (the conservative slope)
    f2 = per_batch.get("last_two_extrapolated_s", f)
    g2 = per_query.get("last_two_extrapolated_s", g)
    return {"split": split.to_dict("records"), "per_batch_fit": per_batch,
            "per_query_fit": per_query, "batch": batch,
            "per_query_at_batch_s": round(f / batch + g, 3) if None not in (f, g) else None,
            "per_query_at_batch_last_two_s": round(f2 / batch + g2, 3) if None not in (f2, g2) else None,
            "marginal_per_query_s": g, "marginal_per_query_last_two_s": g2}


def _ratio(a, b):
    return round(a / b, 1) if a and b and b > 0 else None


def add_to_summary(summary: dict, batches, batch: int) -> None:
    """Add MMseqs2's per-batch/per-query split and the UniRef90-scale ratio for ``batch``
    queries per search to ``summary`` (jackhmmer's fits from the same summary)."""
    from .compare import UNIREF90_SIZE

    summary["batch_model"] = bm = model(batches, UNIREF90_SIZE, batch)
    jh = summary["fits"]["jackhmmer"]
    if bm.get("per_query_at_batch_s") is None:
        return
    summary["speedup_at_uniref90_batch"] = {
        "batch": batch,
        "all_points": _ratio(jh.get("extrapolated_s"), bm["per_query_at_batch_s"]),
        "marginal_all_points": _ratio(jh.get("extrapolated_s"), bm["marginal_per_query_s"]),
        # the slopes of the two largest sizes (three sizes or more)
        "last_two": _ratio(jh.get("last_two_extrapolated_s"), bm["per_query_at_batch_last_two_s"]),
        "marginal_last_two": _ratio(jh.get("last_two_extrapolated_s"),
                                    bm["marginal_per_query_last_two_s"])}


def batch_only(out: str, scratch: str, sizes: list[int], batch_sizes: list[int], cpus: int = 2,
               targets_fasta: str = "data/cameo92/targets.fasta", log=print) -> dict:
    """Add the batch measurement to an existing comparison in ``out`` (its ``align.json``,
    same queries, padded databases and indexes in ``scratch``); rewrites json and plot."""
    import json

    import pandas as pd

    from . import compare as ac
    from .plot import plot_compare

    out_dir = Path(out)
    df, summary = ac.load_comparison(out_dir)
    queries = extend_queries(ac.comparison_queries(df, targets_fasta), max(batch_sizes))
    rows = []
    for size in sorted(sizes):
        rows += measure(str(ac.indexed_prefix(scratch, size)), size, summary["chosen_sensitivity"],
                        queries, batch_sizes, Path(scratch), cpus, log)
    batches = pd.DataFrame(rows)
    add_to_summary(summary, batches, max(batch_sizes))
    batches.to_csv(out_dir / "align-batch.csv", index=False)
    (out_dir / "align.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot_compare(df, summary, out_dir / "align.png", batches)
    return summary
