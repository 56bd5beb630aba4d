"""jackhmmer vs MMseqs2 per database size: the comparison's main measurement.

:func:`compare_benchmark` pads the database to each size, runs both tools on the same real
queries (:func:`measure_size`) and summarises fits, extrapolation to UniRef90's size and
sensitivity (:func:`summarise`). Run through ``python -m benchmarks.align`` (``__main__``).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from . import batch as align_batch
from . import compare as ac
from .compare import EXAMPLES


def compare_benchmark(database: str, sizes: list[int], n_queries: int, scratch: str,
                      sensitivities: list[float], jackhmmer_queries: dict[int, int] | None = None,
                      cpus: int = 2, targets_fasta: str = "data/cameo92/targets.fasta",
                      large_sensitivities: list[float] | None = None,
                      batch_sizes: list[int] | None = None, log=print):
    """jackhmmer vs MMseqs2 (plain layout, batch of all queries) per database size.

    ``jackhmmer_queries`` caps jackhmmer's queries at a size (its time is per query, so a subset
    measures it; MMseqs2 always searches the whole batch). All ``sensitivities`` run on the
    smallest (real) database, ``large_sensitivities`` (default: the last one) on every size; the
    first of those is the one the summary reports. ``batch_sizes``: MMseqs2 (that sensitivity)
    also searches batches of these sizes at every database size, so its per-batch and
    per-query costs can be told apart (:mod:`benchmarks.align.batch`). Returns ``(rows
    DataFrame, summary dict, batch rows DataFrame)``.
    """
    import pandas as pd

    queries = ac.pick_queries(targets_fasta, EXAMPLES, n_queries)
    batch_sizes = sorted(batch_sizes or [])
    batch_queries = align_batch.extend_queries(queries, batch_sizes[-1]) if batch_sizes else {}
    batch_rows = []
    scratch = Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    fastas = {s: scratch / f"pad_{s}.fasta" for s in sizes}
    if not all(p.is_file() for p in fastas.values()):
        fastas, took = ac.timed(ac.write_padded, database, scratch / "pad.fasta", sizes)
        log(f"padded databases written in {took} s")
    large = large_sensitivities or sensitivities[-1:]
    rows = []
    for size in sorted(sizes):
        sens = sorted(set(sensitivities) | set(large)) if size == min(sizes) else large
        rows += measure_size(size, fastas[size], scratch, queries, sens, large[0],
                             (jackhmmer_queries or {}).get(size, len(queries)),
                             size == min(sizes), cpus, log)
        if batch_sizes:
            batch_rows += align_batch.measure(str(scratch / f"mm_{size}"), size, large[0],
                                              batch_queries, batch_sizes, scratch, cpus, log)
    df, batches = pd.DataFrame(rows), pd.DataFrame(batch_rows)
    summary = summarise(df, large[0])
    if batch_sizes:
        align_batch.add_to_summary(summary, batches, batch_sizes[-1])
    return df, summary, batches


def measure_size(size: int, fasta: Path, scratch: Path, queries: dict[str, str],
                 sensitivities: list[float], index_sensitivity: float, jackhmmer_limit: int,
                 real: bool, cpus: int = 2, log=print) -> list[dict]:
    """One database size: createdb and k-mer index (skipped when present), jackhmmer on the
    first ``jackhmmer_limit`` queries, one MMseqs2 batch of all queries per sensitivity.

    ``real``: the unpadded database, where MSA rows (Neff) are read too. MMseqs2's rows are
    scored against jackhmmer's hits at this size."""
    from eksfold.alignment.mmseqs import OUTPUTS, MMseqs2Search
    from eksfold.alignment.mmseqs_db import build_plain, index_commands
    from eksfold.alignment.tools import run_tool

    prefix = scratch / f"mm_{size}"
    _, createdb_s = ac.timed(build_plain, fasta, prefix)
    # A precomputed k-mer index, as production searches use (one-off, timed apart; its cost
    # is kept beside it, so a later run that reuses the index still reports it).
    cost = Path(f"{prefix}.idx.cost.json")
    if not Path(f"{prefix}.idx").exists():
        index_cpu_s = 0.0
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            for cmd in index_commands(prefix, "plain", tmp, sensitivity=index_sensitivity):
                index_cpu_s += run_tool("mmseqs createindex", cmd + ["--threads", str(cpus)]).cpu_s
        cost.write_text(json.dumps({"createindex_cpu_s": round(index_cpu_s, 2),
                                    "sensitivity": index_sensitivity, "threads": cpus}))
    else:
        index_cpu_s = json.loads(cost.read_text())["createindex_cpu_s"] if cost.is_file() else None
    log(f"size={size}: createdb {createdb_s} s, createindex {index_cpu_s} CPU s")
    rows, jh_hits = [], {}
    for name in list(queries)[:jackhmmer_limit]:
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            r = ac.jackhmmer_query(str(fasta), name, queries[name], Path(tmp), cpus)
            aligned = ac.sto_rows(r["sto"]) if real else []
        jh_hits[name] = r["hits"]
        rows.append({"tool": "jackhmmer", "sensitivity": None, "db_size": size, "query": name,
                     "length": len(queries[name]), "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
                     "peak_rss_mb": r["peak_rss_mb"], "hits_e3": len(r["hits"]),
                     "shuffled_hits": sum(h.startswith("shuf") for h in r["hits"]),
                     # MSA rows (one per aligned domain) where read, else hits
                     "depth": 1 + (len(aligned) if real else len(r["hits"])),
                     "neff": ac.neff([queries[name]] + aligned) if real else None})
        log(f"jackhmmer size={size} {name}: {r['wall_s']} s, {len(r['hits'])} hits")
    for i, sens in enumerate(sensitivities):
        search = MMseqs2Search(str(prefix), "plain", sensitivity=sens, cpus=cpus)
        if i == 0:   # the index back in the page cache after jackhmmer's reads
            ac.warm_up(search, queries, scratch)
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            dirs = {n: Path(tmp) / n for n in queries}
            res = search.search(queries, dirs, work=tmp)
            for name, m in res.items():
                hits = ac.a3m_rows(dirs[name] / OUTPUTS["uniref"]) if m["status"] == "ok" else []
                found = {h[0] for h in hits}
                ref = jh_hits.get(name)
                rows.append({"tool": "mmseqs2", "sensitivity": sens, "db_size": size,
                             "query": name, "length": len(queries[name]), "wall_s": m["wall_s"],
                             "cpu_s": m["cpu_s"], "peak_rss_mb": m["tool_peak_rss_mb"],
                             "hits_e3": sum(h[1] <= ac.EVALUE for h in hits),
                             "shuffled_hits": sum(h[0].startswith("shuf") for h in hits),
                             "depth": 1 + len(hits),
                             "neff": ac.neff([queries[name]] + [h[2] for h in hits]) if real else None,
                             "jackhmmer_hits": len(ref) if ref is not None else None,
                             "jackhmmer_hits_found": len(ref & found) if ref is not None else None,
                             "createdb_s": createdb_s, "createindex_cpu_s": index_cpu_s,
                             "batch_wall_s": m["batch_wall_s"], "batch_cpu_s": m["batch_cpu_s"]})
        log(f"mmseqs2 -s {sens} size={size}: batch {res[name]['batch_wall_s']} s "
            f"for {len(queries)} queries")
    return rows


def summarise(df, chosen: float) -> dict:
    """Per-query time per tool and size, power-law fits, UniRef90-scale ratio, sensitivity."""

    jh = df[df.tool == "jackhmmer"]
    # The same jackhmmer queries at every size (larger sizes may measure a subset).
    common = set.intersection(*(set(d["query"]) for _, d in jh.groupby("db_size")))
    jh = jh[jh["query"].isin(common)]
    sizes = df.db_size.nunique()
    series = {"jackhmmer": jh}
    for s, d in df[df.tool == "mmseqs2"].groupby("sensitivity"):
        if d.db_size.nunique() == sizes:
            series[f"mmseqs2 -s {s:g}"] = d
    # CPU seconds (rusage of the child): robust on a shared machine, where wall time mostly
    # measures other jobs; wall time is kept beside it.
    times = {t: d.groupby("db_size").cpu_s.mean() for t, d in series.items()}
    walls = {t: d.groupby("db_size").wall_s.mean() for t, d in series.items()}
    fits = {t: ac.fit_and_extrapolate(list(v.index), list(v.values)) for t, v in times.items()}
    small = df.db_size.min()
    sens = {}
    for s, d in df[(df.tool == "mmseqs2") & (df.db_size == small)].groupby("sensitivity"):
        sens[str(s)] = {"jackhmmer_hits": int(d.jackhmmer_hits.sum()),
                        "found": int(d.jackhmmer_hits_found.sum()),
                        "fraction_found": round(d.jackhmmer_hits_found.sum() / max(d.jackhmmer_hits.sum(), 1), 3),
                        "mean_depth": round(d.depth.mean(), 1), "mean_neff": round(d.neff.mean(), 1),
                        "per_query_cpu_s": round(d.cpu_s.mean(), 2)}
    jsmall = jh[jh.db_size == small]
    jext = fits["jackhmmer"]["extrapolated_s"]
    return {"evalue": ac.EVALUE, "chosen_sensitivity": chosen, "uniref90_size": ac.UNIREF90_SIZE,
            "measure": "cpu_s per query (MMseqs2: batch CPU / queries)",
            "jackhmmer_queries_all_sizes": sorted(common),
            "per_query_s": {t: {int(k): round(v, 3) for k, v in x.items()} for t, x in times.items()},
            "per_query_wall_s": {t: {int(k): round(v, 3) for k, v in x.items()} for t, x in walls.items()},
            "fits": fits,
            "speedup_measured": {t: {int(k): round(times["jackhmmer"][k] / v, 2)
                                     for k, v in x.items() if k in times["jackhmmer"].index}
                                 for t, x in times.items() if t != "jackhmmer"},
            "speedup_at_uniref90": {t: round(jext / f["extrapolated_s"], 1)
                                    for t, f in fits.items()
                                    if t != "jackhmmer" and jext and f["extrapolated_s"]},
            "speedup_at_uniref90_last_two": {
                t: round(fits["jackhmmer"]["last_two_extrapolated_s"] / f["last_two_extrapolated_s"], 1)
                for t, f in fits.items() if t != "jackhmmer" and "last_two_extrapolated_s" in f},
            "sensitivity": sens,
            "jackhmmer_small_db": {"mean_depth": round(jsmall.depth.mean(), 1),
                                   "mean_neff": round(jsmall.neff.mean(), 1)},
            "load_average": os.getloadavg()}
