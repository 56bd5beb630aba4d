"""Amber relaxation (eksfold.relaxation) on real structures: a CAMEO reference chain completed
with pdbfixer and perturbed with noise, as a network's model would be; plus the timeout,
degenerate-input and missing-atom paths. Every relaxation runs OpenFold's code in OpenMM."""
from __future__ import annotations

import time
from pathlib import Path

import gemmi
import numpy as np
import psutil
import pytest

from eksfold.bench.relax import complete_chain, gap_free_chains, perturb
from eksfold.errors import ConfigError, EksfoldError
from eksfold.relaxation import DEGENERATE, RelaxError, RelaxSettings, degeneracy, relax_structure

STRUCTURES = Path(__file__).parent / "data" / "structures"
SMALL, LARGE = STRUCTURES / "7vp3.C.pdb", STRUCTURES / "7rpn.A.pdb"  # 62 and 252 residues, no gaps


@pytest.fixture(scope="module")
def noisy() -> str:
    return perturb(complete_chain(SMALL), noise_a=0.1, seed=1, plddt=73.0)


@pytest.fixture(scope="module")
def relaxed(noisy):
    return relax_structure(noisy, RelaxSettings(timeout_s=300), "7vp3.C")


def _ca(pdb_text: str) -> np.ndarray:
    chain = gemmi.read_pdb_string(pdb_text)[0][0]
    return np.array([r.find_atom("CA", "*").pos.tolist() for r in chain])


def _relax_children() -> list:
    return [p for p in psutil.Process().children(recursive=True)
            if "eksfold.relaxation" in " ".join(p.cmdline())]


def test_relax_lowers_energy_and_violations(relaxed):
    m = relaxed.metrics
    assert m["violations_before"] > 0, "0.1 Å noise should break some bond geometry"
    assert m["violations_after"] < m["violations_before"]
    assert m["energy_after"] < m["energy_before"]
    assert m["length"] == 62 and m["attempts"] >= 1 and m["outer_iterations"] >= 1
    assert m["platform"] in ("CPU", "CUDA") and m["openmm"].startswith("8.")
    assert 0 < m["relax_s"] <= m["wall_s"]


def test_relax_moves_ca_by_a_small_rmsd(noisy, relaxed):
    before, after = _ca(noisy), _ca(relaxed.relaxed_pdb)
    assert before.shape == after.shape == (62, 3)
    rmsd = float(np.sqrt(((after - before) ** 2).sum(-1).mean()))
    assert 0.01 < rmsd < 1.0, "restrained minimisation moves atoms, but only a little"
    assert rmsd == pytest.approx(relaxed.metrics["ca_rmsd_moved"], abs=0.01)


def test_relaxed_pdb_and_cif_parse_with_sequence_and_plddt_kept(noisy, relaxed):
    from openfold.np import protein

    out, inp = protein.from_pdb_string(relaxed.relaxed_pdb), protein.from_pdb_string(noisy)
    np.testing.assert_array_equal(out.aatype, inp.aatype)
    np.testing.assert_array_equal(out.atom_mask[:, :36], inp.atom_mask[:, :36])  # OXT aside
    st = gemmi.read_pdb_string(relaxed.relaxed_pdb)
    atoms = [a for r in st[0][0] for a in r]
    assert any(a.element.name == "H" for a in atoms), "Amber relax adds hydrogens"
    assert {round(a.b_iso, 2) for a in atoms} == {73.0}, "B-factors (pLDDT) are the input's"
    block = gemmi.cif.read_string(relaxed.relaxed_cif).sole_block()
    assert len(gemmi.make_structure_from_block(block)[0][0]) == 62


def test_timeout_kills_the_minimisation_and_leaves_no_process():
    big = perturb(complete_chain(LARGE), noise_a=0.1)
    start = time.perf_counter()
    with pytest.raises(RelaxError, match="timed out after 6 s") as info:
        relax_structure(big, RelaxSettings(timeout_s=6), "7rpn.A")
    assert time.perf_counter() - start < 6 + 10
    assert info.value.target == "7rpn.A" and info.value.kind == "timeout"
    assert _relax_children() == []


def test_a_killed_caller_leaves_no_minimiser_behind(tmp_path):
    import subprocess
    import sys

    (tmp_path / "in.pdb").write_text(perturb(complete_chain(LARGE), noise_a=0.1))
    caller = subprocess.Popen([sys.executable, "-c", (
        "import sys; from eksfold.relaxation import relax_structure as r; "
        "r(open(sys.argv[1]).read(), target_id='7rpn.A')"), str(tmp_path / "in.pdb")])
    try:
        deadline = time.time() + 60
        while not (kids := psutil.Process(caller.pid).children()) and time.time() < deadline:
            time.sleep(0.2)
        assert kids, "the caller should have started its relax process"
    finally:
        caller.kill()  # as SIGKILL of a worker: no Python cleanup runs in it
        caller.wait()
    _, alive = psutil.wait_procs(kids, timeout=10)
    for orphan in alive:  # do not leave one running if the check fails
        orphan.kill()
    assert not alive, "the relax process must die with its parent"


def test_degenerate_input_is_refused_clearly(noisy):
    lines = [ln[:30] + "%8.3f%8.3f%8.3f" % (1.0, 2.0, 3.0) + ln[54:] if ln.startswith("ATOM") else ln
             for ln in noisy.splitlines()]  # every atom at one point
    start = time.perf_counter()
    with pytest.raises(RelaxError) as info:
        relax_structure("\n".join(lines) + "\n", RelaxSettings(timeout_s=120), "untrained")
    assert DEGENERATE in info.value.reason and "62 of 62 residues" in info.value.reason
    assert "untrained" in str(info.value) and info.value.kind == "degenerate"
    assert time.perf_counter() - start < 60, "refused up front, not after 100 attempts"


def test_degeneracy_of_identical_frames_and_of_a_real_chain(noisy):
    from openfold.np import protein

    prot = protein.from_pdb_string(noisy)
    assert degeneracy(prot.atom_positions, prot.atom_mask) is None
    # Untrained AF2 weights leave every residue's frame at the origin.
    stacked = prot.atom_positions - prot.atom_positions[:, 1:2]
    assert "have a Cα within" in degeneracy(stacked, prot.atom_mask)


def test_missing_heavy_atoms_are_named():
    raw = SMALL.read_text()  # the experimental file lacks some side chains
    with pytest.raises(RelaxError, match=r"lack heavy atoms \(first: residue 2 LYS missing CG"):
        relax_structure(raw, RelaxSettings(timeout_s=120), "7vp3.C")


def test_settings_defaults_are_openfolds_and_validate():
    from eksfold.models.openfold2.compat import prepare

    prepare()
    from openfold.config import model_config

    relax = model_config("model_1").relax
    s = RelaxSettings()
    assert (s.stiffness, s.tolerance, s.max_iterations, s.max_outer_iterations,
            list(s.exclude_residues)) == (relax.stiffness, relax.tolerance, relax.max_iterations,
                                         relax.max_outer_iterations, list(relax.exclude_residues))
    assert RelaxSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ConfigError, match="platform 'Metal'"):
        RelaxSettings(platform="Metal")
    with pytest.raises(ConfigError, match="timeout_s"):
        RelaxSettings(timeout_s=0)
    with pytest.raises(ConfigError, match="unknown relax settings: stifness"):
        RelaxSettings.from_dict({"stifness": 1.0})


def test_openmm8_fix_is_idempotent_and_the_resource_file_is_checked(tmp_path):
    from eksfold.models.openfold2 import compat as openfold_compat

    openfold_compat.fix_amber_minimize()
    openfold_compat.fix_amber_minimize()
    from openfold.np.relax import amber_minimize

    wrapped = amber_minimize._openmm_minimize
    assert not hasattr(wrapped.__wrapped__, "__wrapped__"), "wrapped once only"
    installed = openfold_compat._openfold_resources_dir() / openfold_compat.STEREO_PROPS
    assert openfold_compat.install_stereo_chemical_props(installed) == installed  # idempotent
    wrong = tmp_path / "stereo_chemical_props.txt"
    wrong.write_text("Bond Residue Mean StdDev\nCA-CB ALA 1.520 0.021\n")
    with pytest.raises(EksfoldError, match="sha256"):
        openfold_compat.install_stereo_chemical_props(wrong)
    assert installed.stat().st_size > 9000, "a rejected file leaves the installed one alone"


def test_benchmark_pool_has_gap_free_chains_of_several_lengths():
    lengths = [n for n, _ in gap_free_chains((STRUCTURES,))]
    assert 62 in lengths and 252 in lengths
    assert all(p.name != "7tgi.B.pdb" for _, p in gap_free_chains((STRUCTURES,))), "7tgi.B has gaps"


def test_bench_relax_writes_table_and_plot(tmp_path, capsys):
    import argparse

    import eksfold.bench.relax as bench_relax

    parser = argparse.ArgumentParser()
    bench_relax.add_parser(parser.add_subparsers())
    args = parser.parse_args(["relax", "--lengths", "30", "--structures",
                              str(STRUCTURES.parents[2] / "data" / "cameo2022" / "structures"),
                              "--csv", str(tmp_path / "r.csv"), "--plot", str(tmp_path / "r.png")])
    assert args.func(args) == 0
    import pandas as pd

    row = pd.read_csv(tmp_path / "r.csv").iloc[0]
    assert row["length"] < 40 and row["violations_after"] <= row["violations_before"]
    assert row["energy_after"] < row["energy_before"]
    assert (tmp_path / "r.png").stat().st_size > 10_000
    assert "relax_s ~ length^" not in capsys.readouterr().out  # one length: no fitted exponent
