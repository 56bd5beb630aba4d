"""Grow a committed jackhmmer-vs-MMseqs2 comparison by larger database sizes.

The comparison's sizes are measured once (``python -m benchmarks.align``); a larger size costs a
padded database, its k-mer index (about 3.4 KB per sequence, so it must fit in memory beside
the search) and the searches. ``add_sizes`` measures only the new sizes, with the same
queries, sensitivities and batch sizes as the committed ones, and refits everything. The
padded databases are nested: the first N sequences of a larger one are the size-N database
(same seed and chunking in :func:`~benchmarks.align.compare.write_padded`).
"""
from __future__ import annotations

import json
from pathlib import Path


def add_sizes(out: str, scratch: str, database: str, sizes: list[int],
              jackhmmer_queries: dict[int, int] | None = None, cpus: int = 2,
              targets_fasta: str = "data/cameo92/targets.fasta", command: str = "",
              log=print) -> dict:
    """Measure ``sizes`` and merge them into ``out``'s ``align.csv``/``align-batch.csv``;
    rewrites ``align.json`` and ``align.png``. Rows of a size measured again are replaced."""
    import pandas as pd

    from . import batch as align_batch
    from . import compare as ac
    from .sizes import measure_size, summarise
    from .plot import plot_compare

    out_dir, scratch_dir = Path(out), Path(scratch)
    df, old = ac.load_comparison(out_dir)
    batch_csv = out_dir / "align-batch.csv"
    batches = pd.read_csv(batch_csv) if batch_csv.is_file() else pd.DataFrame()
    mm = df[df.tool == "mmseqs2"]
    queries = ac.comparison_queries(df, targets_fasta)
    if set(queries) != set(mm["query"]):
        raise ValueError(f"{out_dir}/align.csv was measured with other queries than "
                         f"{targets_fasta} gives now")
    # the sensitivities measured at every size so far, the reported one first
    n_sizes = df.db_size.nunique()
    every = [s for s, d in mm.groupby("sensitivity") if d.db_size.nunique() == n_sizes]
    chosen = old["chosen_sensitivity"]
    sens = [chosen] + sorted(s for s in every if s != chosen)
    batch_sizes = sorted(int(b) for b in batches.batch.unique()) if len(batches) else []
    scratch_dir.mkdir(parents=True, exist_ok=True)
    missing = [s for s in sizes if not (scratch_dir / f"pad_{s}.fasta").is_file()]
    if missing:
        _, took = ac.timed(ac.write_padded, database, scratch_dir / "pad.fasta", missing)
        log(f"padded databases {missing} written in {took} s")
    rows, batch_rows = [], []
    for size in sorted(sizes):
        rows += measure_size(size, scratch_dir / f"pad_{size}.fasta", scratch_dir, queries, sens,
                             chosen, (jackhmmer_queries or {}).get(size, len(queries)), False,
                             cpus, log)
        if batch_sizes:
            extended = align_batch.extend_queries(queries, batch_sizes[-1])
            batch_rows += align_batch.measure(str(scratch_dir / f"mm_{size}"), size, chosen,
                                              extended, batch_sizes, scratch_dir, cpus, log)
    kept = df[~df.db_size.isin(sizes)].dropna(axis=1, how="all")
    new = pd.DataFrame(rows).dropna(axis=1, how="all")
    df = pd.concat([kept, new], ignore_index=True).reindex(columns=df.columns)
    if batch_rows:
        batches = pd.concat([batches[~batches.db_size.isin(sizes)], pd.DataFrame(batch_rows)],
                            ignore_index=True)
    summary = summarise(df, chosen)
    if batch_sizes:
        align_batch.add_to_summary(summary, batches, batch_sizes[-1])
    summary["command"] = "; then: ".join(c for c in (old.get("command"), command) if c)
    df.to_csv(out_dir / "align.csv", index=False)
    if len(batches):
        batches.to_csv(batch_csv, index=False)
    (out_dir / "align.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot_compare(df, summary, out_dir / "align.png", batches)
    return summary
