"""Two or more runs over the targets they share: per-target deltas and their plots.

``eksfold report RUN_A RUN_B ...`` renders ``compare.ipynb``, which calls these. Each run is
compared with the first (the baseline): ``delta = run - baseline`` for confidence (pLDDT,
pTM), accuracy (TM-score, lDDT-Cα, GDT-TS, RMSD), time (alignment, inference, relaxation)
and memory (inference peak).

>>> table = shared_table(["runs/jackhmmer", "runs/mmseqs2"])          # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np

from .errors import EksfoldError

METRICS = {  # column -> (label, better when higher)
    "mean_plddt": ("mean pLDDT", True), "ptm": ("pTM", True),
    "tm_score": ("TM-score", True), "lddt_ca": ("lDDT-Cα", True), "gdt_ts": ("GDT-TS", True),
    "rmsd": ("RMSD (Å)", False),
    "align_wall_s": ("alignment s", False), "inference_s": ("inference s", False),
    "relax_s": ("relax s", False), "infer_peak_rss_mb": ("inference peak MB", False),
    "peak_cuda_mb": ("GPU peak MB", False), "msa_depth": ("MSA depth", True),
}
DELTA_PLOTS = ("mean_plddt", "tm_score", "inference_s", "infer_peak_rss_mb")


def run_labels(roots) -> list[str]:
    """Short, distinct names for runs: the last part of each root (with its parent when two
    share it)."""
    parts = [PurePosixPath(str(r).rstrip("/").split("://")[-1]).parts for r in roots]
    labels = [p[-1] if p else str(r) for p, r in zip(parts, roots)]
    if len(set(labels)) < len(labels):
        labels = ["/".join(p[-2:]) for p in parts]
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({i + 1})" for i, label in enumerate(labels)]
    return labels


def load_runs(roots):
    """``(labels, [Run], [summary DataFrame])`` of the runs, in the order given."""
    from .results import report_summary
    from .run import Run

    if len(roots) < 2:
        raise EksfoldError("a comparison needs two or more runs")
    runs = [Run.open(str(r)) for r in roots]
    return run_labels(roots), runs, [report_summary(run) for run in runs]


def shared_table(frames, labels):
    """One row per target present in every run: ``<metric>[<label>]`` for each run and
    ``delta <metric>[<label>]`` (run minus the first run) for the others."""
    import pandas as pd

    shared = set.intersection(*(set(df["target"].dropna()) for df in frames))
    if not shared:
        raise EksfoldError(f"the runs {', '.join(labels)} share no target")
    base = frames[0]
    order = [t for t in base["target"] if t in shared]
    out = pd.DataFrame({"target": order})
    out["length"] = base.set_index("target").loc[order, "length"].to_numpy()
    for label, df in zip(labels, frames):
        indexed = df.drop_duplicates("target").set_index("target").loc[order]
        for column in METRICS:
            if column in indexed:
                out[f"{column}[{label}]"] = pd.to_numeric(indexed[column], errors="coerce").to_numpy()
    for label in labels[1:]:
        for column in METRICS:
            a, b = f"{column}[{labels[0]}]", f"{column}[{label}]"
            if a in out and b in out:
                out[f"delta {column}[{label}]"] = out[b] - out[a]
    return out


def delta_summary(table, labels):
    """Mean and median of each delta, and how many targets got better / worse."""
    import pandas as pd

    rows = []
    for label in labels[1:]:
        for column, (name, higher) in METRICS.items():
            key = f"delta {column}[{label}]"
            if key not in table or table[key].notna().sum() == 0:
                continue
            d = table[key].dropna()
            better = (d > 0).sum() if higher else (d < 0).sum()
            worse = (d < 0).sum() if higher else (d > 0).sum()
            rows.append({"run": label, "metric": name, "mean delta": d.mean(),
                         "median delta": d.median(), "better": int(better),
                         "worse": int(worse), "targets": len(d)})
    return pd.DataFrame(rows)


def plot_deltas(table, labels, metrics=DELTA_PLOTS):
    """One panel per metric: each run's value against the baseline's, per target, with the
    y = x line (points above it: higher in that run)."""
    from .plots import _colours, _figure

    present = [m for m in metrics if f"{m}[{labels[0]}]" in table
               and table[f"{m}[{labels[0]}]"].notna().any()]
    if not present:
        raise EksfoldError("no metric with values in every run to compare")
    fig, axes = _figure(len(present), ncols=min(2, len(present)), size=(4.0, 3.4))
    for ax, metric in zip(axes, present):
        x = table[f"{metric}[{labels[0]}]"]
        lo, hi = np.nanmin(x), np.nanmax(x)
        for label, colour in zip(labels[1:], _colours()):
            y = table.get(f"{metric}[{label}]")
            if y is None:
                continue
            ax.scatter(x, y, s=22, color=colour, label=label)
            lo, hi = min(lo, np.nanmin(y)), max(hi, np.nanmax(y))
        pad = (hi - lo) * 0.08 or 1.0
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", lw=1, ls="--")
        name = METRICS[metric][0]
        ax.set(xlabel=f"{name} · {labels[0]}", ylabel=f"{name} · other run", title=name)
        ax.legend(fontsize=7)
    fig.suptitle(f"Per-target values against {labels[0]} (dashed: equal)")
    return fig
