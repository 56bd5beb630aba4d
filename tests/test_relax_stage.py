"""The relax stage as a unit of a run: worker, record, resume, summary, timeout, untrained input.

The predicted model is a real CAMEO chain (7vp3.C) completed with pdbfixer and perturbed by
0.1 Å noise, committed as the infer unit's output (untrained weights would give a degenerate
structure that cannot be minimised; that path is tested too, through the real pipeline).
"""
import subprocess
import sys
from pathlib import Path


from eksfold.bench.relax import complete_chain, perturb
from eksfold.config import DatabaseConfig, RelaxConfig, RunConfig
from eksfold.pipeline import run_pipeline
from eksfold.progress import TextProgress
from eksfold.records import UnitRecord
from eksfold.results import load_summary, write_summary
from eksfold.run import Run
from eksfold.structures import read_chain
from eksfold.targets import Target

SMALL = Path(__file__).parent / "data" / "structures" / "7vp3.C.pdb"


def predicted_run(tmp_path, relax: RelaxConfig) -> Run:
    """A run whose align and infer units are committed, the model being a noisy reference."""
    model = perturb(complete_chain(SMALL), noise_a=0.1, seed=2, plddt=80.0)
    seq = read_chain(model).sequence
    run = Run.create(str(tmp_path / "run"), [Target("m1", seq)], RunConfig(relax=relax))
    for stage, files in (("align", {}), ("infer", {"unrelaxed.pdb": model})):
        for name, text in files.items():
            run.store.write_text(f"targets/m1/{stage}/{name}", text)
        rec = UnitRecord(stage, "m1")
        rec.succeed({}, {})
        rec.write(run.store)
    return run


def relax_worker(run: Run):
    return subprocess.run([sys.executable, "-m", "eksfold.worker", "--root", run.root,
                           "--stage", "relax", "--target", "m1"],
                          capture_output=True, text=True, timeout=600)


def test_relax_unit_writes_relaxed_structures_records_and_resumes(tmp_path, worker_env):
    run = predicted_run(tmp_path, RelaxConfig(enabled=True, timeout_s=300))
    assert "relax" in run.stages
    res = relax_worker(run)
    assert res.returncode == 0, res.stderr[-3000:]
    rec = run.record("relax", "m1")
    assert rec.done and set(rec.outputs) == {"relaxed.pdb", "relaxed.cif"}
    m = rec.metrics
    assert m["energy_after"] < m["energy_before"]
    assert m["violations_after"] <= m["violations_before"] and 0 < m["ca_rmsd_moved"] < 1.0
    relaxed = Path(run.root) / "targets" / "m1" / "relax"
    assert len(read_chain((relaxed / "relaxed.cif").read_text()).sequence) == 62
    row = write_summary(run).iloc[0]
    assert row.relax_status == "done" and row.energy_after == m["energy_after"]
    before = (relaxed / "metrics.json").stat().st_mtime_ns
    again = relax_worker(run)
    assert again.returncode == 0 and "already done, skipping" in again.stderr
    assert (relaxed / "metrics.json").stat().st_mtime_ns == before


def test_relax_timeout_is_a_recorded_failure_not_a_hang(tmp_path, worker_env):
    run = predicted_run(tmp_path, RelaxConfig(enabled=True, timeout_s=1.0))
    res = relax_worker(run)
    assert res.returncode == 2
    rec = run.record("relax", "m1")
    assert not rec.done and "timeout" in rec.error and rec.wall_s < 60


def test_untrained_predictions_are_refused_clearly_and_relax_is_off_by_default(
        tmp_path, small_db, worker_env):
    fasta = tmp_path / "in.fasta"
    fasta.write_text(">u1\nMKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDG\n")
    dbs = DatabaseConfig(uniref90=str(small_db))
    off = run_pipeline(fasta, str(tmp_path / "off"), preset="tiny", databases=dbs,
                       reporter=TextProgress(bars=False))
    assert "relax" not in off.stages and "relax_status" not in load_summary(off.root)
    on = run_pipeline(fasta, str(tmp_path / "on"), preset="tiny", databases=dbs, relax=True,
                      reporter=TextProgress(bars=False))
    df = load_summary(on.root).iloc[0]
    assert df.infer_status == "done" and df.relax_status == "failed"
    assert "degenerate" in df.error and "untrained" in df.error
    assert on.record("relax", "u1").exit_code == 2      # deterministic: never retried
