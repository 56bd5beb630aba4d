"""Alignment benchmarks.

    eksfold bench align --lengths 50,100,200,400          jackhmmer time/memory vs query length
    eksfold bench align --compare --sizes 20000,200000,2000000
                                                           jackhmmer vs MMseqs2 vs database size

The comparison writes ``align.csv`` (one row per tool, sensitivity, size and query),
``align.json`` (fits, extrapolation to UniRef90's size, sensitivity) and ``align.png`` into
``--out`` (committed under ``eksfold/profiles/cpu-2core/``).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from .common import format_table, parse_lengths, synthetic_sequence

EXAMPLES = "/usr/share/doc/mmseqs2/example-data/QUERY.fasta.gz"


def align_benchmark(lengths, database: str, cpus: int = 2, targets_fasta: str | None = None):
    """jackhmmer wall/CPU time, peak memory and MSA depth per query length.

    Queries are the real targets of ``targets_fasta`` nearest to each length (real proteins
    find real homologues), else synthetic sequences.
    """
    import pandas as pd

    from ..alignment.hmmer import Jackhmmer
    from ..alignment.msa import read_msa_sequences
    from ..targets import read_fasta

    pool = read_fasta(targets_fasta) if targets_fasta and Path(targets_fasta).exists() else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="eksfold-bench-") as tmp:
        for length in lengths:
            near = min(pool, key=lambda t: abs(t.length - length)) if pool else None
            name, seq = (near.id, near.sequence) if near else (f"synthetic-{length}", synthetic_sequence(length))
            query = Path(tmp) / f"q{length}.fasta"
            query.write_text(f">{name}\n{seq}\n")
            run = Jackhmmer(database, cpus=cpus).run(query, Path(tmp) / f"q{length}.sto")
            rows.append({"length": len(seq), "query": name, "wall_s": run.wall_s, "cpu_s": run.cpu_s,
                         "peak_rss_mb": run.peak_rss_mb,
                         "msa_depth": len(read_msa_sequences(Path(tmp) / f"q{length}.sto"))})
    return pd.DataFrame(rows)


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
    per-query costs can be told apart (:mod:`eksfold.bench.align_batch`). Returns ``(rows
    DataFrame, summary dict, batch rows DataFrame)``.
    """
    import pandas as pd

    from . import align_batch
    from . import align_compare as ac

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
    from ..alignment.mmseqs import OUTPUTS, MMseqs2Search
    from ..alignment.mmseqs_db import build_plain, index_commands
    from ..alignment.tools import run_tool
    from . import align_compare as ac

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
    from . import align_compare as ac

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


def add_parser(bsub) -> None:
    a = bsub.add_parser("align", help="jackhmmer time vs query length; --compare: jackhmmer vs "
                                      "MMseqs2 vs database size")
    a.add_argument("--lengths", default="50,100,200,400")
    a.add_argument("--database", default="data/db/uniprot20k.fasta")
    a.add_argument("--cpus", type=int, default=2)
    a.add_argument("--targets", default="data/cameo92/targets.fasta",
                   help="queries: the targets nearest each length")
    a.add_argument("--compare", action="store_true", help="jackhmmer vs MMseqs2 on padded databases")
    a.add_argument("--sizes", default="20000,200000,2000000", help="database sizes (sequences)")
    a.add_argument("--queries", type=int, default=10)
    a.add_argument("--sensitivities", default="5.7,8", help="MMseqs2 -s values; the last is used "
                                                          "beyond the smallest database")
    a.add_argument("--large-sensitivities", default="",
                   help="MMseqs2 -s values on every size (default: the last of --sensitivities)")
    a.add_argument("--jackhmmer-queries", default="", help="SIZE:N,... cap on jackhmmer queries")
    a.add_argument("--batches", default="",
                   help="MMseqs2 batch sizes searched at every size (e.g. 8,32,96): splits its "
                        "cost into per-batch and per-query parts")
    a.add_argument("--batch-only", action="store_true",
                   help="with --batches and --out: add only the MMseqs2 batch measurement to the "
                        "comparison already in --out (reuses the padded databases and indexes)")
    a.add_argument("--stages", action="store_true",
                   help="with --out: split MMseqs2's time at --sizes into prefilter and "
                        "alignment (its own log, one thread) and extrapolate the parts apart")
    a.add_argument("--repeats", type=int, default=0,
                   help="with --out: measure jackhmmer and MMseqs2's parts in turns at the two "
                        "largest --sizes this many times; the spread of the UniRef90-scale ratio")
    a.add_argument("--add-sizes", default="",
                   help="with --out: measure only these database sizes (e.g. 4000000) and merge "
                        "them into the comparison already in --out (same queries and settings)")
    a.add_argument("--scratch", default="data/db/bench", help="padded databases (not committed)")
    a.add_argument("--out", default=None, help="write align.csv/json/png here")
    a.set_defaults(func=_cmd_align)


def _cmd_align(args) -> int:
    if not args.compare:
        df = align_benchmark(parse_lengths(args.lengths), args.database, args.cpus, args.targets)
        print(f"alignment benchmark: jackhmmer on {args.database}, {args.cpus} CPUs")
        print(format_table(df, ["wall_s", "cpu_s", "peak_rss_mb"]))
        return 0
    if args.repeats:
        from .align_repeats import repeats_only
        summary = repeats_only(args.out, args.scratch, parse_lengths(args.sizes)[-2:],
                               args.repeats, args.targets)
        rep = summary["repeats"]
        print(json.dumps({k: rep[k] for k in ("ratio_min", "ratio_median", "ratio_max")}))
        for r in rep["per_repeat"]:
            print(json.dumps(r))
        return 0
    if args.stages:
        from .align_stages import stages_only
        summary = stages_only(args.out, args.scratch, parse_lengths(args.sizes), args.targets)
        print(json.dumps({k: summary.get(k) for k in ("stages", "speedup_at_uniref90_stages")},
                         indent=1))
        return 0
    if args.batch_only:
        from .align_batch import batch_only
        summary = batch_only(args.out, args.scratch, parse_lengths(args.sizes),
                             [int(x) for x in args.batches.split(",") if x], args.cpus, args.targets)
        print(json.dumps({k: summary.get(k) for k in ("batch_model", "speedup_at_uniref90_batch")},
                         indent=1))
        return 0
    caps = {int(k): int(v) for k, v in (p.split(":") for p in args.jackhmmer_queries.split(",") if p)}
    if args.add_sizes:
        from .align_grow import add_sizes
        summary = add_sizes(args.out, args.scratch, args.database, parse_lengths(args.add_sizes),
                            caps, args.cpus, args.targets, " ".join(["eksfold", *sys.argv[1:]]))
        print(json.dumps({k: summary.get(k) for k in ("per_query_s", "speedup_measured",
                                                      "speedup_at_uniref90",
                                                      "speedup_at_uniref90_last_two",
                                                      "speedup_at_uniref90_batch")}, indent=1))
        return 0
    df, summary, batches = compare_benchmark(
        args.database, parse_lengths(args.sizes), args.queries, args.scratch,
        [float(s) for s in args.sensitivities.split(",")], caps, args.cpus, args.targets,
        [float(x) for x in args.large_sensitivities.split(",") if x],
        [int(x) for x in args.batches.split(",") if x])
    summary["command"] = " ".join(["eksfold", *sys.argv[1:]])
    print(json.dumps(summary, indent=1))
    if args.out:
        from .align_plot import plot_compare
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        df.to_csv(out / "align.csv", index=False)
        if len(batches):
            batches.to_csv(out / "align-batch.csv", index=False)
        (out / "align.json").write_text(json.dumps(summary, indent=1) + "\n")
        plot_compare(df, summary, out / "align.png", batches)
        print(f"wrote {out}/align.csv, align.json, align.png")
    return 0
