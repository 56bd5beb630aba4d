"""Benchmarks: commands that print tables of measured figures.

Absolute times depend on the machine; compare the ratios and the fitted scaling exponents
measured in one run. Each inference measurement runs in a fresh subprocess so that its peak
memory is its own.

    eksfold bench inference --preset demo --lengths 32,64,128
    eksfold bench align --lengths 50,100,200,400
"""
from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AMINO = "ACDEFGHIKLMNPQRSTVWY"


def synthetic_sequence(length: int, seed: int = 0) -> str:
    """A deterministic sequence of ``length`` residues (runtime/memory do not depend on it)."""
    rng = random.Random(seed * 100003 + length)
    return "M" + "".join(rng.choice(AMINO) for _ in range(length - 1))


def fit_exponent(lengths, values) -> float | None:
    """Least-squares slope of log(value) against log(length): value ~ length**slope."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(lengths, values) if x and y and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    var = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / var if var else None


def _measure_one(length: int, preset: str, device: str, weights: str, threads: int | None) -> dict:
    from .config import InferConfig
    from .inference import infer_target
    from .targets import Target

    with tempfile.TemporaryDirectory(prefix="eksfold-bench-") as tmp:
        aln = Path(tmp) / "aln"
        aln.mkdir()  # no MSA files: OpenFold uses the single query sequence
        target = Target(f"bench-{length}", synthetic_sequence(length))
        cfg = InferConfig(preset=preset, weights=weights, device=device, threads=threads)
        return infer_target(target, aln, cfg, Path(tmp) / "out")


def inference_benchmark(lengths, preset: str = "demo", device: str = "auto",
                        weights: str = "random", threads: int | None = None):
    """Inference runtime and peak memory per sequence length; returns a DataFrame."""
    import pandas as pd

    rows = []
    for length in lengths:
        cmd = [sys.executable, "-m", "eksfold.bench", "--one", str(length), preset, device, weights,
               str(threads or 0)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            rows.append({"length": length, "error": res.stderr.strip().splitlines()[-1:]})
            continue
        m = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append({k: m.get(k) for k in ("length", "preset", "device", "threads", "feature_s",
                                           "inference_s", "peak_rss_mb", "peak_cuda_mb", "untrained")})
    return pd.DataFrame(rows)


def align_benchmark(lengths, database: str, cpus: int = 2, targets_fasta: str | None = None):
    """jackhmmer wall/CPU time, peak memory and MSA depth per query length.

    Queries are the real targets of ``targets_fasta`` nearest to each length (real proteins
    find real homologues), else synthetic sequences.
    """
    import pandas as pd

    from .align import Jackhmmer, read_msa_sequences
    from .targets import read_fasta

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


def format_table(df, value_columns) -> str:
    """The table plus ratios to the first row and fitted exponents for ``value_columns``."""
    df = df.copy()
    lines = []
    for col in value_columns:
        if col in df and df[col].notna().any() and df[col].iloc[0]:
            df[f"{col}_x"] = (df[col] / df[col].iloc[0]).round(2)
    lines.append(df.to_string(index=False))
    for col in value_columns:
        if col in df and df[col].notna().sum() >= 2:
            k = fit_exponent(df["length"], df[col])
            if k is not None:
                lines.append(f"{col} ~ length^{k:.2f}")
    return "\n".join(lines)


def add_bench_parser(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks that print tables (inference, align)")
    bsub = p.add_subparsers(dest="bench", required=True)
    q = bsub.add_parser("inference", help="runtime and peak memory vs sequence length")
    q.add_argument("--lengths", default="32,64,128")
    q.add_argument("--preset", default="demo")
    q.add_argument("--device", default="auto")
    q.add_argument("--weights", default="random")
    q.add_argument("--threads", type=int)
    q.add_argument("--csv", help="also write the table to this CSV file")
    q.set_defaults(func=_cmd_inference)
    a = bsub.add_parser("align", help="jackhmmer time and memory vs query length")
    a.add_argument("--lengths", default="50,100,200,400")
    a.add_argument("--database", default="data/db/uniprot20k.fasta")
    a.add_argument("--cpus", type=int, default=2)
    a.add_argument("--targets", default="data/cameo92/targets.fasta",
                   help="queries: the targets nearest each length")
    a.set_defaults(func=_cmd_align)


def _lengths(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _cmd_inference(args) -> int:
    start = time.perf_counter()
    df = inference_benchmark(_lengths(args.lengths), args.preset, args.device, args.weights, args.threads)
    print(f"inference benchmark: preset={args.preset} weights={args.weights}"
          + (" (UNTRAINED: runtime/memory only)" if args.weights.startswith("random") else ""))
    print(format_table(df, ["inference_s", "peak_rss_mb", "peak_cuda_mb"]))
    print(f"total {time.perf_counter() - start:.0f}s")
    if args.csv:
        df.to_csv(args.csv, index=False)
    return 0 if "error" not in df or df["error"].isna().all() else 1


def _cmd_align(args) -> int:
    df = align_benchmark(_lengths(args.lengths), args.database, args.cpus, args.targets)
    print(f"alignment benchmark: jackhmmer on {args.database}, {args.cpus} CPUs")
    print(format_table(df, ["wall_s", "cpu_s", "peak_rss_mb"]))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--one":
        _, _, length, preset, device, weights, threads = sys.argv
        print(json.dumps(_measure_one(int(length), preset, device, weights, int(threads) or None),
                         default=str))
    else:
        sys.exit("usage: eksfold bench ...")
