"""Where MMseqs2's search time goes, per database size: prefilter vs alignment, per iteration.

A power law through per-query times treats MMseqs2's cost as one thing. It is two: the
prefilter (k-mer matches against the index: grows with the database) and the alignment of
the prefilter's hits (grows with the hits, which ``--max-seqs`` caps per query and
iteration). Each search here runs at ``-v 3``; MMseqs2's own log gives each module's wall
time, the sequences passing the prefilter and the alignments computed, so the two parts are
fitted and extrapolated apart (``components_at``).

    python -m benchmarks.align --stages --sizes 20000,200000,2000000,4000000 --out DIR
"""
from __future__ import annotations

import re
import resource
import subprocess
import tempfile
from pathlib import Path

from .compare import warm_up

# module wall time over the search's CPU time beyond which the search waited on disk reads
READ_WAIT = 1.1
MODULE = re.compile(r"^(prefilter|align|result2profile) \S")
TIME = re.compile(r"Time for processing: (\d+)h (\d+)m (\d+)s (\d+)ms")


def parse_log(text: str) -> list[dict]:
    """One row per prefilter/align/result2profile module of an MMseqs2 ``-v 3`` log, in
    order, with its iteration (0-based), wall seconds and hit counts where printed."""
    rows, current, seen = [], None, {}
    for line in text.splitlines():
        if m := MODULE.match(line):
            name = m.group(1)
            current = {"module": name, "iteration": seen.get(name, 0)}
            seen[name] = current["iteration"] + 1
        elif current is None:
            continue
        elif line.endswith("sequences passed prefiltering per query sequence"):
            current["passed_per_query"] = int(line.split()[0])
        elif line.endswith("alignments calculated"):
            current["alignments"] = int(line.split()[0])
        elif t := TIME.search(line):
            h, mi, s, ms = map(int, t.groups())
            current["wall_s"] = h * 3600 + mi * 60 + s + ms / 1000
            rows.append(current)
            current = None
    return rows


def measure(prefix: str, size: int, sensitivity: float, queries: dict[str, str], scratch: Path,
            cpus: int = 2, log=print) -> list[dict]:
    """One logged MMseqs2 batch search of ``queries`` (after an unlogged warm-up search, so
    the index is in the page cache); rows of :func:`parse_log` plus the search's CPU time."""
    from eksfold.alignment.mmseqs import MMseqs2Search

    search = MMseqs2Search(prefix, "plain", sensitivity=sensitivity, cpus=cpus)
    warm_up(search, queries, scratch)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        fasta, qdb = Path(tmp) / "q.fasta", f"{tmp}/qdb"
        fasta.write_text("".join(f">{n}\n{s}\n" for n, s in queries.items()))
        subprocess.run([search.binary, "createdb", str(fasta), qdb, "-v", "1"], check=True)
        argv = dict(search.commands(qdb, tmp))["search"]
        argv[argv.index("-v") + 1] = "3"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rows = [{"db_size": size, "sensitivity": sensitivity, "queries": len(queries), **r,
             "search_cpu_s": round(cpu, 3)} for r in parse_log(out)]
    log(f"mmseqs2 stages size={size}: " + ", ".join(
        f"{r['module']}{r['iteration']} {r['wall_s']:.2f} s" for r in rows))
    return rows


def summarise(df, to: int, max_seqs: int = 10_000) -> dict:
    """Per size: prefilter and alignment wall seconds per query (all iterations), alignments
    per query; both parts fitted apart and extrapolated to ``to`` sequences."""
    from .compare import fit_and_extrapolate

    per = (df.groupby(["db_size", "module"])
           .agg(wall_s=("wall_s", "sum"), queries=("queries", "first"),
                alignments=("alignments", "sum")).reset_index())
    per["per_query_s"] = per.wall_s / per.queries
    table = {}
    for module in ("prefilter", "align", "result2profile"):
        d = per[per.module == module].sort_values("db_size")
        table[module] = {"per_query_s": {int(s): round(v, 4) for s, v in zip(d.db_size, d.per_query_s)},
                         "fit": fit_and_extrapolate(list(d.db_size), list(d.per_query_s), to)}
    al = per[per.module == "align"].sort_values("db_size")
    iterations = int(df[df.module == "align"].iteration.max()) + 1
    table["align"]["alignments_per_query"] = {
        int(s): round(a / q, 1) for s, a, q in zip(al.db_size, al.alignments, al.queries)}
    table["align"]["alignments_cap_per_query"] = max_seqs * iterations
    # module wall time stands for CPU time only while the search does not wait on reads
    ratio = df.groupby("db_size").wall_s.sum() / df.groupby("db_size").search_cpu_s.first()
    table["wall_over_cpu"] = {int(s): round(v, 3) for s, v in ratio.items()}
    table["waited_on_reads"] = [int(s) for s, v in ratio.items() if v > READ_WAIT]
    return table


def add_to_summary(summary: dict, stages) -> None:
    """``summary["stages"]`` and the UniRef90-scale ratio from the parts (the searches run on
    one thread, so module wall time is CPU time, like jackhmmer's figures).

    Bounded model: the prefilter grows with the database (its power law; the larger of the
    all-points and last-two-sizes extrapolations); the alignment part with the alignments
    computed, which ``--max-seqs`` caps per query and iteration: its time per alignment at the
    largest size measured, times the cap; result2profile (small, but it reads target
    sequences from the database) at most linearly in the database from the largest size.
    ``conservative`` sets the smaller jackhmmer extrapolation against that."""
    from .compare import UNIREF90_SIZE

    summary["stages"] = parts = summarise(stages, UNIREF90_SIZE)
    al = parts["align"]
    largest = max(al["alignments_per_query"], key=int)
    cap = al["alignments_cap_per_query"]
    align = cap * al["per_query_s"][largest] / al["alignments_per_query"][largest]
    profile = parts["result2profile"]["per_query_s"][largest] * UNIREF90_SIZE / int(largest)
    pre = parts["prefilter"]["fit"]
    prefilter = max(pre.get("extrapolated_s") or 0, pre.get("last_two_extrapolated_s") or 0)
    mm = prefilter + align + profile
    jh = summary["fits"]["jackhmmer"]
    jh_all, jh_two = jh.get("extrapolated_s"), jh.get("last_two_extrapolated_s") or jh.get("extrapolated_s")
    summary["speedup_at_uniref90_stages"] = {
        "model": "prefilter: power law (larger of all-points / last-two extrapolations); align: "
                 f"seconds per alignment at {int(largest):,} sequences x the cap of {cap:,} "
                 "alignments per query; result2profile: linear in the database size",
        "mmseqs2_s": {"prefilter": round(prefilter, 2), "align": round(align, 2),
                      "result2profile": round(profile, 2), "total": round(mm, 2)},
        "jackhmmer_s": {"all_points": jh_all, "last_two": jh_two},
        "conservative": round(min(jh_all, jh_two) / mm, 1) if mm > 0 and jh_all else None,
        "last_two": round(jh_two / mm, 1) if mm > 0 and jh_two else None}
    if parts["waited_on_reads"]:
        summary["speedup_at_uniref90_stages"]["warning"] = (
            f"at {parts['waited_on_reads']} the search waited on disk reads (module wall time "
            f"over {READ_WAIT}x the search's CPU time): those sizes overstate MMseqs2; rerun "
            "with more free memory")


def stages_only(out: str, scratch: str, sizes: list[int],
                targets_fasta: str = "data/cameo92/targets.fasta", log=print) -> dict:
    """Measure the stage split at ``sizes`` (padded databases and indexes already in
    ``scratch``) with the comparison's queries and sensitivity in ``out``; writes
    ``align-stages.csv`` and adds it to ``align.json`` and the plot."""
    import json

    import pandas as pd

    from . import compare as ac
    from .plot import plot_compare

    out_dir = Path(out)
    df, summary = ac.load_comparison(out_dir)
    queries = ac.comparison_queries(df, targets_fasta)
    rows = []
    for size in sorted(sizes):
        rows += measure(str(ac.indexed_prefix(scratch, size)), size, summary["chosen_sensitivity"],
                        queries, Path(scratch), cpus=1, log=log)
    stages = pd.DataFrame(rows)
    add_to_summary(summary, stages)
    stages.to_csv(out_dir / "align-stages.csv", index=False)
    (out_dir / "align.json").write_text(json.dumps(summary, indent=1) + "\n")
    batch_csv = out_dir / "align-batch.csv"
    plot_compare(df, summary, out_dir / "align.png",
                 pd.read_csv(batch_csv) if batch_csv.is_file() else None)
    return summary
