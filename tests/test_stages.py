"""The stage contract: registry, unit records, and what adding a stage takes (one module)."""
import json
import os
import textwrap

import pytest

from eksfold.config import DatabaseConfig
from eksfold.pipeline import run_pipeline
from eksfold.progress import TextProgress
from eksfold.records import UnitRecord
from eksfold.results import load_summary
from eksfold.stages import STAGES, get_stage, register_stage, stage_names

# The whole diff that adds a stage: this module (plus one register_stage line, here done
# through EKSFOLD_STAGES so that the worker subprocesses see it too).
EXAMPLE_STAGE = '''
"""A throwaway stage: counts the MSA rows the align stage found, per target."""
from pathlib import Path

from eksfold.alignment.msa import read_msa_sequences
from eksfold.stages import Stage


class CountStage(Stage):
    name = "count"
    title = "row count"
    depends_on = "align"
    outputs = ("rows.txt",)
    summary_columns = {"msa_rows_counted": "rows"}

    def run_unit(self, target, inputs, out):
        rows = sum(len(read_msa_sequences(p)) for p in sorted(Path(inputs).glob("*.sto")))
        out.mkdir(parents=True, exist_ok=True)
        (out / "rows.txt").write_text(f"{rows}\\n")
        return {"rows": rows}
'''


def test_builtin_stages_and_their_dependencies():
    assert STAGES == ("align", "infer", "relax", "score")
    assert get_stage("infer").depends_on == "align" and get_stage("relax").depends_on == "infer"
    assert get_stage("score").depends_on == "infer" and get_stage("score").optional
    assert get_stage("infer").pool == "gpu" and get_stage("align").pool == "cpu"
    assert get_stage("relax").optional and not get_stage("infer").optional
    with pytest.raises(Exception, match="unknown stage 'fold'"):
        get_stage("fold")


def test_unit_record_round_trips_and_reads_schema_1():
    rec = UnitRecord("infer", "t1", status="ok", error=None, metrics={"mean_plddt": 50.0},
                     outputs={"unrelaxed.pdb": "ab"})
    again = UnitRecord.from_json(rec.to_json())
    assert again == rec and again.done
    old = {"stage": "align", "target": "t1", "status": "failed", "error": "boom",
           "wall_s": 1.5, "msa_depth": 3, "attempt_started": "2026-01-01T00:00:00Z"}
    migrated = UnitRecord.from_dict(old)
    assert not migrated.done and migrated.error == "boom" and migrated.wall_s == 1.5
    assert migrated.metrics == {"msa_depth": 3} and migrated.started == "2026-01-01T00:00:00Z"


def test_a_new_stage_is_one_module(tmp_path, small_db, monkeypatch, worker_env):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "example_stage.py").write_text(textwrap.dedent(EXAMPLE_STAGE))
    monkeypatch.syspath_prepend(str(plugin))
    monkeypatch.setenv("PYTHONPATH", f"{plugin}{os.pathsep}{os.environ['PYTHONPATH']}")
    monkeypatch.setenv("EKSFOLD_STAGES", "count=example_stage:CountStage")
    register_stage("count", "example_stage:CountStage")
    try:
        assert stage_names()[-1] == "count"
        fasta = tmp_path / "in.fasta"
        fasta.write_text(">a\nMKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDG\n"
                         ">b\nMVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF\n")
        run = run_pipeline(fasta, str(tmp_path / "run"), preset="tiny",
                           databases=DatabaseConfig(uniref90=str(small_db)),
                           stages=("align", "count"), reporter=TextProgress(bars=False))
        df = load_summary(run.root).set_index("target")
        assert (df.count_status == "done").all()
        for tid in ("a", "b"):
            rec = run.record("count", tid)
            written = int((tmp_path / "run" / "targets" / tid / "count" / "rows.txt").read_text())
            assert rec.metrics["rows"] == written == df.loc[tid, "msa_rows_counted"] >= 1
            assert set(rec.outputs) == {"rows.txt"}
        record = json.loads((tmp_path / "run/targets/a/count/metrics.json").read_text())
        assert record["schema"] == 2 and record["stage"] == "count"
    finally:
        from eksfold.stages import _REGISTRY
        _REGISTRY.pop("count", None)
