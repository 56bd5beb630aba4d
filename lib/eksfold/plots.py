"""Plots (matplotlib) of runs' summary tables and predictions; nothing here runs a run.

Plot functions take a DataFrame with the summary-table columns (docs/DESIGN.md), or one
prediction's pLDDT/PAE arrays, and return a :class:`matplotlib.figure.Figure` (not pyplot, so
notebooks show each figure once). :func:`fit_power_law` gives the scaling exponents drawn on
the runtime and memory plots.

>>> from eksfold import plots
>>> plots.plot_runtime_vs_length(load_summary("runs/demo"))             # doctest: +SKIP
"""
from __future__ import annotations

from functools import partial

import numpy as np
from matplotlib.figure import Figure

from .views import PLDDT_BANDS

def _enable_png_display():
    """Show bare Figures as PNG in IPython (ipykernel registers this only with pyplot)."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import print_figure
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        png = shell.display_formatter.formatters["image/png"]
        if Figure not in png.type_printers:
            png.for_type(Figure, partial(print_figure, fmt="png", base64=True,
                                         bbox_inches="tight"))


def _figure(n: int = 1, ncols: int = 1, size=(6.0, 4.0)):
    """A Figure with ``n`` axes on ``ncols`` columns; ``size`` is one panel's."""
    # Not pyplot: figures are returned, so the inline backend must not show them twice.
    _enable_png_display()
    nrows = -(-n // ncols)
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    return fig, [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]


def fit_power_law(x, y) -> tuple:
    """Least-squares fit of ``log y = a log x + log c``; returns ``(a, c)`` for ``y = c x^a``.

    Non-positive and missing values are ignored; needs two distinct ``x``.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if len(np.unique(x[ok])) < 2:
        raise ValueError("a power-law fit needs at least two distinct positive x values")
    slope, intercept = np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)
    return float(slope), float(np.exp(intercept))


# A scaling exponent is drawn only where the data can support one: enough points, enough
# distinct lengths, and lengths spanning a factor FIT_MIN_SPAN (over a factor 2 the noise of a
# few timings swamps the slope). Otherwise the plot shows the points and says why.
FIT_MIN_POINTS = 8
FIT_MIN_LENGTHS = 5
FIT_MIN_SPAN = 3.0


def fit_supported(x) -> str | None:
    """None when a power-law fit over ``x`` is meaningful, else why not (for the plot)."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x) & (x > 0)]
    distinct = len(np.unique(x))
    if len(x) < FIT_MIN_POINTS or distinct < FIT_MIN_LENGTHS:
        return (f"{len(x)} points, {distinct} lengths "
                f"(a fit needs {FIT_MIN_POINTS}, {FIT_MIN_LENGTHS})")
    if x.max() / x.min() < FIT_MIN_SPAN:
        return (f"lengths {x.min():g}-{x.max():g} span x{x.max() / x.min():.1f} "
                f"(a fit needs x{FIT_MIN_SPAN:g})")
    return None


def _groups(df, by):
    by = [c for c in ([by] if isinstance(by, str) else list(by or [])) if c in df.columns]
    if not by:
        return [("all", df)]
    return [(" / ".join(map(str, key if isinstance(key, tuple) else (key,))), g)
            for key, g in df.groupby(by, dropna=False, sort=True)]


def plot_scaling(df, y: str, *, x: str = "length", by=("preset", "device"),
                 ylabel: str | None = None, title: str | None = None) -> Figure:
    """Log-log scatter of ``y`` vs ``x`` per group, with fitted scaling exponents.

    Each group (e.g. preset / device) gets its points and, where :func:`fit_supported`
    allows, its fit ``y = c x^a``; the exponents (or why a group has none) are printed in a
    box on the plot.
    """
    fig, (ax,) = _figure()
    data = df[[c for c in {x, y, *([by] if isinstance(by, str) else by or [])}
               if c in df.columns]].dropna(subset=[x, y])
    data = data[(data[x] > 0) & (data[y] > 0)]
    fits = []
    for (name, g), colour in zip(_groups(data, by), _colours()):
        ax.scatter(g[x], g[y], s=18, color=colour, alpha=0.8)
        label = name
        why_not = fit_supported(g[x])
        if why_not is None:
            a, c = fit_power_law(g[x], g[y])
            xs = np.geomspace(g[x].min(), g[x].max(), 50)
            ax.plot(xs, c * xs ** a, color=colour, lw=1.5)
            fits.append(f"{name}: {y} ~ {x}^{a:.2f}")
        else:
            fits.append(f"{name}: no fit, points only:\n{why_not}")
        ax.plot([], [], color=colour, marker="o", label=label)
    ax.set(xscale="log", yscale="log", xlabel=x.replace("_", " "),
           ylabel=ylabel or y.replace("_", " "), title=title or "")
    if fits:
        ax.text(0.02, 0.98, "\n".join(fits), transform=ax.transAxes, va="top", fontsize=9,
                bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8})
    if len(ax.get_legend_handles_labels()[0]) > 1:
        ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def _colours():
    from matplotlib import colormaps
    return iter(colormaps["tab10"].colors * 10)


def plot_runtime_vs_length(df, time_col: str = "inference_s", by=("preset", "device")) -> Figure:
    """Inference runtime vs sequence length per preset/device, with scaling exponents."""
    return plot_scaling(df, time_col, by=by, ylabel=f"{time_col.replace('_s', '')} time (s)",
                        title="Inference runtime vs sequence length")


def plot_alignment_runtime(df, time_col: str = "align_wall_s", by=None) -> Figure:
    """Alignment (MSA search) wall time vs sequence length, with the scaling exponent."""
    return plot_scaling(df, time_col, by=by, ylabel="alignment wall time (s)",
                        title="Alignment runtime vs sequence length")


def plot_relax_cost(df, time_col: str = "relax_s", by=None) -> Figure:
    """Amber relaxation time vs sequence length (the relax stage), with the exponent."""
    return plot_scaling(df, time_col, by=by, ylabel="relaxation time (s)",
                        title="Relaxation cost vs sequence length")


def plot_memory_vs_length(df, by=("preset", "device")) -> Figure:
    """Peak memory vs length: GPU memory on CUDA rows, the unit's own peak RSS elsewhere.

    RSS peaks recorded as a process's lifetime figure (``infer_peak_rss_scope`` "process":
    ``ru_maxrss`` of a warm worker, cumulative over its units) are left out; a table without
    that column (a benchmark's: one fresh process per point) is taken as it is."""
    from .memory.usage import own_peak

    data = df.copy()
    column = lambda name: data[name] if name in data else np.nan  # noqa: E731
    cuda = data["device"].astype(str).str.startswith("cuda") if "device" in data else False
    data["peak_mb"] = np.where(cuda, column("peak_cuda_mb"),
                               np.where(own_peak(data), column("infer_peak_rss_mb"), np.nan))
    return plot_scaling(data, "peak_mb", by=by, ylabel="peak memory (MB; GPU on cuda, RSS on cpu)",
                        title="Peak memory vs sequence length")


def plot_msa_depth_vs_plddt(df, by="preset") -> Figure:
    """Mean pLDDT against MSA depth (log scale), with the pLDDT bands shaded."""
    fig, (ax,) = _figure()
    _shade_plddt_bands(ax, axis="y")
    data = df.dropna(subset=["msa_depth", "mean_plddt"])
    for (name, g), colour in zip(_groups(data, by), _colours()):
        ax.scatter(g["msa_depth"].clip(lower=1), g["mean_plddt"], s=20, color=colour, label=name)
    ax.set(xscale="log", ylim=(0, 100), xlabel="MSA depth (sequences)", ylabel="mean pLDDT",
           title="MSA depth vs mean pLDDT")
    ax.legend(fontsize=8)
    return fig


def plot_template_coverage_vs_plddt(df, by="preset") -> Figure:
    """Mean pLDDT against the top template's query coverage (0: no template used)."""
    fig, (ax,) = _figure()
    _shade_plddt_bands(ax, axis="y")
    searched = (df.dropna(subset=["templates_used", "mean_plddt"])
                if {"templates_used", "mean_plddt"} <= set(df.columns) else df.iloc[0:0])
    if searched.empty:
        ax.text(0.5, 0.5, "no template search in this run", ha="center", va="center",
                transform=ax.transAxes)
    else:
        searched = searched.assign(coverage=searched.get("top_template_coverage").fillna(0.0)
                                   .where(searched["templates_used"] > 0, 0.0))
        for (name, g), colour in zip(_groups(searched, by), _colours()):
            ax.scatter(g["coverage"], g["mean_plddt"], s=20, color=colour, label=name)
        ax.legend(fontsize=8)
    ax.set(xlim=(-0.02, 1.02), ylim=(0, 100), xlabel="top template coverage of the query",
           ylabel="mean pLDDT", title="Template coverage vs mean pLDDT")
    return fig


def _shade_plddt_bands(ax, axis="y"):
    edges = [100] + [b for b, _, _ in PLDDT_BANDS[:-1]] + [0]
    span = ax.axhspan if axis == "y" else ax.axvspan
    for (_, colour, _), hi, lo in zip(PLDDT_BANDS, edges[:-1], edges[1:]):
        span(lo, hi, color=colour, alpha=0.12, lw=0)


def plot_plddt(plddt, title: str | None = None) -> Figure:
    """Per-residue pLDDT along the sequence, with the confidence bands shaded."""
    fig, (ax,) = _figure(size=(7.0, 2.8))
    _shade_plddt_bands(ax)
    ax.plot(np.arange(1, len(plddt) + 1), plddt, color="black", lw=1)
    ax.set(ylim=(0, 100), xlabel="residue", ylabel="pLDDT", title=title or "")
    return fig


def plot_pae(pae, title: str | None = None, vmax: float = 30.0, blocks=None) -> Figure:
    """Predicted aligned error matrix (Å) as a heatmap, AlphaFold style. ``blocks``:
    ``(chain id, first token, end)`` per chain of a complex, drawn as lines and labels."""
    fig, (ax,) = _figure(size=(4.8, 4.0))
    image = ax.imshow(np.asarray(pae), cmap="Greens_r", vmin=0, vmax=vmax,
                      extent=(0.5, len(pae) + 0.5, len(pae) + 0.5, 0.5))
    fig.colorbar(image, ax=ax, label="expected position error (Å)")
    unit = "residue" if not blocks else "token"
    ax.set(xlabel=f"scored {unit}", ylabel=f"aligned {unit}", title=title or "PAE")
    if blocks:
        for _, _, end in blocks[:-1]:
            ax.axhline(end + 0.5, color="black", lw=0.8)
            ax.axvline(end + 0.5, color="black", lw=0.8)
        centres = [(start + end) / 2 + 0.5 for _, start, end in blocks]
        labels = [str(cid) for cid, _, _ in blocks]
        top = ax.secondary_xaxis("top")
        top.set_xticks(centres, labels)
        right = ax.secondary_yaxis("right")
        right.set_yticks(centres, labels)
    return fig


ACCURACY = {"tm_score": "TM-score", "gdt_ts": "GDT-TS", "lddt_ca": "lDDT-Cα", "rmsd": "RMSD (Å)"}


def plot_accuracy(df, columns=tuple(ACCURACY), by="preset") -> Figure:
    """Distributions (histograms) of accuracy metrics, one panel per metric, per group."""
    present = [m for m in columns if m in df.columns and df[m].notna().any()]
    if not present:
        raise ValueError(f"no accuracy columns with values among {list(columns)}")
    fig, axes = _figure(len(present), ncols=min(2, len(present)), size=(4.0, 3.0))
    for ax, m in zip(axes, present):
        data = df.dropna(subset=[m])
        top = max(1.0, float(data[m].max())) if m == "rmsd" else 1.0
        for (name, g), colour in zip(_groups(data, by), _colours()):
            ax.hist(g[m], bins=np.linspace(0, top, 21), alpha=0.6, color=colour,
                    label=f"{name} (median {g[m].median():.2f})")
        ax.set(xlabel=ACCURACY.get(m, m), ylabel="targets")
        ax.legend(fontsize=7)
    fig.suptitle("Accuracy against experimental structures")
    return fig
