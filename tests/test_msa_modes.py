"""The align stage's modes through the pipeline: MMseqs2 (batch search per shard), the MSA
cache, and the same targets folded from jackhmmer and from MMseqs2 MSAs."""
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT
from eksfold.config import AlignConfig, DatabaseConfig
from eksfold.pipeline import run_pipeline
from eksfold.progress import TextProgress
from eksfold.results import load_summary

CAMEO = PROJECT / "data" / "cameo2022" / "targets.fasta"
IDS = ["7pl4-a", "7sao-a"]
MMSEQS_DB = PROJECT / "data" / "db" / "mmseqs" / "uniprot20k"


@pytest.fixture(scope="module")
def mmseqs_db():
    if not Path(str(MMSEQS_DB) + ".dbtype").exists():
        pytest.fail(f"MMseqs2 database missing at {MMSEQS_DB}: run `make test-setup`")
    return str(MMSEQS_DB)


def test_jackhmmer_and_mmseqs2_msas_both_fold_and_the_summary_shows_their_depths(
        tmp_path, small_db, mmseqs_db, worker_env):
    common = dict(preset="tiny", ids=IDS, databases=DatabaseConfig(uniref90=str(small_db)),
                  reporter=TextProgress(bars=False))
    jack = run_pipeline(CAMEO, str(tmp_path / "jack"), **common)
    mm = run_pipeline(CAMEO, str(tmp_path / "mm"),
                      align=AlignConfig(msa_mode="mmseqs2", mmseqs_db=mmseqs_db), **common)
    a, b = (load_summary(r.root).set_index("target") for r in (jack, mm))
    assert (a.infer_status == "done").all() and (b.infer_status == "done").all()
    assert mm.manifest["config"]["align"]["msa_mode"] == "mmseqs2"
    for tid in IDS:
        rec = mm.record("align", tid)
        assert rec.metrics["mode"] == "mmseqs2" and "uniref_mmseqs.a3m" in rec.outputs
        assert jack.record("align", tid).metrics["mode"] == "jackhmmer"
        assert b.loc[tid, "msa_depth"] >= 1 and a.loc[tid, "msa_depth"] >= 1
    print("\nMSA depth jackhmmer vs MMseqs2:",
          {t: (int(a.loc[t, "msa_depth"]), int(b.loc[t, "msa_depth"])) for t in IDS})


def test_a_shard_is_one_mmseqs2_search(tmp_path, small_db, mmseqs_db, worker_env):
    run = run_pipeline(CAMEO, str(tmp_path / "run"), preset="tiny", ids=IDS, stages=(),
                       align=AlignConfig(msa_mode="mmseqs2", mmseqs_db=mmseqs_db),
                       databases=DatabaseConfig(uniref90=str(small_db)))
    res = subprocess.run([sys.executable, "-m", "eksfold.worker", "--root", run.root,
                          "--stage", "align", "--targets", ",".join(IDS)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    records = [run.record("align", t) for t in IDS]
    assert all(r.done for r in records)
    assert {r.metrics["batch_size"] for r in records} == {2}            # searched together
    assert len({r.metrics["batch_wall_s"] for r in records}) == 1


def test_the_local_executor_hands_mmseqs2_batches_to_one_search(tmp_path, small_db, mmseqs_db,
                                                               worker_env):
    run = run_pipeline(CAMEO, str(tmp_path / "run"), preset="tiny", limit=3, shortest=True,
                       stages=("align",), reporter=TextProgress(bars=False),
                       align=AlignConfig(msa_mode="mmseqs2", mmseqs_db=mmseqs_db, mmseqs_batch=2),
                       databases=DatabaseConfig(uniref90=str(small_db)))
    records = sorted((run.record("align", t.id) for t in run.targets),
                     key=lambda r: (-r.metrics["batch_size"], r.target))
    assert all(r.done for r in records) and len(records) == 3
    # the three ready targets went out as a batch of two (one search) and then one
    assert [r.metrics["batch_size"] for r in records] == [2, 2, 1]
    assert records[0].metrics["batch_wall_s"] == records[1].metrics["batch_wall_s"]
    assert len(list((Path(run.root) / "logs" / "align").glob("worker-*.out"))) == 1


def test_the_msa_cache_is_reused_by_a_later_run(tmp_path, small_db, worker_env):
    cache = tmp_path / "cache"
    common = dict(preset="tiny", ids=IDS, stages=("align",), reporter=TextProgress(bars=False),
                  databases=DatabaseConfig(uniref90=str(small_db)),
                  align=AlignConfig(cache=str(cache)))
    first = run_pipeline(CAMEO, str(tmp_path / "first"), **common)
    second = run_pipeline(CAMEO, str(tmp_path / "second"), **common)
    for tid in IDS:
        a, b = first.record("align", tid), second.record("align", tid)
        assert not a.metrics["cache_hit"] and b.metrics["cache_hit"]
        assert b.outputs == a.outputs                  # the same files, byte for byte
        assert b.metrics["tool_wall_s"] < 1.0          # a hit costs under a second
    other_db = tmp_path / "other.fasta"
    head = Path(small_db).read_text()[: 200_000]
    other_db.write_text(head[: head.rindex("\n>") + 1])   # whole records: a smaller database
    third = run_pipeline(CAMEO, str(tmp_path / "third"), **{
        **common, "databases": DatabaseConfig(uniref90=str(other_db))})
    assert not any(third.record("align", t).metrics["cache_hit"] for t in IDS)   # other DB


def test_the_cli_sets_mmseqs2s_search_settings_and_the_record_shows_them(tmp_path, mmseqs_db,
                                                                         worker_env):
    import json

    root = tmp_path / "run"
    res = subprocess.run(
        [sys.executable, "-m", "eksfold.cli", "run", str(CAMEO), "--root", str(root),
         "--targets", IDS[0], "--stages", "align", "--preset", "tiny", "--msa", "mmseqs2",
         "--mmseqs-db", mmseqs_db, "--mmseqs-sensitivity", "5.7", "--mmseqs-iterations", "2",
         "--mmseqs-max-seqs", "500"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 1, res.stderr[-2000:]   # inference not run: the run is not done
    align = json.loads((root / "manifest.json").read_text())["config"]["align"]
    assert (align["mmseqs_sensitivity"], align["mmseqs_iterations"], align["mmseqs_max_seqs"]) \
        == (5.7, 2, 500)
    from eksfold.run import Run
    record = Run.open(str(root)).record("align", IDS[0])
    assert record.done
    settings = record.metrics["settings"]
    assert (settings["sensitivity"], settings["iterations"], settings["max_seqs"]) == (5.7, 2, 500)
