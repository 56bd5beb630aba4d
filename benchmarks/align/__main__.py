"""jackhmmer vs MMseqs2 against databases of growing size: the research benchmark behind
``eksfold/profiles/<profile>/align.{csv,json,png}`` (run from a checkout, not installed).

    python -m benchmarks.align --sizes 20000,200000,2000000 --batches 8,32,96 --out DIR
    python -m benchmarks.align --add-sizes 4000000 --out DIR          # one more size, merged
    python -m benchmarks.align --stages --sizes 20000,200000,2000000,4000000 --out DIR
    python -m benchmarks.align --repeats 3 --sizes 2000000,4000000 --out DIR
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eksfold.bench.common import parse_lengths


def parser() -> argparse.ArgumentParser:
    a = argparse.ArgumentParser(prog="python -m benchmarks.align", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--database", default="data/db/uniprot20k.fasta")
    a.add_argument("--cpus", type=int, default=2)
    a.add_argument("--targets", default="data/cameo92/targets.fasta",
                   help="queries: the targets nearest each length")
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
    return a


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    command = " ".join(["python -m benchmarks.align", *(sys.argv[1:] if argv is None else argv)])
    if args.repeats:
        from .repeats import repeats_only
        summary = repeats_only(args.out, args.scratch, parse_lengths(args.sizes)[-2:],
                               args.repeats, args.targets)
        rep = summary["repeats"]
        print(json.dumps({k: rep[k] for k in ("ratio_min", "ratio_median", "ratio_max")}))
        for r in rep["per_repeat"]:
            print(json.dumps(r))
        return 0
    if args.stages:
        from .stages import stages_only
        summary = stages_only(args.out, args.scratch, parse_lengths(args.sizes), args.targets)
        print(json.dumps({k: summary.get(k) for k in ("stages", "speedup_at_uniref90_stages")},
                         indent=1))
        return 0
    if args.batch_only:
        from .batch import batch_only
        summary = batch_only(args.out, args.scratch, parse_lengths(args.sizes),
                             [int(x) for x in args.batches.split(",") if x], args.cpus, args.targets)
        print(json.dumps({k: summary.get(k) for k in ("batch_model", "speedup_at_uniref90_batch")},
                         indent=1))
        return 0
    caps = {int(k): int(v) for k, v in (p.split(":") for p in args.jackhmmer_queries.split(",") if p)}
    if args.add_sizes:
        from .grow import add_sizes
        summary = add_sizes(args.out, args.scratch, args.database, parse_lengths(args.add_sizes),
                            caps, args.cpus, args.targets, command)
        print(json.dumps({k: summary.get(k) for k in ("per_query_s", "speedup_measured",
                                                      "speedup_at_uniref90",
                                                      "speedup_at_uniref90_last_two",
                                                      "speedup_at_uniref90_batch")}, indent=1))
        return 0
    from .sizes import compare_benchmark

    df, summary, batches = compare_benchmark(
        args.database, parse_lengths(args.sizes), args.queries, args.scratch,
        [float(s) for s in args.sensitivities.split(",")], caps, args.cpus, args.targets,
        [float(x) for x in args.large_sensitivities.split(",") if x],
        [int(x) for x in args.batches.split(",") if x])
    summary["command"] = command
    print(json.dumps(summary, indent=1))
    if args.out:
        from .plot import plot_compare
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        df.to_csv(out / "align.csv", index=False)
        if len(batches):
            batches.to_csv(out / "align-batch.csv", index=False)
        (out / "align.json").write_text(json.dumps(summary, indent=1) + "\n")
        plot_compare(df, summary, out / "align.png", batches)
        print(f"wrote {out}/align.csv, align.json, align.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
