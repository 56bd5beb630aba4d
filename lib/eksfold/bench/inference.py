"""Inference benchmark: runtime and peak memory per sequence length.

Each measurement runs in a fresh subprocess so that its peak memory is its own.

    eksfold bench inference --preset demo --lengths 32,64,128
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..weights import is_untrained
from .common import format_table, parse_lengths, synthetic_sequence


def _measure_one(length: int, preset: str, device: str, weights: str, threads: int | None) -> dict:
    from ..config import InferConfig
    from ..models import get_backend
    from ..targets import Target

    with tempfile.TemporaryDirectory(prefix="eksfold-bench-") as tmp:
        aln = Path(tmp) / "aln"
        aln.mkdir()  # no MSA files: the model uses the single query sequence
        target = Target(f"bench-{length}", synthetic_sequence(length))
        cfg = InferConfig(preset=preset, weights=weights, device=device, threads=threads)
        folder = get_backend(preset).load(cfg)
        return {**folder.timings, **folder.fold(target, aln, Path(tmp) / "out")}


def inference_benchmark(lengths, preset: str = "demo", device: str = "auto",
                        weights: str = "random", threads: int | None = None):
    """Inference runtime and peak memory per sequence length; returns a DataFrame."""
    import pandas as pd

    rows = []
    for length in lengths:
        cmd = [sys.executable, "-m", "eksfold.bench.inference", "--one", str(length), preset, device, weights,
               str(threads or 0)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            rows.append({"length": length, "error": res.stderr.strip().splitlines()[-1:]})
            continue
        m = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append({k: m.get(k) for k in ("length", "preset", "device", "threads", "feature_s",
                                           "inference_s", "peak_rss_mb", "peak_cuda_mb", "untrained")})
    return pd.DataFrame(rows)


def add_parser(bsub) -> None:
    q = bsub.add_parser("inference", help="runtime and peak memory vs sequence length")
    q.add_argument("--lengths", default="32,64,128")
    q.add_argument("--preset", default="demo")
    q.add_argument("--device", default="auto")
    q.add_argument("--weights", default="random")
    q.add_argument("--threads", type=int)
    q.add_argument("--csv", help="also write the table to this CSV file")
    q.set_defaults(func=_cmd_inference)


def _cmd_inference(args) -> int:
    start = time.perf_counter()
    df = inference_benchmark(parse_lengths(args.lengths), args.preset, args.device, args.weights, args.threads)
    print(f"inference benchmark: preset={args.preset} weights={args.weights}"
          + (" (UNTRAINED: runtime/memory only)" if is_untrained(args.weights) else ""))
    print(format_table(df, ["inference_s", "peak_rss_mb", "peak_cuda_mb"]))
    print(f"total {time.perf_counter() - start:.0f}s")
    if args.csv:
        df.to_csv(args.csv, index=False)
    return 0 if "error" not in df or df["error"].isna().all() else 1


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--one":
        _, _, length, preset, device, weights, threads = sys.argv
        print(json.dumps(_measure_one(int(length), preset, device, weights, int(threads) or None),
                         default=str))
    else:
        sys.exit("usage: eksfold bench ...")
