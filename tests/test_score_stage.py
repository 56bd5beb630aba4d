"""The optional ``score`` stage: accuracy computed once per target by the workers, joined by
the summary table (never recomputed there), on when the run has reference structures."""
import shutil

import pandas as pd
import pytest

from conftest import PROJECT
from eksfold import metrics
from eksfold.config import DatabaseConfig
from eksfold.pipeline import run_pipeline
from eksfold.progress import TextProgress
from eksfold.results import load_summary, write_summary
from eksfold.run import Run
from eksfold.target_files import read_fasta

CAMEO2022 = PROJECT / "data" / "cameo2022"


@pytest.fixture
def two_targets(tmp_path):
    """The two shortest CAMEO 2022 targets, in a folder with their reference structures
    (one of them replaced by an unreadable file)."""
    shortest = sorted(read_fasta(CAMEO2022 / "targets.fasta"), key=lambda t: t.length)[:2]
    folder = tmp_path / "set"
    (folder / "structures").mkdir(parents=True)
    lines = []
    for t in shortest:
        lines += [f">{t.description}", t.sequence]
        name = f"{t.pdb_id.lower()}.{t.chain}.pdb"
        shutil.copy(CAMEO2022 / "structures" / name, folder / "structures" / name)
    (folder / "targets.fasta").write_text("\n".join(lines) + "\n")
    return folder, shortest


def test_scores_are_unit_records_the_summary_joins(two_targets, small_db, tmp_path,
                                                   monkeypatch, worker_env):
    folder, (good, bad) = two_targets
    broken = folder / "structures" / f"{bad.pdb_id.lower()}.{bad.chain}.pdb"
    broken.write_text("HEADER    NOT A STRUCTURE\nEND\n")
    run = run_pipeline(folder / "targets.fasta", str(tmp_path / "run"), preset="tiny",
                       databases=DatabaseConfig(uniref90=str(small_db)),
                       reporter=TextProgress(bars=False))
    assert run.stages == ("align", "infer", "score")
    assert run.config.score.references == str((folder / "structures").resolve())
    rec = run.record("score", good.id)
    assert rec.done and set(rec.outputs) == {"scores.json"}
    assert 0 < rec.metrics["tm_score"] <= 1 and rec.metrics["n_aligned"] > 0
    # the same numbers as scoring the prediction directly
    pdb = (tmp_path / "run" / "targets" / good.id / "infer" / "unrelaxed.pdb").read_text()
    direct = metrics.compare_structures(pdb, folder / "structures" / f"{good.pdb_id.lower()}."
                                                                    f"{good.chain}.pdb")
    assert rec.metrics["tm_score"] == pytest.approx(direct["tm_score"])
    # a reference that cannot be read fails that unit only, with the reason
    failed = run.record("score", bad.id)
    assert not failed.done and "not scored" in failed.error and broken.name in failed.error
    assert run.record("infer", bad.id).done

    # the summary joins the records: no scoring while the table is written
    def no_scoring(*args, **kwargs):
        raise AssertionError("the summary must not score")

    monkeypatch.setattr(metrics, "compare_structures", no_scoring)
    df = write_summary(Run.open(run.root)).set_index("target")
    assert list(df.columns[-len(metrics.ACCURACY_COLUMNS):]) == list(metrics.ACCURACY_COLUMNS)
    assert "score_status" not in df.columns
    assert df.loc[good.id, "tm_score"] == pytest.approx(rec.metrics["tm_score"])
    assert pd.isna(df.loc[bad.id, "tm_score"]) and "score:" in df.loc[bad.id, "error"]
    assert load_summary(run.root).shape == df.reset_index().shape


def test_no_references_no_score_stage(small_db, tmp_path, worker_env):
    fasta = tmp_path / "in.fasta"
    fasta.write_text(">a\nMKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDG\n")
    run = run_pipeline(fasta, str(tmp_path / "run"), preset="tiny", stages=("align",),
                       databases=DatabaseConfig(uniref90=str(small_db)),
                       reporter=TextProgress(bars=False))
    assert run.config.score.references is None and "score" not in run.stages
    assert not set(metrics.ACCURACY_COLUMNS) & set(load_summary(run.root).columns)
