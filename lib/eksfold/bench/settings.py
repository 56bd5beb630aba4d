"""Settings sweep: runtime and peak memory per (sequence length, inference setting).

Each point runs in a fresh subprocess, so its peak RSS is its own; on CUDA the peak
allocated/reserved counters are reset after a warm-up forward pass, and the timed pass is
CUDA-synchronised. The table feeds :mod:`eksfold.memory.costmodel` (fits and
leave-one-length-out errors are printed) and, committed under ``profiles/<name>/``, the
automatic settings.

    eksfold bench settings --preset demo --lengths 32,64,96,128 --settings default,chunk,lma \
        --profile cpu-2core
    eksfold bench settings --cameo-check --budget-mb 6000 --profile cpu-2core
    eksfold bench settings --preset tiny --lengths 32,64,96 --settings default \
        --templates 0,4,off --profile cpu-2core        # settings-tiny-templates.csv
    eksfold bench settings --preset of3-tiny --warm --lengths 32,96,160,224,288 \
        --settings predict,low_mem,lma --device cpu --profile cpu-2core   # OpenFold3, by tokens

``--templates``: each point also with that many template structures (``off``: the template
stack switched off, as presets trained without templates build the network). OpenFold pads
the template features to the preset's ``max_templates`` (4) in prediction, so a template
preset's fold runs the template stack on four (masked) templates even with no hits: ``0`` and
``4`` differ only by the hits' content, ``off`` shows what the stack itself costs.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..memory.measure import run_point
from .common import parse_lengths

COLUMNS = ("length", "setting", "preset", "templates", "template_stack", "device", "device_name", "threads", "warmup",
           "inference_s", "feature_s", "model_load_s", "peak_rss_mb", "peak_cuda_alloc_mb",
           "peak_cuda_reserved_mb", "untrained", "error")


def settings_sweep(lengths, settings, preset="demo", device="auto", weights="random",
                   threads=None, csv=None, log=print, templates=(0,)):
    """Every (length, setting, templates) point; appends to ``csv`` as it goes (a long sweep
    can stop). ``templates``: numbers of template structures, or "off" (no template stack)."""
    import pandas as pd

    rows = []
    for length in lengths:
        for setting, n in ((s, t) for s in settings for t in templates):
            t0 = time.perf_counter()
            stack = n != "off"
            row = run_point(length, setting, preset, device, weights, threads,
                            templates=int(n) if stack else 0, template_stack=stack)
            row.setdefault("templates", int(n) if stack else 0)
            row["template_stack"] = stack
            rows.append(row)
            log(f"L={length:5d} {setting:8s} templates={n} {row.get('inference_s')}s "
                f"rss={row.get('peak_rss_mb')}MB cuda={row.get('peak_cuda_reserved_mb')}MB "
                f"({time.perf_counter() - t0:.0f}s wall) {row.get('error') or ''}")
            if csv:
                df = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
                df.to_csv(csv, index=False)
    return pd.DataFrame(rows).reindex(columns=list(COLUMNS))


def warm_sweep(lengths, settings, preset, device="auto", weights="random", threads=None,
               csv=None, log=print):
    """Per setting, every length folded in ascending order by one warm model (the back end's
    ``measure_series``: OpenFold3's runner child, whose peak per query is measured): one
    model start per setting instead of one per point."""
    import pandas as pd

    from ..models import get_backend

    backend = get_backend(preset)
    if not hasattr(backend, "measure_series"):
        raise SystemExit(f"--warm: preset {preset} ({backend.family}) measures fresh points only")
    rows = []
    for setting in settings:
        t0 = time.perf_counter()

        def said(row):   # each point kept as it comes: a long series can stop
            rows.append(row)
            log(f"L={row['length']:5d} {setting:8s} {row['inference_s']}s "
                f"rss={row['peak_rss_mb']}MB ({time.perf_counter() - t0:.0f}s wall so far)")
            if csv:
                pd.DataFrame(rows).reindex(columns=list(COLUMNS) + WARM_COLUMNS).to_csv(
                    csv, index=False)
        try:
            backend.measure_series(sorted(lengths), setting, preset, device=device,
                                   weights=weights, threads=threads, log=said)
        except Exception as exc:  # noqa: BLE001 - a failed series is a row, the rest go on
            rows.append({"length": None, "setting": setting, "preset": preset,
                         "error": f"{type(exc).__name__}: {str(exc)[-300:]}"})
    df = pd.DataFrame(rows).reindex(columns=list(COLUMNS) + WARM_COLUMNS)
    if csv:
        df.to_csv(csv, index=False)
    return df


WARM_COLUMNS = ["child_cpu_s", "runner_rss_loaded_mb", "runner_rss_start_mb", "tokens",
                "atoms", "series"]


def template_table(df):
    """Mean time and peak memory per (setting, length) with 0 templates, 4 (or the count
    measured) and the stack off, side by side, with the differences to 0 templates."""
    import pandas as pd

    ok = df[df["error"].isna()] if "error" in df else df
    kind = ok["templates"].astype(int).astype(str).where(ok["template_stack"].astype(bool), "off")
    wide = (ok.assign(kind=kind).groupby(["setting", "length", "kind"])
            [["inference_s", "peak_rss_mb"]].mean().unstack("kind"))
    out = pd.DataFrame(index=wide.index)
    for metric, short in (("peak_rss_mb", "mb"), ("inference_s", "s")):
        for k in wide[metric].columns:
            out[f"{short}_{k}"] = wide[metric][k].round(1)
        for k in wide[metric].columns:
            if k != "0":
                out[f"{short}_{k}-0"] = (wide[metric][k] - wide[metric]["0"]).round(1)
    out["points_0"] = ok[kind == "0"].groupby(["setting", "length"]).size()   # repeats averaged
    return out.reset_index()


def profile_dir(name: str) -> Path:
    return Path(__file__).resolve().parent.parent / "profiles" / name


def add_parser(bsub) -> None:
    s = bsub.add_parser("settings", help="runtime and peak memory per length x inference setting")
    s.add_argument("--lengths", default="32,64,96,128")
    s.add_argument("--settings", default="default,chunk,lma",
                   help="comma-separated names from the preset's settings ladder")
    s.add_argument("--preset", default="demo")
    s.add_argument("--device", default="auto")
    s.add_argument("--weights", default="random")
    s.add_argument("--threads", type=int)
    s.add_argument("--templates", default="0",
                   help="comma-separated template counts per point (e.g. 0,4); 'off': the "
                        "template stack switched off (writes settings-PRESET-templates.csv)")
    s.add_argument("--warm", action="store_true",
                   help="one warm model per setting, lengths in ascending order (OpenFold3: "
                        "the runner child's peak per query) instead of a fresh process a point")
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

    suffix = ("" if args.preset == "demo" else f"-{args.preset}") + (
        "-templates" if args.templates != "0" else "")
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
        sweep = warm_sweep if args.warm else settings_sweep
        kw = {} if args.warm else {"templates": args.templates.split(",")}
        df = sweep(parse_lengths(args.lengths), args.settings.split(","), args.preset,
                            args.device, args.weights, args.threads, csv, **kw)
        print(f"sweep took {time.perf_counter() - start:.0f}s")
    print(f"settings sweep: preset={args.preset} weights={args.weights}"
          + (" (UNTRAINED: runtime/memory only)" if args.weights.startswith("random") else ""))
    print(df.drop(columns=["error"]).to_string(index=False))
    model = CostModel.fit(df)
    print(model.describe())
    if "templates" in df:
        print(template_table(df).to_string(index=False))
    if out:
        from ..memory.plots import plot_settings_tradeoff

        base = df[(df["templates"].fillna(0) == 0) & df["template_stack"].fillna(True).astype(bool)] \
            if "templates" in df else df        # the curves' own points, not the template ones
        plot_settings_tradeoff(base, model).savefig(out / f"settings{suffix}.png", dpi=110)
        model.loo_table().to_csv(out / f"settings{suffix}-loo.csv", index=False)
    return 0 if df["error"].isna().all() else 1

