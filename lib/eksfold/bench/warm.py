"""Warm-worker memory: each unit's own peak in one warm process against a fresh process per
point, and what the warm worker keeps after each fold.

The warm side is one process that builds the model once and folds the points in order with
the worker's own code (:meth:`eksfold.models.ModelBackend.load`'s folder, per-unit
:class:`eksfold.memory.usage.UnitMemory`, freed memory given back after each unit); the fresh
side is ``eksfold bench settings``' one-point subprocess (``ru_maxrss`` of a process that
folded only that point), same sequence, preset and setting.

    eksfold bench warm --preset tiny --lengths 64,128,256,384 --setting default
    eksfold bench warm --preset tiny --cameo 10 --max-length 160 --setting default --fresh \
        --parallel 3 --csv lib/eksfold/profiles/cpu-2core/warm-vs-fresh-tiny.csv
    eksfold bench warm --from-run runs/cameo92 --longest 10 --fresh \
        --csv lib/eksfold/profiles/cpu-2core/warm-vs-fresh-cameo92-tiny.csv

``--from-run``: the warm side is a finished run's own warm worker (each unit's recorded
peak, setting and resident memory; :mod:`eksfold.memory.runreport` prints the run's kills,
settings and retained memory first), the fresh side each of its ``--longest`` units folded
again alone in a fresh process with the setting the run used.

Columns: ``warm_peak_mb`` (the unit's own peak RSS in the warm worker), ``fresh_peak_mb``,
``ratio`` (warm / fresh), ``rss_start_mb`` (the worker's RSS when the unit started),
``rss_before_release_mb`` / ``rss_end_mb`` (after the unit, before and after giving freed
memory back), ``retained_mb`` (``rss_end_mb`` minus the worker's RSS after loading: what it
keeps), ``kept_without_release_mb`` (the same before the release).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import parse_lengths, synthetic_sequence

COLUMNS = ("target", "length", "setting", "preset", "warm_peak_mb", "fresh_peak_mb", "ratio",
           "rss_start_mb", "rss_before_release_mb", "rss_end_mb", "retained_mb",
           "kept_without_release_mb", "baseline_mb", "peak_rss_scope", "warm_inference_s",
           "fresh_inference_s", "untrained", "error")


def _serve_series(spec: dict) -> None:
    """In this (fresh) process: load once, fold every point, one JSON line per point."""
    from ..config import InferConfig
    from ..memory.usage import UnitMemory, release, rss_mb
    from ..models import get_backend
    from ..targets import Target

    folder = get_backend(spec["preset"]).load(
        InferConfig(preset=spec["preset"], weights=spec["weights"], device="cpu",
                    threads=spec.get("threads")))
    folder.apply_setting(spec["setting"])
    release()
    baseline = rss_mb()
    with tempfile.TemporaryDirectory(prefix="eksfold-warm-") as tmp:
        aln = Path(tmp) / "aln"
        aln.mkdir()   # no MSA files: the single query sequence, as in `bench settings`
        for tid, seq in spec["points"]:
            unit = UnitMemory().start()
            row = {"target": tid, "length": len(seq), "baseline_mb": round(baseline, 1)}
            try:
                m = folder.fold(Target(tid, seq), aln, Path(tmp) / tid)
                row.update(warm_inference_s=m["inference_s"], untrained=m["untrained"], error=None)
            except Exception as exc:  # noqa: BLE001 - reported in the table, the series goes on
                row["error"] = f"{type(exc).__name__}: {exc}"[:300]
            figures = unit.finish(release_memory=spec.get("release", True))
            row.update(warm_peak_mb=figures["peak_rss_mb"], peak_rss_scope=figures["peak_rss_scope"],
                       rss_start_mb=figures["rss_start_mb"], rss_end_mb=figures["rss_end_mb"],
                       rss_before_release_mb=figures.get("rss_before_release_mb"))
            print(json.dumps(row), flush=True)


def warm_series(points, setting: str, preset: str = "tiny", weights: str = "random",
                threads: int | None = None, release: bool = True, log=print) -> list[dict]:
    """Fold ``points`` ([(id, sequence)]) in order in one fresh warm process; rows per point."""
    spec = {"points": list(points), "setting": setting, "preset": preset, "weights": weights,
            "threads": threads, "release": release}
    proc = subprocess.Popen([sys.executable, "-m", "eksfold.bench.warm", "--series",
                             json.dumps(spec)], stdout=subprocess.PIPE, text=True)
    rows = []
    for line in proc.stdout:
        if line.startswith("{"):
            rows.append(json.loads(line))
            r = rows[-1]
            log(f"warm  {r['target']:>10s} L={r['length']:4d} peak {r['warm_peak_mb']} MB, "
                f"RSS {r['rss_start_mb']} -> {r['rss_before_release_mb']} -> {r['rss_end_mb']} MB "
                f"{r.get('error') or ''}")
    code = proc.wait()
    if code != 0:
        done = {r["target"] for r in rows}
        rows += [{"target": tid, "length": len(seq), "error": f"warm worker exited with {code}"}
                 for tid, seq in points if tid not in done]
    return rows


def compare(points, setting: str, preset: str = "tiny", weights: str = "random",
            threads: int | None = None, fresh: bool = True, release: bool = True,
            parallel: int = 0, log=print):
    """The warm series and (``fresh``) each point alone in a fresh process; a DataFrame.

    ``parallel`` > 0 runs that many fresh points at a time beside the warm series (memory
    figures are per process, so they do not depend on it; times do)."""
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd

    from .settings import run_point

    def one(point):
        tid, seq = point
        res = run_point(len(seq), setting, preset, "cpu", weights, threads, sequence=seq)
        log(f"fresh {tid:>10s} L={len(seq):4d} peak {res.get('peak_rss_mb')} MB "
            f"{res.get('error') or ''}")
        return res

    pool = ThreadPoolExecutor(max_workers=max(1, parallel))
    with pool:
        futures = [pool.submit(one, p) for p in points] if fresh and parallel else None
        rows = warm_series(points, setting, preset, weights, threads, release, log)
        if fresh and futures is None:
            futures = [pool.submit(one, p) for p in points]
        fresh_rows = [f.result() for f in futures] if fresh else [{}] * len(points)
    by_id = {r["target"]: r for r in rows}
    out = []
    for (tid, seq), res in zip(points, fresh_rows):
        row = {**by_id.get(tid, {"target": tid, "length": len(seq), "error": "not run"}),
               "setting": setting, "preset": preset}
        if row.get("rss_end_mb") is not None:
            row["retained_mb"] = round(row["rss_end_mb"] - row["baseline_mb"], 1)
            row["kept_without_release_mb"] = round(row["rss_before_release_mb"] - row["baseline_mb"], 1)
        if fresh:
            row["fresh_peak_mb"], row["fresh_inference_s"] = res.get("peak_rss_mb"), res.get("inference_s")
            if res.get("error"):
                row["error"] = f"fresh: {res['error']}"
            elif row.get("warm_peak_mb") and row.get("fresh_peak_mb"):
                row["ratio"] = round(row["warm_peak_mb"] / row["fresh_peak_mb"], 3)
        out.append(row)
    return pd.DataFrame(out).reindex(columns=list(COLUMNS))


def compare_run(root: str, count: int, fresh: bool = True, threads: int | None = None,
                log=print, csv: str | None = None, only=None):
    """The ``count`` longest folded units of the run at ``root`` against a fresh process each
    (same sequence, preset, weights and setting); a DataFrame with the COLUMNS, also written to
    ``csv`` after every point (a long comparison can stop). ``only``: fresh points for these
    targets only (the others keep their warm figures, e.g. to finish a stopped comparison)."""
    import pandas as pd

    from ..memory.runreport import infer_rows
    from ..run import Run
    from .settings import run_point

    run = Run.open(root)
    infer = run.config.infer
    rows = [r for r in infer_rows(run) if r["status"] == "ok" and r["peak_rss_mb"]]
    rows = sorted(rows, key=lambda r: (r["length"], r["target"]))[-count:]
    out = []
    for r in rows:
        row = {"target": r["target"], "length": r["length"], "setting": r["setting"],
               "preset": infer.preset, "warm_peak_mb": r["peak_rss_mb"],
               "peak_rss_scope": r["peak_rss_scope"], "rss_start_mb": r["rss_start_mb"],
               "rss_end_mb": r["rss_end_mb"], "baseline_mb": r["baseline_mb"],
               "retained_mb": r["retained_mb"], "warm_inference_s": r["inference_s"]}
        if fresh and (only is None or r["target"] in only):
            res = run_point(r["length"], r["setting"], infer.preset, "cpu", infer.weights,
                            threads or infer.threads, sequence=run.target(r["target"]).sequence)
            row["fresh_peak_mb"], row["fresh_inference_s"] = (res.get("peak_rss_mb"),
                                                              res.get("inference_s"))
            row["untrained"] = res.get("untrained")
            if res.get("error"):
                row["error"] = f"fresh: {res['error']}"
            elif row["fresh_peak_mb"]:
                row["ratio"] = round(row["warm_peak_mb"] / row["fresh_peak_mb"], 3)
            log(f"{r['target']:>8s} L={r['length']:4d} {r['setting']:8s} warm {r['peak_rss_mb']} MB"
                f" fresh {row['fresh_peak_mb']} MB ratio {row.get('ratio')} {row.get('error') or ''}")
        out.append(row)
        if csv:
            pd.DataFrame(out).reindex(columns=list(COLUMNS)).to_csv(csv, index=False)
    return pd.DataFrame(out).reindex(columns=list(COLUMNS))


def cameo_points(fasta: str, count: int, max_length: int | None) -> list[tuple[str, str]]:
    """The longest ``count`` targets of ``fasta`` no longer than ``max_length``, shortest first
    (each unit then follows shorter ones, as in a run)."""
    from ..target_files import read_fasta

    targets = [t for t in read_fasta(fasta) if max_length is None or t.length <= max_length]
    chosen = sorted(targets, key=lambda t: (t.length, t.id))[-count:]
    return [(t.id, t.sequence) for t in chosen]


def add_parser(bsub) -> None:
    s = bsub.add_parser("warm", help="per-unit peak memory in a warm worker vs a fresh process, "
                                     "and what the worker keeps after each fold")
    s.add_argument("--preset", default="tiny")
    s.add_argument("--setting", default="default")
    s.add_argument("--weights", default="random")
    s.add_argument("--threads", type=int)
    s.add_argument("--lengths", help="synthetic sequences of these lengths, in this order")
    s.add_argument("--cameo", type=int, metavar="N",
                   help="the longest N targets of --targets (up to --max-length), shortest first")
    s.add_argument("--targets", default="data/cameo92/targets.fasta")
    s.add_argument("--max-length", type=int)
    s.add_argument("--fresh", action="store_true", help="also fold each point in a fresh process")
    s.add_argument("--parallel", type=int, default=0,
                   help="fresh points run N at a time beside the warm series (default: after it)")
    s.add_argument("--no-release", action="store_true",
                   help="keep freed memory (no malloc_trim/gc after each unit)")
    s.add_argument("--from-run", metavar="ROOT",
                   help="the warm side from a finished run's records (its memory report first)")
    s.add_argument("--longest", type=int, default=10, help="with --from-run: how many units")
    s.add_argument("--only", help="with --from-run: fresh points for these targets only")
    s.add_argument("--csv", help="write the table here")
    s.set_defaults(func=_cmd_warm)


def _cmd_warm(args) -> int:
    start = time.perf_counter()
    if args.from_run:
        from ..memory.runreport import describe, summarise
        from ..run import Run

        print(describe(summarise(Run.open(args.from_run))))
        only = set(args.only.split(",")) if args.only else None
        df = compare_run(args.from_run, args.longest, args.fresh, args.threads,
                         csv=args.csv, only=only)
        return _print_comparison(df, args, f"warm-worker memory of run {args.from_run}", start)
    if args.cameo:
        points = cameo_points(args.targets, args.cameo, args.max_length)
    else:
        points = [(f"synthetic-{L}", synthetic_sequence(L)) for L in parse_lengths(args.lengths or "64,128")]
    df = compare(points, args.setting, args.preset, args.weights, args.threads, args.fresh,
                 not args.no_release, args.parallel)
    title = (f"warm-worker memory: preset={args.preset} setting={args.setting} "
             f"weights={args.weights}" + (" (UNTRAINED: memory/runtime only)"
                                          if args.weights.startswith("random") else ""))
    return _print_comparison(df, args, title, start)


def _print_comparison(df, args, title: str, start: float) -> int:
    print(f"\n{title}; {time.perf_counter() - start:.0f}s")
    shown = [c for c in COLUMNS if c not in ("preset", "untrained", "error", "peak_rss_scope")
             and df[c].notna().any()]
    print(df[shown].to_string(index=False))
    if df["ratio"].notna().any():
        dev = (df["ratio"] - 1).abs()
        print(f"warm vs fresh: max |warm/fresh - 1| = {100 * dev.max():.1f}% over "
              f"{int(df['ratio'].notna().sum())} targets; within 10%: {int((dev <= 0.10).sum())}")
    if args.csv:
        df.to_csv(args.csv, index=False)
    return 0 if df["error"].isna().all() else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--series":
        _serve_series(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: eksfold bench warm ...")
