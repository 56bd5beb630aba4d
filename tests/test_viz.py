"""eksfold.viz: plots carry data and fitted exponents; 3D views carry pLDDT colours, the
reference, a legend and (once) the offline 3Dmol.js library. Rendering in a real browser is
tested in test_report.py."""
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from eksfold import metrics, views, viz
from eksfold.errors import MissingDependencyError

DATA = Path(__file__).parent / "data" / "structures"


def summary(n=40, seed=0):
    """A synthetic summary table (DESIGN.md columns) with known scaling exponents."""
    rng = np.random.default_rng(seed)
    length = rng.integers(40, 900, n)
    df = pd.DataFrame({
        "target": [f"t{i}" for i in range(n)], "length": length,
        "preset": np.repeat(["tiny", "full"], n // 2),
        "device": np.tile(["cpu", "cuda:0"], n // 2),
        "inference_s": 0.01 * length ** 1.5 * np.exp(rng.normal(0, 0.05, n)),
        "infer_peak_rss_mb": 2.0 * length ** 1.2, "peak_cuda_mb": 0.5 * length ** 2.0,
        "align_wall_s": 0.3 * length ** 1.1, "msa_depth": rng.integers(1, 5000, n),
        "mean_plddt": rng.uniform(30, 95, n),
        "tm_score": rng.uniform(0, 1, n), "gdt_ts": rng.uniform(0, 1, n),
        "lddt_ca": rng.uniform(0, 1, n), "rmsd": rng.uniform(0, 15, n)})
    df.loc[3, "inference_s"] = np.nan  # failed units leave gaps: plots must skip them
    return df


def plotted_points(fig):
    """Number of data points drawn in all axes (scatter collections, lines, bars, images)."""
    count = 0
    for ax in fig.axes:
        count += sum(len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_offsets"))
        count += sum(len(line.get_xdata()) for line in ax.lines)
        count += len([p for p in ax.patches if p.get_height() > 0]) + len(ax.images)
    return count


def calls(html, method):
    """Viewer method calls py3Dmol generated (not the names inside the 3Dmol.js library)."""
    return len(re.findall(rf"viewer(?:grid)?_\d+(?:\[\d+\]\[\d+\])?\.{method}\(", html))


def texts(fig):
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts + [ax.title])


def test_fit_power_law_recovers_known_exponents():
    x = np.geomspace(30, 1000, 25)
    a, c = viz.fit_power_law(x, 0.02 * x ** 1.7)
    assert a == pytest.approx(1.7, abs=1e-10) and c == pytest.approx(0.02, rel=1e-8)
    noisy = 3.0 * x ** 2.2 * np.exp(np.random.default_rng(1).normal(0, 0.1, x.size))
    assert viz.fit_power_law(x, noisy)[0] == pytest.approx(2.2, abs=0.05)
    with pytest.raises(ValueError):
        viz.fit_power_law([100, 100], [1, 2])


def test_runtime_plot_prints_fitted_exponents_per_group():
    df = summary()
    fig = viz.plot_runtime_vs_length(df)
    assert isinstance(fig, Figure)
    exponents = [float(e) for e in re.findall(r"\^([\d.]+)", texts(fig))]
    assert len(exponents) == 4  # tiny/full x cpu/cuda
    assert exponents == pytest.approx([1.5] * 4, abs=0.06)
    assert plotted_points(fig) >= len(df) - 1
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"


def test_memory_plot_uses_gpu_memory_on_cuda_rows():
    fig = viz.plot_memory_vs_length(summary(), by="device")
    fits = dict(re.findall(r"(\S+): peak_mb ~ length\^([\d.]+)", texts(fig)))
    assert float(fits["cpu"]) == pytest.approx(1.2, abs=1e-6)
    assert float(fits["cuda:0"]) == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("plot", [viz.plot_alignment_runtime, viz.plot_msa_depth_vs_plddt,
                                  viz.plot_accuracy])
def test_summary_plots_have_data(plot):
    fig = plot(summary())
    assert isinstance(fig, Figure) and plotted_points(fig) > 10


def test_accuracy_plot_panels_and_missing_columns():
    fig = viz.plot_accuracy(summary())
    assert [ax.get_xlabel() for ax in fig.axes] == ["TM-score", "GDT-TS", "lDDT-Cα", "RMSD (Å)"]
    with pytest.raises(ValueError):
        viz.plot_accuracy(summary().drop(columns=["tm_score", "gdt_ts", "lddt_ca", "rmsd"]))


def test_pae_and_plddt_plots():
    pae = np.random.default_rng(0).uniform(0, 30, (70, 70))
    fig = viz.plot_pae(pae, title="t1")
    assert fig.axes[0].images[0].get_array().shape == (70, 70)
    assert len(viz.plot_plddt(np.linspace(20, 95, 70)).axes[0].lines[0].get_xdata()) == 70


def test_plddt_bands():
    assert [viz.plddt_colour(v) for v in (95, 90, 75, 55, 10)] == \
        ["#0053D6", "#65CBF3", "#65CBF3", "#FFDB13", "#FF7D45"]


@pytest.fixture
def fresh_kernel(monkeypatch):
    """As if no view was shown yet in this session."""
    monkeypatch.setattr(views, "_inlined_in_kernel", False)  # the state lives in views


def first_atom(text):
    """Coordinates field of the first ATOM record."""
    return next(x for x in text.splitlines() if x.startswith("ATOM"))[30:54]


def bands(page):
    """Residue numbers per pLDDT band as styled in a view's HTML."""
    return re.findall(r'setStyle\(\{"model": 0, "resi": \[([\d, ]+)\]\}', page)


def test_view_structure_html(fresh_kernel):
    model, ref = DATA / "7th2.C.pdb", DATA / "7tgi.B.pdb"
    first = viz.view_structure(model, ref, title="7th2.C on 7tgi.B")._repr_html_()
    second = viz.view_structure(model)._repr_html_()
    # The library travels with the first view only, and defines py3Dmol's promise.
    assert first.count(viz.THREEDMOL_MARKER) == 1 and viz.THREEDMOL_MARKER not in second
    assert "$3Dmolpromise = Promise.resolve()" in first
    assert calls(first, "addModel") == 2 and calls(second, "addModel") == 1
    assert "Reference (experimental)" in first and "Reference" not in second
    for _, colour, label in viz.PLDDT_BANDS:
        assert html.escape(label) in second and colour in second
    # B-factors of this crystal structure as pLDDT: every residue in exactly one band.
    chain = metrics.read_chain(model)
    styled = re.findall(r'setStyle\(\{"model": 0, "resi": \[([\d, ]+)\]\}', second)
    assert sorted(int(r) for s in styled for r in s.split(",")) == sorted(map(int, chain.resids))
    # The model is drawn superposed on the reference, not where its file puts it.
    moved = first_atom(metrics.superpose(model, ref))
    assert moved in first and first_atom(model.read_text()) not in first


def test_view_structure_of_mmcif_prediction(fresh_kernel, tmp_path):
    """unrelaxed.cif (eksfold.structures.to_mmcif) draws like unrelaxed.pdb: mmCIF, same bands."""
    from eksfold.structures import to_mmcif

    model, ref = DATA / "7th2.C.pdb", DATA / "7tgi.B.pdb"
    cif = tmp_path / "unrelaxed.cif"
    cif.write_text(to_mmcif(model.read_text()))
    page = viz.view_structure(cif, ref)._repr_html_()
    assert re.search(r'addModel\("data_prediction.*?", *"cif"\)', page, re.S)
    assert re.search(r'addModel\("(?:ATOM|HETATM)[^"]*", *"pdb"\)', page, re.S)  # the reference
    assert bands(page) == bands(viz.view_structure(model, ref)._repr_html_())
    # Superposed: the mmCIF text drawn is the moved one, still mmCIF.
    moved = metrics.superpose(cif, ref)
    assert moved.startswith("data_")
    assert metrics.read_chain(moved).ca[0, 0] != metrics.read_chain(cif).ca[0, 0]


def test_view_grid(fresh_kernel):
    grid = viz.view_grid({"a": DATA / "7tgi.B.pdb", "b": DATA / "7vp6.D.pdb",
                          "c": DATA / "7rup.A.pdb"}, ncols=2)
    page = grid._repr_html_()
    assert "rows: 2, cols: 2" in page and calls(page, "addLabel") == 3
    assert calls(page, "addModel") == 3 and page.count(viz.THREEDMOL_MARKER) == 1


def test_missing_3dmol_has_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("EKSFOLD_3DMOL_JS", str(tmp_path / "absent.js"))
    with pytest.raises(MissingDependencyError, match="make setup"):
        viz.threedmol_script()


def test_3dmol_from_setup_is_the_pinned_version():
    js = viz.threedmol_js_path()
    pkg = js.parent.parent / "package.json"
    assert f'"version": "{viz.THREEDMOL_VERSION}"' in pkg.read_text()
    assert js.stat().st_size > 400_000


@pytest.mark.browser
def test_mmcif_view_draws_in_chromium(fresh_kernel, tmp_path):
    """3Dmol.js parses gemmi's mmCIF: the prediction as unrelaxed.cif draws in a real browser
    about as much of the canvas as the same model as PDB (py3Dmol HTML, networking off)."""
    from test_report import chromium_screenshot, region_of

    from eksfold.structures import to_mmcif

    background = (0xE0, 0xFF, 0xE8)
    model = DATA / "7th2.C.pdb"
    drawn = {}
    for fmt, source in (("cif", to_mmcif(model.read_text())), ("pdb", model)):
        views._inlined_in_kernel = False
        view = viz.view_structure(source, width=400, height=300,
                                  background="#{:02X}{:02X}{:02X}".format(*background))
        page = tmp_path / f"{fmt}.html"
        page.write_text(f"<html><body>{view._repr_html_()}</body></html>")
        shot = chromium_screenshot(page, tmp_path / f"{fmt}.png", window=(500, 400))
        box = region_of(shot, background)
        assert box is not None, f"{fmt}: no viewer canvas"
        canvas = shot[box[1]:box[3], box[0]:box[2]].astype(int)
        drawn[fmt] = np.any(np.abs(canvas - background) > 30, axis=2).mean()
    assert drawn["cif"] > 0.03 and drawn["cif"] == pytest.approx(drawn["pdb"], rel=0.25), drawn


def test_fits_only_where_the_data_support_them():
    """Eight short targets (38-79 residues, the demo) get their points and a note, no exponent;
    the synthetic 40-target table (40-900 residues) gets its fits."""
    demo = pd.DataFrame({"length": [38, 52, 56, 60, 67, 71, 76, 79], "preset": "demo",
                         "device": "cpu", "inference_s": [9, 12, 11, 14, 15, 13, 18, 17.0]})
    fig = viz.plot_runtime_vs_length(demo)
    assert plotted_points(fig) == 8 and not re.search(r"\^\d", texts(fig))
    assert "no fit, points only" in texts(fig) and "span x2.1 (a fit needs x3)" in texts(fig)
    few = demo.assign(length=[40, 40, 80, 80, 160, 160, 320, 320])
    assert "8 points, 4 lengths (a fit needs 8, 5)" in texts(viz.plot_runtime_vs_length(few))
    assert viz.fit_supported(summary()["length"]) is None
    assert len(re.findall(r"\^[\d.]+", texts(viz.plot_runtime_vs_length(summary())))) == 4


def test_template_coverage_plot_and_report_part():
    from eksfold.report_sections import _templates_part

    df = pd.DataFrame({"target": ["a", "b", "c"], "preset": "tiny", "mean_plddt": [80.0, 55.0, 40.0],
                       "templates_used": [2, 1, 0], "top_template_coverage": [0.9, 0.4, None],
                       "template_hits": [5, 3, 0], "template_search_s": [1.2, 0.8, 0.5]})
    fig = viz.plot_template_coverage_vs_plddt(df)
    points = np.concatenate([c.get_offsets() for c in fig.axes[0].collections
                             if len(c.get_offsets())])
    # a target that used no template sits at coverage 0, whatever the hit said
    assert sorted(map(tuple, points.tolist())) == [(0.0, 40.0), (0.4, 55.0), (0.9, 80.0)]
    empty = viz.plot_template_coverage_vs_plddt(df.drop(columns=["templates_used"]))
    assert "no template search" in empty.axes[0].texts[0].get_text()

    row = dict(df.iloc[0], top_template="7sao_A", top_template_identity=0.35,
               top_template_date="2021-10-06")
    part = _templates_part(row)
    assert "5 hits" in part and "2 used" in part and "7sao_A" in part and "2021-10-06" in part
    assert "none used" in _templates_part(dict(df.iloc[2]))
    assert "searched no templates" in _templates_part({"target": "x"})
