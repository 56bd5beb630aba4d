"""Pipeline overhead: ``eksfold run`` against a bare loop over OpenFold's own calls.

The same targets, alignments, preset and weights are folded three ways, side by side:

- ``bare``: one Python process that builds the model once and loops over OpenFold's
  ``DataPipeline`` -> ``FeaturePipeline`` -> ``model(batch)`` -> ``protein.to_pdb`` (no eksfold);
- ``warm``: ``eksfold run --stages infer`` (driver + one warm worker, records, summary);
- ``cold``: one worker process per target (``python -m eksfold.worker --target``), which is how
  every unit ran before warm workers (model built per target).

Each is timed as a whole command (process start to exit). Overhead = time / bare - 1.

    eksfold bench overhead --targets 16 --preset demo --csv overhead.csv
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WAYS = ("bare", "warm", "cold")


def _timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start, proc.stdout


def bare_loop(root: str) -> None:
    """Fold every target of an aligned run with OpenFold's calls only (model built once)."""
    import numpy as np
    import torch

    # the reference loop is OpenFold's own calls, on purpose: what eksfold's harness adds
    from ..models.openfold2.compat import prepare
    prepare()
    from openfold.data import data_pipeline, feature_pipeline
    from openfold.model.model import AlphaFold
    from openfold.np import protein
    from openfold.utils.tensor_utils import tensor_tree_map

    from ..models.openfold2.presets import build_openfold_config, get_preset
    from ..run import Run

    run = Run.open(root)
    config = build_openfold_config(get_preset(run.config.infer.preset))
    torch.manual_seed(run.config.infer.seed)
    model = AlphaFold(config).eval()
    out_dir = Path(tempfile.mkdtemp(prefix="eksfold-bare-"))
    for target in run.targets:
        aln = Path(run.store.local_path(f"targets/{target.id}/align"))
        fasta = out_dir / f"{target.id}.fasta"
        fasta.write_text(f">{target.id}\n{target.sequence}\n")
        raw = data_pipeline.DataPipeline(template_featurizer=None).process_fasta(
            fasta_path=str(fasta), alignment_dir=str(aln))
        feats = feature_pipeline.FeaturePipeline(config.data).process_features(raw, mode="predict")
        batch = {k: torch.as_tensor(v) for k, v in feats.items()}
        start = time.perf_counter()
        with torch.no_grad():
            result = model(batch)
        # the forward pass alone, to tell pipeline overhead from forward-pass noise
        print(json.dumps({"target": target.id, "length": target.length,
                          "inference_s": round(time.perf_counter() - start, 3)}), flush=True)
        feats = tensor_tree_map(lambda x: np.array(x[..., -1].cpu()), feats)
        result = tensor_tree_map(lambda x: np.array(x.cpu()), result)
        b = np.repeat(result["plddt"][..., None], 37, axis=-1)
        prot = protein.from_prediction(features=feats, result=result, b_factors=b)
        (out_dir / f"{target.id}.pdb").write_text(protein.to_pdb(prot))


def overhead_benchmark(n_targets: int = 16, preset: str = "demo", fasta: str | None = None,
                       database: str | None = None, workdir: str | None = None,
                       ways=WAYS):
    """Time the three ways on the ``n_targets`` shortest targets; returns a DataFrame."""
    import pandas as pd

    from ..config import DatabaseConfig, default_databases
    from ..pipeline import run_pipeline
    from ..progress import TextProgress
    from ..site import target_set

    fasta = fasta or str(target_set("cameo92"))
    dbs = DatabaseConfig(uniref90=database) if database else default_databases()
    base = Path(workdir or tempfile.mkdtemp(prefix="eksfold-overhead-"))
    py, rows = sys.executable, []
    roots = {}
    for way in ways:   # identical runs: same targets, alignments, settings and weights
        roots[way] = str(base / way)
        # OpenFold's settings as the bare loop uses them (no chunking ladder, no auto choice)
        run_pipeline(fasta, roots[way], preset=preset, weights="random", databases=dbs,
                     limit=n_targets, shortest=True, stages=("align",), settings="openfold",
                     reporter=TextProgress(bars=False, stream=open("/dev/null", "w")))
    for way in ways:
        forward = None
        if way == "bare":
            secs, out = _timed([py, "-m", "eksfold.bench.overhead", "--bare", roots[way]])
            forward = sum(json.loads(line).get("inference_s", 0.0)
                          for line in out.splitlines() if line.startswith("{"))
        elif way == "warm":
            secs, _ = _timed([py, "-m", "eksfold.cli", "run", fasta, "--root", roots[way],
                           "--preset", preset, "--limit", str(n_targets), "--shortest",
                           "--stages", "infer", "--no-relax", "--settings", "openfold",
                           *(["--uniref90", database] if database else [])])
        else:
            secs = 0.0
            from ..run import Run
            for target in Run.open(roots[way]).targets:
                secs += _timed([py, "-m", "eksfold.worker", "--root", roots[way],
                                "--stage", "infer", "--target", target.id])[0]
        if way != "bare":
            forward = float(fixed_costs(roots[way]).inference_s.sum())
        rows.append({"way": way, "targets": n_targets, "preset": preset, "seconds": round(secs, 2),
                     "forward_s": round(forward, 2)})
        print(f"{way}: {secs:.1f} s", flush=True)
    df = pd.DataFrame(rows)
    bare = df.loc[df.way == "bare", "seconds"]
    if len(bare):
        df["overhead"] = (df.seconds / float(bare.iloc[0]) - 1).round(4)
        # what is neither a forward pass nor in the bare loop: the pipeline's own cost
        bare_rest = float(bare.iloc[0]) - float(df.loc[df.way == "bare", "forward_s"].iloc[0])
        df["rest_s"] = (df.seconds - df.forward_s).round(2)
        df["overhead_beyond_forward"] = ((df.rest_s - bare_rest) / float(bare.iloc[0])).round(4)
    return df, roots


def fixed_costs(root: str):
    """Per-unit cost split from the unit records of an inference run (one row per unit)."""
    import pandas as pd

    from ..run import Run

    run, rows = Run.open(root), []
    for target in run.targets:
        rec = run.record("infer", target.id)
        if rec is None or not rec.done:
            continue
        m, fixed = rec.metrics, rec.metrics.get("fixed_cost", {})
        rows.append({"target": target.id, "length": target.length, "unit_wall_s": rec.wall_s,
                     "worker_start_s": fixed.get("worker_start_s"),
                     "stage_open_s": fixed.get("stage_open_s"),
                     "model_load_s": m.get("model_load_s"), "feature_s": m.get("feature_s"),
                     "inference_s": m.get("inference_s")})
    return pd.DataFrame(rows)


def add_parser(bsub) -> None:
    p = bsub.add_parser("overhead", help="eksfold run vs a bare OpenFold loop on the same targets")
    p.add_argument("--targets", type=int, default=16, help="the N shortest targets")
    p.add_argument("--preset", default="demo")
    p.add_argument("--fasta", help="target set (default: CAMEO-92)")
    p.add_argument("--database", help="jackhmmer database (default: the installation's)")
    p.add_argument("--ways", default=",".join(WAYS))
    p.add_argument("--workdir", help="where the runs go (default: a temporary folder)")
    p.add_argument("--csv", help="also write the table to this CSV file")
    p.set_defaults(func=_cmd)


def _cmd(args) -> int:
    df, roots = overhead_benchmark(args.targets, args.preset, args.fasta, args.database,
                                   args.workdir, tuple(args.ways.split(",")))
    print(f"pipeline overhead: {args.targets} shortest targets, preset {args.preset}, "
          "UNTRAINED random weights (runtime only)")
    print(df.to_string(index=False))
    for way in ("warm", "cold"):
        if way in roots:
            costs = fixed_costs(roots[way])
            print(f"\n{way}: per-unit cost split (s)")
            print(costs.to_string(index=False))
            if args.csv:
                costs.to_csv(Path(args.csv).with_name(Path(args.csv).stem + f"-{way}-units.csv"),
                             index=False)
    if args.csv:
        df.to_csv(args.csv, index=False)
        plot_overhead(df).savefig(Path(args.csv).with_suffix(".png"), dpi=110)
    return 0


def plot_overhead(df):
    """Bars: wall time of each way, labelled with its overhead over the bare loop."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2), layout="constrained")
    ax = fig.subplots()
    bars = ax.bar(df.way, df.seconds, color=["#757575", "#2e7d32", "#c62828"][:len(df)])
    for bar, over in zip(bars, df.get("overhead", [None] * len(df))):
        if over is not None:
            ax.annotate(f"{over:+.1%}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=9)
    ax.set(ylabel="wall time (s)", title=f"{int(df.targets.iloc[0])} targets, preset "
           f"{df.preset.iloc[0]}: bare OpenFold loop vs eksfold (warm / cold workers)")
    ax.title.set_fontsize(9)
    return fig


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--bare":
        bare_loop(sys.argv[2])
        print(json.dumps({"ok": True}))
    else:
        sys.exit("usage: eksfold bench overhead ...")
