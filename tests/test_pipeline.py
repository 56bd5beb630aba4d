"""The whole `eksfold run` path on one machine: CLI, local executor, resume, failures."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path


from eksfold.config import DatabaseConfig
from eksfold.pipeline import run_pipeline
from eksfold.progress import TextProgress
from eksfold.results import columns, load_summary
from eksfold.run import Run

GOOD = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQIHFVHSQELLSRYPDLDAKGRERAIAKDLGAVFLVGIGGKLSDGHRHDVRAPDYDDWUAIPGTLLLSR"


def eksfold(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "eksfold.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def fasta(tmp_path, records):
    path = tmp_path / "in.fasta"
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in records))
    return path


def test_cli_run_end_to_end_writes_outputs_summary_and_nothing_outside_root(cameo_fasta, small_db, tmp_path, worker_env):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    root = tmp_path / "run"
    res = eksfold("run", str(cameo_fasta), "--root", str(root), "--limit", "3", "--shortest",
                  "--preset", "tiny", "--uniref90", str(small_db), cwd=cwd)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "UNTRAINED" in res.stdout
    assert list(cwd.iterdir()) == []  # nothing written outside the run root
    df = load_summary(str(root))
    assert list(df.columns) == columns(("align", "infer")) and len(df) == 3
    assert (df.align_status == "done").all() and (df.infer_status == "done").all()
    assert df.untrained.all() and (df.mean_plddt == 50.0).all()
    assert df.length.is_monotonic_increasing and (df.msa_depth >= 1).all()
    for tid in df.target:
        unit = root / "targets" / tid
        assert (unit / "align" / "uniref90_hits.sto").is_file()
        assert {"unrelaxed.pdb", "plddt.npy", "pae.npy", "metrics.json"} <= {p.name for p in (unit / "infer").iterdir()}
        assert (root / "logs" / "infer" / f"{tid}.log").read_text()
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["config"]["infer"]["preset"] == "tiny"
    assert manifest["databases"]["uniref90"]["sha256"] and manifest["inputs"]["fasta_sha256"]
    assert manifest["versions"]["jackhmmer"].startswith("HMMER 3")
    assert not list(root.rglob("*.tmp"))
    assert not (root / ".scratch").exists() or not list((root / ".scratch").iterdir())
    # Rerun: everything is skipped, nothing is recomputed.
    before = {p: p.stat().st_mtime_ns for p in root.glob("targets/*/*/metrics.json")}
    res = eksfold("run", str(cameo_fasta), "--root", str(root), "--limit", "3", "--shortest",
                  "--preset", "tiny", "--uniref90", str(small_db), cwd=cwd)
    assert res.returncode == 0
    assert before == {p: p.stat().st_mtime_ns for p in root.glob("targets/*/*/metrics.json")}


def test_other_settings_on_an_existing_root_are_refused(cameo_fasta, small_db, tmp_path, worker_env):
    root = tmp_path / "run"
    ok = eksfold("run", str(cameo_fasta), "--root", str(root), "--limit", "1", "--shortest",
                 "--preset", "tiny", "--uniref90", str(small_db), "--stages", "align")
    assert ok.returncode == 1  # inference not run: not every target is done
    res = eksfold("run", str(cameo_fasta), "--root", str(root), "--limit", "2", "--shortest",
                  "--preset", "tiny", "--uniref90", str(small_db))
    assert res.returncode == 2 and "already holds a run" in res.stderr


def test_bad_inputs_are_reported_and_the_rest_goes_on(small_db, tmp_path, worker_env):
    records = [("good-one", GOOD[:60]), ("bad-letters", GOOD[:40] + "123"), ("good-two", GOOD[60:130])]
    run = run_pipeline(fasta(tmp_path, records), str(tmp_path / "run"), preset="tiny",
                       databases=DatabaseConfig(uniref90=str(small_db)), reporter=TextProgress(bars=False))
    df = load_summary(run.root).set_index("target")
    assert df.loc["good-one", "infer_status"] == "done" and df.loc["good-two", "infer_status"] == "done"
    assert df.loc["bad-letters", "infer_status"] == "invalid"
    assert "invalid residue letters" in df.loc["bad-letters", "error"]


def test_failed_unit_is_recorded_others_finish_and_rerun_only_redoes_it(small_db, tmp_path, worker_env):
    records = [("alpha", GOOD[:50]), ("beta", GOOD[50:110]), ("gamma", GOOD[110:170])]
    src, root = fasta(tmp_path, records), str(tmp_path / "run")
    common = dict(preset="tiny", databases=DatabaseConfig(uniref90=str(small_db)), reporter=TextProgress(bars=False))
    run_pipeline(src, root, stages=("align",), **common)
    sto = Path(root) / "targets" / "beta" / "align" / "uniref90_hits.sto"
    good_sto = sto.read_text()
    sto.write_text("# STOCKHOLM 1.0\nq NOT-AN-ALIGNMENT-OF-THE-QUERY\n//\n")
    run_pipeline(src, root, **common)
    df = load_summary(root).set_index("target")
    assert df.loc["beta", "infer_status"] == "failed"
    assert "first row is not the target sequence" in df.loc["beta", "error"]
    assert (df.drop("beta").infer_status == "done").all()
    assert Run.open(root).read_log("infer", "beta")  # the failed unit's log is readable
    done_before = {t: (Path(root) / "targets" / t / "infer" / "metrics.json").stat().st_mtime_ns for t in ("alpha", "gamma")}
    sto.write_text(good_sto)
    run_pipeline(src, root, **common)
    df = load_summary(root).set_index("target")
    assert (df.infer_status == "done").all() and df.error.isna().all()
    assert done_before == {t: (Path(root) / "targets" / t / "infer" / "metrics.json").stat().st_mtime_ns for t in ("alpha", "gamma")}


def test_ctrl_c_stops_cleanly_and_a_rerun_resumes(small_db, tmp_path, worker_env):
    # enough targets that units are still to run when the interrupt arrives: a warm worker
    # starts the next tiny-preset unit within milliseconds of the last
    records = [(f"t{i}", GOOD[i * 19:i * 19 + 40]) for i in range(10)]
    src, root = fasta(tmp_path, records), tmp_path / "run"
    cmd = [sys.executable, "-m", "eksfold.cli", "run", str(src), "--root", str(root), "--preset", "tiny",
           "--uniref90", str(small_db)]
    # SIGINT as a terminal delivers it, even when the suite runs in the background (where the
    # shell starts every process with SIGINT ignored, and Python then keeps ignoring it)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = root / "targets" / "t0" / "infer" / "metrics.json"
    deadline = time.monotonic() + 300
    while not first.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first.exists(), "first inference unit did not finish"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err
    time.sleep(0.5)
    # No worker left behind, no partial files; finished units kept intact.
    assert subprocess.run(["pgrep", "-f", f"eksfold.worker --root {root}"], capture_output=True).returncode == 1
    assert not list(root.rglob("*.tmp"))
    kept = first.read_text()
    assert json.loads(kept)["status"] == "ok"
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert first.read_text() == kept
    assert (load_summary(str(root)).infer_status == "done").all()


def test_worker_honours_the_low_memory_request_of_long_target_jobs(small_db, tmp_path, worker_env, monkeypatch):
    from eksfold import worker

    src, root = fasta(tmp_path, [("longish", GOOD[:48])]), str(tmp_path / "run")
    run_pipeline(src, root, preset="tiny", databases=DatabaseConfig(uniref90=str(small_db)),
                 stages=("align",), reporter=TextProgress(bars=False))
    monkeypatch.setenv("EKSFOLD_LOW_MEMORY", "1")
    assert worker.main(["--root", root, "--stage", "infer", "--target", "longish"]) == 0
    record = Run.open(root).record("infer", "longish")
    assert record.done and record.metrics["preset"] == "tiny+long"
