"""Warm workers: one process, many units, each committed as it finishes (issue 10)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eksfold.config import AlignConfig, DatabaseConfig
from eksfold.pipeline import run_pipeline
from eksfold.progress import TextProgress

GOOD = ("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHD"
        "FSAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQIHFVHS")


class Events:
    """A reporter that keeps every update in order (on top of the text output)."""

    def __init__(self):
        self.text, self.seen = TextProgress(bars=False), []

    def start(self, run, status):
        self.text.start(run, status)

    def update(self, stage, tid, state, detail=None):
        self.seen.append((stage, tid, str(state)))
        self.text.update(stage, tid, state, detail)

    def close(self, interrupted=False):
        self.text.close(interrupted)


@pytest.fixture
def aligned(tmp_path, small_db, worker_env):
    """A run of four targets whose alignments are done (inference still to do)."""
    src = tmp_path / "in.fasta"
    src.write_text("".join(f">w{i}\n{GOOD[i * 30:i * 30 + 36]}\n" for i in range(4)))
    run = run_pipeline(src, str(tmp_path / "run"), preset="tiny", stages=("align",),
                       databases=DatabaseConfig(uniref90=str(small_db)),
                       reporter=TextProgress(bars=False))
    return run


def worker(root, *args, **kw):
    return subprocess.run([sys.executable, "-m", "eksfold.worker", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=600, **kw)


def mtimes(run, stage="infer"):
    return {t.id: p.stat().st_mtime_ns for t in run.targets
            if (p := Path(run.root) / "targets" / t.id / stage / "metrics.json").exists()}


def test_one_worker_builds_the_model_once_commits_each_unit_and_skips_done_ones(aligned):
    res = worker(aligned.root, "--stage", "infer", "--targets", "w0,w1,w2,w3")
    assert res.returncode == 0, res.stderr[-2000:]
    records = [aligned.record("infer", f"w{i}") for i in range(4)]
    assert all(r.done for r in records)
    # the model was built by the first unit only; the others reused it
    assert "model_load_s" in records[0].metrics and not records[0].metrics["model_reused"]
    assert all(r.metrics["model_reused"] and "model_load_s" not in r.metrics for r in records[1:])
    assert records[0].metrics["fixed_cost"]["stage_open_s"] > 0
    assert len({r.pod or r.host for r in records}) == 1
    assert all(set(r.outputs) >= {"unrelaxed.pdb", "plddt.npy"} for r in records)
    before = mtimes(aligned)
    again = worker(aligned.root, "--stage", "infer", "--targets", "w0,w1,w2,w3")
    assert again.returncode == 0 and again.stderr.count("already done, skipping") == 4
    assert mtimes(aligned) == before


def test_a_bad_target_mid_shard_fails_alone(aligned):
    sto = Path(aligned.root) / "targets" / "w1" / "align" / "uniref90_hits.sto"
    sto.write_text("# STOCKHOLM 1.0\nq NOT-AN-ALIGNMENT-OF-THE-QUERY\n//\n")
    res = worker(aligned.root, "--stage", "infer", "--targets", "w0,w1,w2")
    assert res.returncode == 2, res.stderr[-2000:]     # bad input only: not worth a retry
    w0, w1, w2 = (aligned.record("infer", t) for t in ("w0", "w1", "w2"))
    assert w0.done and w2.done and not w1.done
    assert w1.exit_code == 2 and "first row is not the target sequence" in w1.error


def test_a_killed_shard_resumes_without_redoing_committed_targets(aligned):
    proc = subprocess.Popen([sys.executable, "-m", "eksfold.worker", "--root", aligned.root,
                             "--stage", "infer", "--targets", "w0,w1,w2,w3"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = Path(aligned.root) / "targets" / "w0" / "infer" / "metrics.json"
    deadline = time.monotonic() + 300
    while not first.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = mtimes(aligned)
    assert "w0" in committed and len(committed) < 4
    res = worker(aligned.root, "--stage", "infer", "--targets", "w0,w1,w2,w3")
    assert res.returncode == 0, res.stderr[-2000:]
    after = mtimes(aligned)
    assert all(after[t] == committed[t] for t in committed)   # nothing committed was redone
    assert all(aligned.record("infer", f"w{i}").done for i in range(4))
    assert not list(Path(aligned.root).rglob("*.tmp"))


def test_serve_mode_takes_targets_on_stdin_and_reports_json_lines(aligned):
    proc = subprocess.Popen([sys.executable, "-m", "eksfold.worker", "--root", aligned.root,
                             "--stage", "infer", "--serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out, _ = proc.communicate("w2\nw3\n", timeout=600)
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["event"] == "ready"
    assert [(e["event"], e.get("target")) for e in events[1:]] == [
        ("started", "w2"), ("finished", "w2"), ("started", "w3"), ("finished", "w3")]
    assert all(e["exit_code"] == 0 for e in events if e["event"] == "finished")
    assert proc.returncode == 0


def test_local_executor_overlaps_alignment_and_inference(tmp_path, small_db, worker_env):
    src = tmp_path / "in.fasta"
    src.write_text("".join(f">o{i}\n{GOOD[i * 25:i * 25 + 50]}\n" for i in range(5)))
    events = Events()
    run = run_pipeline(src, str(tmp_path / "run"), preset="tiny",
                       databases=DatabaseConfig(uniref90=str(small_db)),
                       align=AlignConfig(jackhmmer_iterations=3), reporter=events)
    seen = events.seen
    first_infer = next(i for i, e in enumerate(seen) if e[0] == "infer" and e[2] == "queued")
    last_align = max(i for i, e in enumerate(seen) if e[0] == "align" and e[2] == "done")
    assert first_infer < last_align, seen      # inference began before alignment ended
    assert all(run.unit_status(s, t.id) == "done" for t in run.targets for s in ("align", "infer"))
    logs = list((Path(run.root) / "logs" / "infer").glob("worker-*.out"))
    assert len(logs) == 1                      # one warm inference worker did all five


def test_no_worker_outlives_a_killed_driver(tmp_path, small_db, worker_env):
    src = tmp_path / "in.fasta"
    src.write_text("".join(f">k{i}\n{GOOD[i * 30:i * 30 + 40]}\n" for i in range(3)))
    root = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "eksfold.cli", "run", str(src), "--root",
                             str(root), "--preset", "tiny", "--uniref90", str(small_db)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pattern = f"eksfold.worker --root {root}"
    deadline = time.monotonic() + 120
    while subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "no worker started"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "a worker outlived its driver by more than 5 s"
        time.sleep(0.1)
