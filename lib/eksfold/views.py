"""3D views of predictions (py3Dmol); nothing here runs or changes a run.

Views colour predictions by pLDDT (the B-factor column) with AlphaFold's colour bands and can
superpose them on the experimental reference (grey). 3Dmol.js comes from the npm package
``3dmol`` installed at set-up (``tools/fetch_3dmol.sh``) and is inlined into the page, so views
render with no internet, in JupyterLab and in exported HTML reports.

>>> from eksfold import views
>>> views.offline_3dmol()                                               # doctest: +SKIP
>>> views.view_structure("unrelaxed.pdb", reference="7skh.B.pdb")       # doctest: +SKIP
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import py3Dmol

from . import metrics
from .errors import MissingDependencyError
from .structure_io import is_mmcif, source_text
from .structures import read_chain

THREEDMOL_VERSION = "2.5.5"  # = the npm version py3Dmol 2.5.5 loads from its CDN
THREEDMOL_MARKER = "data-eksfold-3dmol"  # lets report.py find and de-duplicate inlined copies
# AlphaFold DB's pLDDT bands: (lower bound, colour, label)
PLDDT_BANDS = ((90, "#0053D6", "Very high (pLDDT > 90)"), (70, "#65CBF3", "Confident (70-90)"),
               (50, "#FFDB13", "Low (50-70)"), (-np.inf, "#FF7D45", "Very low (< 50)"))
REFERENCE_COLOUR = "#A0A0A0"
_inlined_in_kernel = False


def threedmol_js_path() -> Path:
    """Path of ``3Dmol-min.js`` from the npm package set-up installed (:mod:`eksfold.site`:
    ``$EKSFOLD_3DMOL_JS`` or the location ``make setup`` recorded)."""
    from .site import threedmol_js

    path = threedmol_js() or Path("3Dmol-min.js (no location recorded)")
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


_SWATCH = ('<span style="display:inline-block;width:11px;height:11px;margin-right:3px;'
           'background:{};vertical-align:middle"></span>{}')


def _legend_html(title: str | None, reference: bool) -> str:
    items = [_SWATCH.format(c, html.escape(label)) for _, c, label in PLDDT_BANDS]
    if reference:
        items.append(_SWATCH.format(REFERENCE_COLOUR, "Reference (experimental)"))
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


def _model_text(structure) -> tuple[str, str]:
    """Text and 3Dmol format (``"pdb"`` or ``"cif"``) of a path or text; gzip files too."""
    text = source_text(structure)[0]
    return text, "cif" if is_mmcif(text) else "pdb"


def _add_structure(view, model_pdb, reference_pdb, superpose, style, viewer=None):
    """Add a prediction coloured by pLDDT bands (model 0) and a grey reference (model 1)."""
    kw = {} if viewer is None else {"viewer": viewer}
    text, fmt = _model_text(model_pdb)
    if reference_pdb is not None and superpose:
        text = metrics.superpose(text, reference_pdb)  # same format as the model
    chain = read_chain(text)
    plddt = chain.bfactors * (100 if chain.bfactors.max() <= 1 else 1)  # 0-1 scale too
    view.addModel(text, fmt, **kw)
    colours = [plddt_colour(p) for p in plddt]
    for _, colour, _ in PLDDT_BANDS:  # one selection per band keeps the JS small
        resi = [int(r) for r, c in zip(chain.resids, colours)
                if c == colour and r.lstrip("-").isdigit()]
        if resi:
            view.setStyle({"model": 0, "resi": resi}, {style: {"color": colour}}, **kw)
    if reference_pdb is not None:
        view.addModel(*_model_text(reference_pdb), **kw)
        view.setStyle({"model": 1}, {style: {"color": REFERENCE_COLOUR, "opacity": 0.6}}, **kw)
    view.zoomTo(**kw)


def view_structure(model_pdb, reference_pdb=None, *, superpose: bool = True,
                   title: str | None = None, width: int = 480, height: int = 360,
                   style: str = "cartoon", background: str = "white") -> StructureView:
    """3D view of a prediction coloured by pLDDT, optionally on its reference.

    Parameters
    ----------
    model_pdb : str or path-like
        Predicted structure (pLDDT in the B-factor column): a PDB or mmCIF path
        (``unrelaxed.pdb``, ``unrelaxed.cif``, ``.gz`` too) or its text.
    reference_pdb : str or path-like, optional
        Experimental structure (PDB or mmCIF), drawn in grey.
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


# one colour per chain of a complex (colour-blind-safe Okabe-Ito order), ligands as sticks
CHAIN_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
                 "#000000")


def view_complex(model, *, title: str | None = None, width: int = 480, height: int = 360,
                 background: str = "white") -> StructureView:
    """3D view of a predicted complex: one colour per chain (cartoon), ligands as sticks in
    their chain's colour. ``model``: PDB or mmCIF, a path or its text. Returns the view and
    leaves the chain -> colour key in ``view.legend``."""
    from .structure_io import load_structure

    text, fmt = _model_text(model)
    st, _ = load_structure(text)
    view = StructureView(width=width, height=height, title=title)
    view.setBackgroundColor(background)
    view.addModel(text, fmt)
    key = []
    for i, chain in enumerate(st[0]):
        colour = CHAIN_COLOURS[i % len(CHAIN_COLOURS)]
        # 3Dmol reads the author chain id (PDB) or the label_asym_id (mmCIF)
        view.setStyle({"chain": chain.name}, {"cartoon": {"color": colour}})
        view.addStyle({"chain": chain.name, "hetflag": True},
                      {"stick": {"color": colour, "radius": 0.25}})
        key.append(_SWATCH.format(colour, html.escape(f"chain {chain.name}")))
    head = f"<b>{html.escape(title)}</b>" if title else ""
    view.legend = ('<div style="font:12px sans-serif;display:flex;flex-wrap:wrap;gap:4px 12px;'
                   f'margin:2px 0 4px">{head}{"".join(f"<span>{k}</span>" for k in key)}</div>')
    view.zoomTo()
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
