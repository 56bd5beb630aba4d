"""Settings sweep: runtime and peak memory per (sequence length, inference setting).

Each point runs in a fresh subprocess, so its peak RSS is its own; on CUDA the peak
allocated/reserved counters are reset after a warm-up forward pass, and the timed pass is
CUDA-synchronised. The table feeds :mod:`eksfold.memory.costmodel` (fits and
leave-one-length-out errors are printed) and, committed under ``profiles/<name>/``, the
automatic settings.

    eksfold bench settings --preset demo --lengths 32,64,96,128 --settings default,chunk,lma \
        --profile cpu-2core
    eksfold bench settings --cameo-check --budget-mb 6000 --profile cpu-2core
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .common import parse_lengths, synthetic_sequence

COLUMNS = ("length", "setting", "preset", "device", "device_name", "threads", "warmup",
           "inference_s", "feature_s", "model_load_s", "peak_rss_mb", "peak_cuda_alloc_mb",
           "peak_cuda_reserved_mb", "untrained", "error")


def measure_point(length: int, setting: str, preset: str = "demo", device: str = "auto",
                  weights: str = "random", threads: int | None = None,
                  coords_out: str | None = None, sequence: str | None = None) -> dict:
    """Build the model, switch it to ``setting`` and time one forward pass (in this process)."""
    import resource
    import tempfile

    import numpy as np
    import torch

    from ..config import InferConfig
    from ..inference import WARMUP_LENGTH, build_model, forward, make_features, resolve_device
    from ..memory.settings import apply
    from ..openfold_compat import prepare
    from ..presets import get_preset
    from ..targets import Target

    prepare()
    dev = resolve_device(device)
    if dev.type == "cpu" and threads:
        torch.set_num_threads(threads)
    cfg = InferConfig(preset=preset, weights=weights, device=str(dev))
    t0 = time.perf_counter()
    model, of_config, info = build_model(get_preset(preset), cfg, dev)
    apply(setting, model)
    load_s = time.perf_counter() - t0
    seq = sequence or synthetic_sequence(length)
    with tempfile.TemporaryDirectory(prefix="eksfold-settings-") as tmp:
        aln = Path(tmp) / "aln"
        aln.mkdir()  # no MSA files: the single query sequence, as in `bench inference`
        t0 = time.perf_counter()
        _, processed = make_features(Target(f"bench-{len(seq)}", seq), aln, of_config)
        feature_s = time.perf_counter() - t0
        warm = dev.type == "cuda"  # on CPU the first pass has no kernel/allocator warm-up cost
        if warm:
            _, small = make_features(Target("warmup", seq[:WARMUP_LENGTH]), aln, of_config)
            forward(model, small, dev)
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    out = forward(model, processed, dev)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    inference_s = time.perf_counter() - t0
    row = {"length": len(seq), "setting": setting, "preset": preset, "device": dev.type,
           "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "threads": torch.get_num_threads(), "warmup": warm,
           "inference_s": round(inference_s, 3), "feature_s": round(feature_s, 3),
           "model_load_s": round(load_s, 3),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "peak_cuda_alloc_mb": None, "peak_cuda_reserved_mb": None,
           "untrained": info["untrained"], "error": None}
    if dev.type == "cuda":
        row["peak_cuda_alloc_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
        row["peak_cuda_reserved_mb"] = round(torch.cuda.max_memory_reserved(dev) / 2**20, 1)
    if coords_out:
        np.savez(coords_out, positions=out["final_atom_positions"].cpu().numpy(),
                 mask=out["final_atom_mask"].cpu().numpy(), plddt=out["plddt"].cpu().numpy())
    return row


def run_point(length, setting, preset="demo", device="auto", weights="random", threads=None,
              limit_mb=None, coords_out=None, timeout=None, limit_kind="rlimit",
              sequence=None) -> dict:
    """:func:`measure_point` in a fresh subprocess (optionally under a memory limit).

    A failed point comes back as a row with ``error`` and ``returncode`` (negative: killed by
    that signal, e.g. -9 for the kernel's OOM killer under a cgroup limit).
    """
    from ..memory.limits import limited_child, peak_cgroup_mb

    args = json.dumps({"length": length, "setting": setting, "preset": preset, "device": device,
                       "weights": weights, "threads": threads, "coords_out": coords_out,
                       "sequence": sequence})
    cmd = [sys.executable, "-m", "eksfold.bench.settings", "--one", args]
    with limited_child(limit_mb, limit_kind) as popen_kw:
        procs = popen_kw.pop("cgroup_procs", None)
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **popen_kw)
        peak = peak_cgroup_mb(procs) if procs else None
    if res.returncode == 0:
        row = json.loads(res.stdout.strip().splitlines()[-1])
        return {**row, "cgroup_peak_mb": peak} if procs else row
    tail = (res.stderr.strip().splitlines() or [f"exit code {res.returncode}"])[-1]
    if res.returncode < 0:
        tail = f"killed by signal {-res.returncode} ({tail})"
    return {"length": length, "setting": setting, "preset": preset, "error": tail[-300:],
            "returncode": res.returncode}


def settings_sweep(lengths, settings, preset="demo", device="auto", weights="random",
                   threads=None, csv=None, log=print):
    """Every (length, setting) point; appends to ``csv`` as it goes (a long sweep can stop)."""
    import pandas as pd

    rows = []
    for length in lengths:
        for setting in settings:
            t0 = time.perf_counter()
            row = run_point(length, setting, preset, device, weights, threads)
            rows.append(row)
            log(f"L={length:5d} {setting:8s} {row.get('inference_s')}s "
                f"rss={row.get('peak_rss_mb')}MB cuda={row.get('peak_cuda_reserved_mb')}MB "
                f"({time.perf_counter() - t0:.0f}s wall) {row.get('error') or ''}")
            if csv:
                df = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
                df.to_csv(csv, index=False)
    return pd.DataFrame(rows).reindex(columns=list(COLUMNS))


def profile_dir(name: str) -> Path:
    return Path(__file__).resolve().parent.parent / "profiles" / name


def add_parser(bsub) -> None:
    s = bsub.add_parser("settings", help="runtime and peak memory per length x inference setting")
    s.add_argument("--lengths", default="32,64,96,128")
    s.add_argument("--settings", default="default,chunk,lma",
                   help="comma-separated names from eksfold.memory.settings.LADDER")
    s.add_argument("--preset", default="demo")
    s.add_argument("--device", default="auto")
    s.add_argument("--weights", default="random")
    s.add_argument("--threads", type=int)
    s.add_argument("--profile", help="write profiles/NAME/settings[-PRESET].csv and .png")
    s.add_argument("--csv", help="write the table here (default: the profile's CSV)")
    s.add_argument("--fit-only", action="store_true", help="refit and plot an existing CSV")
    s.add_argument("--cameo-check", action="store_true",
                   help="zero-OOM check: automatic settings for the CAMEO-92 lengths under "
                        "--budget-mb, folding the longest --fold-count that fit --max-length")
    s.add_argument("--budget-mb", type=float)
    s.add_argument("--fold-count", type=int, default=3)
    s.add_argument("--max-length", type=int, default=160)
    s.add_argument("--targets", default="data/cameo92/targets.fasta")
    s.add_argument("--control", action="store_true",
                   help="cameo-check: also fold each with the fastest setting (expected to fail)")
    s.set_defaults(func=_cmd_settings)


def _cmd_settings(args) -> int:
    import pandas as pd

    from ..memory.costmodel import CostModel

    suffix = "" if args.preset == "demo" else f"-{args.preset}"
    out = profile_dir(args.profile) if args.profile else None
    csv = args.csv or (str(out / f"settings{suffix}.csv") if out else None)
    if args.cameo_check:
        from ..memory.oomcheck import cameo_check

        model = CostModel.from_csv(csv)
        report = cameo_check(args.targets, model, args.budget_mb, args.preset,
                             args.fold_count, args.max_length, weights=args.weights,
                             control=args.control)
        print(report["text"])
        return 0 if report["oom_failures"] == 0 else 1
    if out:
        out.mkdir(parents=True, exist_ok=True)
    if args.fit_only:
        df = pd.read_csv(csv)
    else:
        start = time.perf_counter()
        df = settings_sweep(parse_lengths(args.lengths), args.settings.split(","), args.preset,
                            args.device, args.weights, args.threads, csv)
        print(f"sweep took {time.perf_counter() - start:.0f}s")
    print(f"settings sweep: preset={args.preset} weights={args.weights}"
          + (" (UNTRAINED: runtime/memory only)" if args.weights.startswith("random") else ""))
    print(df.drop(columns=["error"]).to_string(index=False))
    model = CostModel.fit(df)
    print(model.describe())
    if out:
        from ..memory.plots import plot_settings_tradeoff

        plot_settings_tradeoff(df, model).savefig(out / f"settings{suffix}.png", dpi=110)
        model.loo_table().to_csv(out / f"settings{suffix}-loo.csv", index=False)
    return 0 if df["error"].isna().all() else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        os.environ.setdefault("PYTHONWARNINGS", "ignore")
        print(json.dumps(measure_point(**json.loads(sys.argv[2])), default=str))
    else:
        sys.exit("usage: eksfold bench settings ...")
