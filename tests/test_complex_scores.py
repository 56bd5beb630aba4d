"""DockQ scores for complexes (eksfold.complex_scores, the score stage) against the shipped
reference complexes of data/complexes/structures (PDB entries 4i6p, a homodimer, and 1pzp
with two FTA ligands), compared with the DockQ package's own command.

Models are the references with a known change (one chain turned and shifted; the ligands
shifted 1.5 A with the receptor untouched), so the expected figures are known: a perfect
model scores DockQ 1, and a ligand shifted by 1.5 A has a ligand RMSD of exactly 1.5 A after
the pocket superposition.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import gemmi
import pytest

from eksfold.complex_scores import score_complex
from eksfold.config import RunConfig, ScoreConfig
from eksfold.errors import TargetError
from eksfold.stages.score import ScoreStage
from eksfold.targets import Target

DATA = Path(__file__).resolve().parents[1] / "data" / "complexes"
STRUCTURES = DATA / "structures"


def moved(reference: Path, out: Path, chains=(), ligand=None, shift=(0.0, 0.0, 0.0),
          turn_deg: float = 0.0) -> Path:
    """A copy of ``reference`` with chains (or ligand residues) turned about x and shifted."""
    st = gemmi.read_structure(str(reference))
    c, s = math.cos(math.radians(turn_deg)), math.sin(math.radians(turn_deg))
    tr = gemmi.Transform(gemmi.Mat33([[1, 0, 0], [0, c, -s], [0, s, c]]), gemmi.Vec3(*shift))
    for chain in st[0]:
        for res in chain:
            if chain.name in chains or res.name == ligand:
                for atom in res:
                    atom.pos = gemmi.Position(tr.apply(atom.pos))
    st.setup_entities()
    st.make_mmcif_document().write_file(str(out))
    return out


def dockq_command(model: Path, reference: Path, out: Path, *options) -> dict:
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run([str(bin_dir / "DockQ"), str(model), str(reference), "--n_cpu", "1",
                           "--json", str(out), *options], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


def test_a_perfect_model_scores_one():
    ref = STRUCTURES / "4i6p.cif"
    found = score_complex(ref, ref)
    assert found["dockq"] == pytest.approx(1.0, abs=1e-6)
    assert [r["kind"] for r in found["interfaces"]] == ["polymer"]
    assert found["ligand_rmsd"] is None


def test_dockq_equals_the_dockq_command(tmp_path):
    ref = STRUCTURES / "4i6p.cif"
    model = moved(ref, tmp_path / "model.cif", chains=("B",), shift=(1.5, 0.5, 0.0),
                  turn_deg=6.0)
    found = score_complex(model, ref)
    theirs = dockq_command(model, ref, tmp_path / "dockq.json")
    assert 0.1 < found["dockq"] < 0.99
    assert abs(found["dockq"] - theirs["GlobalDockQ"]) < 0.01
    row, = found["interfaces"]
    (_, info), = theirs["best_result"].items()
    assert abs(row["dockq"] - info["DockQ"]) < 0.01 and abs(row["fnat"] - info["fnat"]) < 0.01
    assert abs(row["irmsd"] - info["iRMSD"]) < 0.01


def test_ligand_rmsd_after_pocket_superposition(tmp_path):
    ref = STRUCTURES / "1pzp-fta.cif"
    model = moved(ref, tmp_path / "model.cif", ligand="FTA", shift=(1.5, 0.0, 0.0))
    found = score_complex(model, ref)
    ligands = [r for r in found["interfaces"] if r["kind"] == "ligand"]
    assert len(ligands) == 2   # the two FTA molecules of 1pzp, each against the protein
    assert found["ligand_rmsd"] == pytest.approx(1.5, abs=1e-3)
    theirs = dockq_command(model, ref, tmp_path / "dockq.json", "--small_molecule")
    assert {round(v["LRMSD"], 3) for v in theirs["best_result"].values()} == {1.5}
    assert abs(found["dockq"] - theirs["GlobalDockQ"]) < 0.01


def complex_target(tid: str) -> Target:
    chains = [{"molecule_type": "protein", "chain_ids": ["A", "B"], "sequence": "GPGS",
               "smiles": None, "ccd_codes": None, "description": "", "files": {}}]
    return Target(tid, "GPGS:GPGS", complex={"id": tid, "chains": chains, "seeds": [],
                                             "name": tid, "source": "", "tokens": 8})


def test_the_score_stage_scores_a_complex_by_its_target_id(tmp_path):
    infer = tmp_path / "infer"
    infer.mkdir()
    moved(STRUCTURES / "4i6p.cif", infer / "unrelaxed.cif", chains=("B",), shift=(1.0, 0, 0))
    config = RunConfig(score=ScoreConfig(references=str(STRUCTURES)))
    stage = ScoreStage(SimpleNamespace(config=config))
    metrics = stage.run_unit(complex_target("4i6p"), infer, tmp_path / "out")
    assert metrics["reference"].endswith("4i6p.cif") and 0 < metrics["dockq"] < 1
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["dockq"] == metrics["dockq"]
    # no reference for this id: done, with empty scores
    none = stage.run_unit(complex_target("7abc"), infer, tmp_path / "out2")
    assert none["reference"] is None and none["dockq"] is None
    # a reference with one chain has no interface: that unit fails, named
    one = tmp_path / "refs"
    one.mkdir()
    st = gemmi.read_structure(str(STRUCTURES / "4i6p.cif"))
    st[0].remove_chain("B")
    st.setup_entities()
    st.make_mmcif_document().write_file(str(one / "4i6p.cif"))
    stage = ScoreStage(SimpleNamespace(config=RunConfig(score=ScoreConfig(references=str(one)))))
    with pytest.raises(TargetError, match="4i6p.*two chains"):
        stage.run_unit(complex_target("4i6p"), infer, tmp_path / "out3")
