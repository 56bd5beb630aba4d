"""What a report shows for a complex (eksfold.complex_report), on the shipped reference
complexes (wwPDB entries in data/complexes/structures) read with gemmi."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from eksfold import complex_report, plots, views

COMPLEXES = Path(__file__).resolve().parents[1] / "data" / "complexes" / "structures"


def test_tokens_per_chain_follow_openfold3s_tokenisation():
    # 1PZP: 263 residues and two FTA ligands of 23 heavy atoms each (one token per atom)
    assert complex_report.chain_tokens((COMPLEXES / "1pzp-fta.cif").read_text()) == [
        ("A", "polymer", 263), ("A", "ligand", 46)]
    assert complex_report.chain_tokens((COMPLEXES / "4i6p.cif").read_text()) == [
        ("A", "polymer", 84), ("B", "polymer", 82)]


def test_chain_blocks_and_pair_table_from_the_pae_matrix():
    chains = complex_report.chain_tokens((COMPLEXES / "4i6p.cif").read_text())
    spans = complex_report.blocks(chains, 166)
    assert spans == [("A", 0, 84), ("B", 84, 166)]
    assert complex_report.blocks(chains, 170) is None          # does not add up: no blocks
    pae = np.full((166, 166), 2.0)
    pae[:84, 84:] = 10.0       # A aligned, B scored
    pae[84:, :84] = 20.0
    (row,) = complex_report.pair_rows(pae, spans, {"(A, B)": 0.61})
    assert row == {"chains": "A–B", "iptm": 0.61, "pae_ab": 10.0, "pae_ba": 20.0}


def test_the_complex_part_names_interfaces_and_scores():
    text = (COMPLEXES / "4i6p.cif").read_text()
    pae = np.random.default_rng(0).uniform(0, 30, (166, 166))
    html = complex_report.complex_part({"iptm": 0.42, "dockq": 0.8, "dockq_min": 0.7}, text,
                                       pae, {"chain_ptm": {"A": 0.5, "B": 0.4},
                                             "chain_pair_iptm": {"(A, B)": 0.42}}, "4i6p")
    assert "ipTM 0.420" in html and "DockQ 0.800" in html and "lowest interface 0.700" in html
    assert "A–B" in html and "data:image/png;base64," in html
    none = complex_report.complex_part({}, text, pae[:10, :10], {}, "x")
    assert "no reference complex" in none and "chain blocks left out" in none


def test_pae_by_chain_draws_the_block_boundaries():
    fig = plots.plot_pae(np.zeros((166, 166)), blocks=[("A", 0, 84), ("B", 84, 166)])
    ax = fig.axes[0]
    assert [ln.get_xdata()[0] for ln in ax.lines if ln.get_xdata()[0] == ln.get_xdata()[1]] \
        == [84.5]
    assert ax.get_xlabel() == "scored token"


def test_complex_view_colours_each_chain_and_draws_ligands_as_sticks():
    view = views.view_complex(COMPLEXES / "1pzp-fta.cif", title="1pzp")
    page = view._make_html()
    assert views.CHAIN_COLOURS[0] in page and '"stick"' in page and "hetflag" in page
    two = views.view_complex(COMPLEXES / "4i6p.cif")._make_html()
    assert views.CHAIN_COLOURS[0] in two and views.CHAIN_COLOURS[1] in two
    assert "chain B" in two
