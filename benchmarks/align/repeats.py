"""jackhmmer and MMseqs2's parts measured in turns at the two largest sizes, several times.

On this shared VM the CPU time of the same search drifts by 10-30 % between runs. A slope
between two sizes, extrapolated 37-fold to UniRef90, multiplies that drift. Here each repeat
measures both tools at both sizes (A B, A B, ...), so drift hits the pair alike, and each
repeat gives its own UniRef90-scale ratio; the spread of those ratios is the honest error bar.

Model, per repeat: both linear scans get the same treatment, a straight line through the
two sizes (jackhmmer's per-query CPU; MMseqs2's prefilter). MMseqs2's alignments are capped
per query (``--max-seqs`` x iterations), so its alignment time is the time per alignment at
the larger size times the cap; result2profile is taken linear in the database size.

    python -m benchmarks.align --repeats 3 --sizes 2000000,4000000 --out DIR
"""
from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path


def linear_at(s1: float, t1: float, s2: float, t2: float, to: float) -> float:
    """The straight line through (s1, t1), (s2, t2) at ``to``."""
    return t2 + (to - s2) * (t2 - t1) / (s2 - s1)


def measure(out: str, scratch: str, sizes: list[int], repeats: int,
            targets_fasta: str = "data/cameo92/targets.fasta", cpus: int = 2, log=print):
    """Rows: jackhmmer CPU per query (``cpus`` threads, as the comparison) and the MMseqs2
    stage split (one thread), per repeat and size, with the comparison's queries."""
    import pandas as pd

    from . import compare as ac
    from . import stages as align_stages
    from eksfold.bench.common import page_in

    scratch_dir = Path(scratch)
    df, summary = ac.load_comparison(out)
    queries = ac.comparison_queries(df, targets_fasta)
    rows = []
    for rep in range(repeats):
        for size in sizes:
            fasta = scratch_dir / f"pad_{size}.fasta"
            page_in(fasta)
            jackhmmer = []
            for name, seq in queries.items():
                with tempfile.TemporaryDirectory(dir=scratch_dir) as tmp:
                    r = ac.jackhmmer_query(str(fasta), name, seq, Path(tmp), cpus)
                jackhmmer.append({"repeat": rep, "db_size": size, "tool": "jackhmmer",
                                  "module": None, "query": name, "cpu_s": r["cpu_s"]})
            stages = align_stages.measure(str(ac.indexed_prefix(scratch_dir, size)), size,
                                          summary["chosen_sensitivity"], queries, scratch_dir,
                                          cpus=1, log=log)
            rows += jackhmmer + [{"repeat": rep, "tool": "mmseqs2", **s} for s in stages]
            log(f"repeat {rep} size={size}: jackhmmer "
                f"{statistics.mean(j['cpu_s'] for j in jackhmmer):.2f} CPU s per query")
    return pd.DataFrame(rows)


def summarise(df, to: int, max_seqs: int = 10_000) -> dict:
    """Per repeat: per-query figures at the two sizes and the ratio at ``to`` sequences."""
    from .stages import READ_WAIT

    per_repeat = []
    for rep, d in df.groupby("repeat"):
        s1, s2 = sorted(d.db_size.unique())[-2:]
        fig = {}
        for size in (s1, s2):
            at = d[d.db_size == size]
            mm = at[at.tool == "mmseqs2"]
            q = mm.queries.iloc[0]
            wall = mm.groupby("module").wall_s.sum()
            fig[size] = {"jackhmmer_s": at[at.tool == "jackhmmer"].cpu_s.mean(),
                         "prefilter_s": wall.get("prefilter", 0.0) / q,
                         "align_s": wall.get("align", 0.0) / q,
                         "result2profile_s": wall.get("result2profile", 0.0) / q,
                         "alignments": mm.alignments.sum() / q,
                         "wall_over_cpu": wall.sum() / mm.search_cpu_s.iloc[0]}
        iterations = int(d[d.module == "align"].iteration.max()) + 1
        a, b = fig[s1], fig[s2]
        jh = linear_at(s1, a["jackhmmer_s"], s2, b["jackhmmer_s"], to)
        parts = {"prefilter": linear_at(s1, a["prefilter_s"], s2, b["prefilter_s"], to),
                 "align": max_seqs * iterations * b["align_s"] / b["alignments"],
                 "result2profile": b["result2profile_s"] * to / s2}
        mm = sum(parts.values())
        per_repeat.append({
            "repeat": int(rep),
            "measured": {int(s): {k: round(v, 4) for k, v in f.items()} for s, f in fig.items()},
            "jackhmmer_at_s": round(jh, 1),
            "mmseqs2_at_s": {**{k: round(v, 2) for k, v in parts.items()}, "total": round(mm, 2)},
            "ratio": round(jh / mm, 1),
            "waited_on_reads": [int(s) for s, f in fig.items()
                                if f["wall_over_cpu"] > READ_WAIT]})
    ratios = [r["ratio"] for r in per_repeat]
    return {"model": "per repeat: jackhmmer and the MMseqs2 prefilter linear through the two "
                     "sizes; MMseqs2 alignments capped (time per alignment x cap); "
                     "result2profile linear in size",
            "to": to, "per_repeat": per_repeat, "ratio_min": min(ratios),
            "ratio_median": statistics.median(ratios), "ratio_max": max(ratios)}


def repeats_only(out: str, scratch: str, sizes: list[int], repeats: int,
                 targets_fasta: str = "data/cameo92/targets.fasta", log=print) -> dict:
    """Measure, write ``align-repeats.csv`` and ``summary["repeats"]`` into ``align.json``."""
    from .compare import UNIREF90_SIZE

    out_dir = Path(out)
    df = measure(out, scratch, sizes, repeats, targets_fasta, log=log)
    df.to_csv(out_dir / "align-repeats.csv", index=False)
    summary = json.loads((out_dir / "align.json").read_text())
    summary["repeats"] = summarise(df, UNIREF90_SIZE)
    (out_dir / "align.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
