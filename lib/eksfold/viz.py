"""3D views (py3Dmol) and plots (matplotlib) of runs; nothing here runs or changes a run.

3D views colour predictions by pLDDT (the B-factor column) with AlphaFold's colour bands and
can superpose them on the experimental reference (grey). 3Dmol.js comes from the npm package
``3dmol`` installed at set-up (``tools/fetch_3dmol.sh``) and is inlined into the page, so views
render with no internet, in JupyterLab and in exported HTML reports.

Plot functions take a DataFrame with the summary-table columns (docs/DESIGN.md) and return a
:class:`matplotlib.figure.Figure`.

>>> from eksfold import viz
>>> viz.offline_3dmol()                                 # doctest: +SKIP
>>> viz.view_structure("unrelaxed.pdb", reference="7skh.B.pdb")        # doctest: +SKIP
>>> viz.plot_runtime_vs_length(load_summary("runs/demo"))             # doctest: +SKIP
"""
from __future__ import annotations

import html
import os
from functools import partial
from pathlib import Path

import numpy as np
import py3Dmol
from matplotlib.figure import Figure

from . import metrics
from .errors import MissingDependencyError

THREEDMOL_VERSION = "2.5.5"  # = the npm version py3Dmol 2.5.5 loads from its CDN
THREEDMOL_MARKER = "data-eksfold-3dmol"  # lets report.py find and de-duplicate inlined copies
# AlphaFold DB's pLDDT bands: (lower bound, colour, label)
PLDDT_BANDS = ((90, "#0053D6", "Very high (pLDDT > 90)"), (70, "#65CBF3", "Confident (70-90)"),
               (50, "#FFDB13", "Low (50-70)"), (-np.inf, "#FF7D45", "Very low (< 50)"))
REFERENCE_COLOUR = "#A0A0A0"
_inlined_in_kernel = False


def threedmol_js_path() -> Path:
    """Path of ``3Dmol-min.js`` from the set-up cache (or ``$EKSFOLD_3DMOL_JS``)."""
    root = Path(__file__).resolve().parents[2]  # repository root (editable install)
    path = Path(os.environ.get("EKSFOLD_3DMOL_JS")
                or root / ".setup/npm/node_modules/3dmol/build/3Dmol-min.js")
    if not path.is_file():
        raise MissingDependencyError(
            f"3dmol@{THREEDMOL_VERSION} (npm)",
            f"{path} is missing. Run: make setup (or tools/fetch_3dmol.sh)")
    return path


def threedmol_script() -> str:
    """``<script>`` that defines ``$3Dmol`` inline and tells py3Dmol it is loaded.

    py3Dmol's viewer HTML fetches 3Dmol.js from a CDN unless ``$3Dmolpromise`` exists; this
    defines it (resolved) after the library, so viewers on the page need no network.
    """
    js = threedmol_js_path().read_text().replace("</script", "<\\/script")
    # Hide AMD/CommonJS globals so the UMD bundle always registers window.$3Dmol.
    return (f'<script {THREEDMOL_MARKER}="{THREEDMOL_VERSION}">\n'
            f"(function (define, exports, module) {{\n{js}\n}}).call(window);\n"
            "window.$3Dmolpromise = Promise.resolve();\n</script>")


def offline_3dmol():
    """Inline 3Dmol.js into the notebook page; call once near the top of a notebook."""
    global _inlined_in_kernel
    from IPython.display import HTML

    _inlined_in_kernel = True
    return HTML(threedmol_script())


def plddt_colour(value: float) -> str:
    """Colour of a pLDDT value (0-100) in AlphaFold's bands."""
    return next(colour for low, colour, _ in PLDDT_BANDS if value > low)


def _legend_html(title: str | None, reference: bool) -> str:
    swatch = ('<span style="display:inline-block;width:11px;height:11px;margin-right:3px;'
              'background:{};vertical-align:middle"></span>{}')
    items = [swatch.format(c, html.escape(label)) for _, c, label in PLDDT_BANDS]
    if reference:
        items.append(swatch.format(REFERENCE_COLOUR, "Reference (experimental)"))
    head = f"<b>{html.escape(title)}</b>" if title else ""
    return ('<div style="font:12px sans-serif;display:flex;flex-wrap:wrap;gap:4px 12px;'
            f'margin:2px 0 4px">{head}{"".join(f"<span>{i}</span>" for i in items)}</div>')


class StructureView(py3Dmol.view):
    """A py3Dmol view whose HTML carries a pLDDT legend (and 3Dmol.js, once per kernel).

    Every py3Dmol method works as usual (``view.setStyle(...)``, ``view.zoomTo()``).
    """

    def __init__(self, *args, title: str | None = None, reference: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.legend = _legend_html(title, reference)

    def _make_html(self):
        global _inlined_in_kernel
        prefix = ""
        if not _inlined_in_kernel:  # first view of a session brings the library along
            try:
                prefix, _inlined_in_kernel = threedmol_script(), True
            except MissingDependencyError:
                pass  # fall back to py3Dmol's CDN
        return prefix + self.legend + super()._make_html()

    def _repr_html_(self):
        # py3Dmol's own _repr_html_ publishes a side output and returns None.
        return self._make_html()


def _add_structure(view, model_pdb, reference_pdb, superpose, style, viewer=None):
    """Add a prediction coloured by pLDDT bands (model 0) and a grey reference (model 1)."""
    kw = {} if viewer is None else {"viewer": viewer}
    text = Path(model_pdb).read_text() if "\n" not in str(model_pdb) else model_pdb
    if reference_pdb is not None and superpose:
        text = metrics.superpose(text, reference_pdb)
    chain = metrics.read_chain(text)
    plddt = chain.bfactors * (100 if chain.bfactors.max() <= 1 else 1)  # 0-1 scale too
    view.addModel(text, "pdb", **kw)
    colours = [plddt_colour(p) for p in plddt]
    for _, colour, _ in PLDDT_BANDS:  # one selection per band keeps the JS small
        resi = [int(r) for r, c in zip(chain.resids, colours)
                if c == colour and r.lstrip("-").isdigit()]
        if resi:
            view.setStyle({"model": 0, "resi": resi}, {style: {"color": colour}}, **kw)
    if reference_pdb is not None:
        ref = Path(reference_pdb).read_text() if "\n" not in str(reference_pdb) else reference_pdb
        view.addModel(ref, "pdb", **kw)
        view.setStyle({"model": 1}, {style: {"color": REFERENCE_COLOUR, "opacity": 0.6}}, **kw)
    view.zoomTo(**kw)


def view_structure(model_pdb, reference_pdb=None, *, superpose: bool = True,
                   title: str | None = None, width: int = 480, height: int = 360,
                   style: str = "cartoon", background: str = "white") -> StructureView:
    """3D view of a prediction coloured by pLDDT, optionally on its reference.

    Parameters
    ----------
    model_pdb : str or path-like
        Predicted structure (pLDDT in the B-factor column), path or PDB text.
    reference_pdb : str or path-like, optional
        Experimental structure, drawn in grey.
    superpose : bool
        Move the prediction onto the reference (TM-score superposition,
        :func:`eksfold.metrics.superpose`).
    title : str, optional
        Shown before the legend.
    width, height : int
        Canvas size in pixels.
    style : str
        3Dmol style: ``"cartoon"``, ``"stick"``, ``"sphere"``, ``"line"``.
    background : str
        Canvas colour.

    Returns
    -------
    StructureView
        Displays itself in a notebook; a py3Dmol view for further styling.
    """
    view = StructureView(width=width, height=height, title=title,
                         reference=reference_pdb is not None)
    view.setBackgroundColor(background)
    _add_structure(view, model_pdb, reference_pdb, superpose, style)
    return view


def view_grid(models: dict, references: dict | None = None, *, ncols: int = 3,
              cell: tuple = (300, 260), superpose: bool = True, linked: bool = False,
              style: str = "cartoon", background: str = "white") -> StructureView:
    """A grid of 3D views to compare targets or presets side by side.

    Parameters
    ----------
    models : dict
        ``{label: model_pdb}``; labels are drawn in each cell (e.g. target id or preset).
    references : dict, optional
        ``{label: reference_pdb}`` for the labels that have a reference.
    ncols : int
        Columns of the grid.
    cell : (int, int)
        Width and height of one cell in pixels.
    linked : bool
        Rotate all cells together (useful to compare presets of one target).
    """
    references = references or {}
    nrows = -(-len(models) // ncols)
    ncols = min(ncols, len(models))
    view = StructureView(width=cell[0] * ncols, height=cell[1] * nrows,
                         viewergrid=(nrows, ncols), linked=linked,
                         reference=bool(references))
    view.setBackgroundColor(background)
    for k, (label, pdb) in enumerate(models.items()):
        where = (k // ncols, k % ncols)
        _add_structure(view, pdb, references.get(label), superpose, style, viewer=where)
        view.addLabel(str(label), {"useScreen": True, "position": {"x": 6, "y": 6, "z": 0},
                                   "fontSize": 12, "fontColor": "black",
                                   "backgroundColor": "white", "backgroundOpacity": 0.7},
                      viewer=where)
    return view


# --------------------------------------------------------------------------- plots

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


def _groups(df, by):
    by = [c for c in ([by] if isinstance(by, str) else list(by or [])) if c in df.columns]
    if not by:
        return [("all", df)]
    return [(" / ".join(map(str, key if isinstance(key, tuple) else (key,))), g)
            for key, g in df.groupby(by, dropna=False, sort=True)]


def plot_scaling(df, y: str, *, x: str = "length", by=("preset", "device"),
                 ylabel: str | None = None, title: str | None = None) -> Figure:
    """Log-log scatter of ``y`` vs ``x`` per group, with fitted scaling exponents.

    Each group (e.g. preset / device) gets its points and its fit ``y = c x^a``; the
    exponents are printed in the legend and in a box on the plot.
    """
    fig, (ax,) = _figure()
    data = df[[c for c in {x, y, *([by] if isinstance(by, str) else by or [])}
               if c in df.columns]].dropna(subset=[x, y])
    data = data[(data[x] > 0) & (data[y] > 0)]
    fits = []
    for (name, g), colour in zip(_groups(data, by), _colours()):
        ax.scatter(g[x], g[y], s=18, color=colour, alpha=0.8)
        label = name
        if g[x].nunique() >= 2:
            a, c = fit_power_law(g[x], g[y])
            xs = np.geomspace(g[x].min(), g[x].max(), 50)
            ax.plot(xs, c * xs ** a, color=colour, lw=1.5)
            fits.append(f"{name}: {y} ~ {x}^{a:.2f}")
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


def plot_memory_vs_length(df, by=("preset", "device")) -> Figure:
    """Peak memory vs length: GPU memory on CUDA rows, process RSS elsewhere."""
    data = df.copy()
    column = lambda name: data[name] if name in data else np.nan  # noqa: E731
    cuda = data["device"].astype(str).str.startswith("cuda") if "device" in data else False
    data["peak_mb"] = np.where(cuda, column("peak_cuda_mb"), column("infer_peak_rss_mb"))
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


def plot_pae(pae, title: str | None = None, vmax: float = 30.0) -> Figure:
    """Predicted aligned error matrix (Å) as a heatmap, AlphaFold style."""
    fig, (ax,) = _figure(size=(4.8, 4.0))
    image = ax.imshow(np.asarray(pae), cmap="Greens_r", vmin=0, vmax=vmax,
                      extent=(0.5, len(pae) + 0.5, len(pae) + 0.5, 0.5))
    fig.colorbar(image, ax=ax, label="expected position error (Å)")
    ax.set(xlabel="scored residue", ylabel="aligned residue", title=title or "PAE")
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
