"""Streaming and device-aware sizing on the executor side (issue 23), without Kubernetes.

The Kubernetes path itself is tested against the real control plane in
test_k8s_integration.py (test_streaming_inference_starts_before_the_last_alignment); here:
the Batcher's per-stage hold and device-aware shard costs (hand-computable from the reference
profile's published V100 points), the MMseqs2 Pod memory rule, and a real streaming worker
process that is started before its inputs exist.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from eksfold.alignment.podmemory import index_gib, pod_memory_gib, sized_for_index
from eksfold.config import AlignConfig, RunConfig
from eksfold.executors.kubernetes.batching import Batcher, shard_seconds
from eksfold.k8s.jobs import Sizing
from eksfold.run import Run
from eksfold.targets import Target

LETTERS = "ACDEFGHIKLMNPQRSTVWY"


def _targets(lengths: dict) -> list[Target]:
    return [Target(id=t, sequence=(LETTERS * 200)[:n]) for t, n in lengths.items()]


def test_gpu_shards_are_costed_on_the_gpu_not_the_cpu_formula():
    gpu = Sizing().for_length("infer", 384)
    # the reference profile's published V100 points (no GPU profile is committed): 256 -> 36 s,
    # 384 -> 66 s; the stage class's 2-core CPU formula would say 1 + 0.0071 * 384^1.77 = 268 s
    got = shard_seconds("infer", {"a": 256, "b": 384}, gpu)
    assert got == pytest.approx({"a": 36.0, "b": 66.0})
    from eksfold.stages import get_stage

    cls = get_stage("infer")
    cpu = cls.__new__(cls).predicted_seconds(384)   # no run: the default preset's back end
    assert cpu == pytest.approx(1 + 0.0071 * 384 ** 1.77) and cpu > 4 * got["b"]
    # alignment: the jackhmmer planning figure over the MEASURED MMseqs2 speedup (about 10x at
    # -s 5.7), not ColabFold's stated 40x: 900 s at 300 residues / 10.2
    align = shard_seconds("align", {"c": 300}, Sizing().for_length("align", 300), "mmseqs2")
    assert align["c"] == pytest.approx(900 / 10.2)


def test_batcher_holds_only_the_stage_with_a_lead(tmp_path):
    lengths = {"long": 900, "mid": 300, "short": 100}
    run = Run.create(str(tmp_path / "run"), _targets(lengths), RunConfig())
    b = Batcher(Sizing(), window={"infer": 3600.0}, max_shards={"align": 2, "infer": 2},
                fixed_cost_s={"align": 0.0, "infer": 0.0})
    b.add(run, "align", list(lengths))
    b.add(run, "infer", list(lengths))
    first = b.take()
    assert [s.stage for s in first] == ["align"]         # the GPU Job waits for its lead
    # LPT over 2 shards, each longest first; shard 0 holds the longest target
    assert first[0].shards == [["long"], ["mid", "short"]]
    later = b.take(force=True)
    # two size classes (900 residues: a 24 GiB Pod; 300 and 100: 12 GiB), the longest first
    assert [(s.stage, s.resources.size) for s in later] == [("infer", "std"), ("infer", "small")]
    assert later[0].shards == [["long"]] and later[1].shards == [["mid"], ["short"]]
    assert b.take(force=True) == []


def test_mmseqs_pods_ask_for_their_index(tmp_path):
    # index 40 GiB: 40 * 1.15 + 2 = 48 GiB; a small index keeps the size class's 16 GiB
    assert pod_memory_gib(40.0, base_gib=16) == 48 and pod_memory_gib(5.0, base_gib=16) == 16
    res = Sizing().for_length("align", 300)
    assert sized_for_index(res, 40.0).memory == "48Gi" and sized_for_index(res, None) == res
    prefix = tmp_path / "db"
    for name, size in (("db.idx", 3 * 2**20), ("db.idx.index", 2**20), ("db", 50 * 2**20)):
        with open(tmp_path / name, "wb") as fh:       # sparse files of these sizes
            fh.truncate(size)
    assert index_gib(str(prefix)) == pytest.approx(4 / 1024)   # the .idx* files only
    assert index_gib(str(tmp_path / "none")) is None and index_gib("s3://b/db") is None
    # the executor sizes a run's MMseqs2 alignment Pods from these files
    cfg = RunConfig(align=AlignConfig(msa_mode="mmseqs2", mmseqs_db=str(prefix)))
    run = Run.create(str(tmp_path / "run"), _targets({"x": 120}), cfg)
    assert Batcher(Sizing()).resources(run, "align", 120).memory == "16Gi"
    with open(tmp_path / "db.idx", "wb") as fh:
        fh.truncate(30 * 2**30)
    assert Batcher(Sizing()).resources(run, "align", 120).memory == f"{pod_memory_gib(30 + 1 / 1024, 16)}Gi"


@pytest.mark.slow
def test_streaming_worker_takes_targets_as_their_alignments_arrive(small_db, tmp_path,
                                                                   worker_env):
    """A real inference worker started before any alignment exists waits, then runs each
    target as its alignment is committed; the shard order is longest first."""
    from eksfold.config import DatabaseConfig
    from eksfold.pipeline import run_pipeline

    lengths = {"t60": 60, "t40": 40, "t25": 25}
    fasta = tmp_path / "in.fasta"
    fasta.write_text("".join(f">{t}\n{(LETTERS * 5)[:n]}\n" for t, n in lengths.items()))
    run = run_pipeline(fasta, str(tmp_path / "run"), preset="tiny", weights="random", stages=(),
                       databases=DatabaseConfig(uniref90=str(small_db)))
    env = {**os.environ, "EKSFOLD_FOLLOW_S": "300"}
    run.write_batch("infer-0001-std", [["t60", "t40", "t25"]])   # one index, as a Job's
    infer = subprocess.Popen([sys.executable, "-m", "eksfold.worker", "--root", run.root,
                              "--stage", "infer", "--batch", "infer-0001-std", "--index", "0"],
                             env=env, stderr=subprocess.PIPE, text=True)
    time.sleep(3.0)
    assert infer.poll() is None                  # waiting, not failed for missing inputs
    assert all(run.record("infer", t) is None for t in lengths)
    # alignments committed shortest first: the worker takes each as it arrives
    subprocess.run([sys.executable, "-m", "eksfold.worker", "--root", run.root, "--stage",
                    "align", "--targets", "t25,t40,t60"], env=os.environ, check=True,
                   capture_output=True, timeout=300)
    _, err = infer.communicate(timeout=600)
    assert infer.returncode == 0, err[-2000:]
    for t in lengths:
        a, i = run.record("align", t), run.record("infer", t)
        assert a.done and i.done and i.started >= a.finished
    order = [ln.split("infer ", 1)[1].split(" ")[0] for ln in err.splitlines()
             if " starting" in ln and "infer t" in ln]
    assert sorted(order) == sorted(lengths)
    # the progress file the driver reads for a streaming shard: what ran, in the worker's order
    assert run.read_shard_progress("infer-0001-std", 0) == {"running": None, "done": order}


def test_the_tracker_reports_a_streaming_shard_from_its_progress(tmp_path):
    """A streaming worker takes targets out of shard order; the driver's events follow its
    progress file, not the shard order (in-order reading would wait on `a` forever)."""
    from eksfold.executors.kubernetes.batching import Shard
    from eksfold.executors.kubernetes.observe import ShardTracker
    from eksfold.k8s.status import UnitStatus

    run = Run.create(str(tmp_path / "run"), _targets({"a": 90, "b": 60, "c": 30}), RunConfig())
    shard = Shard(run, "rid", "infer", "infer-0001-std", [["a", "b", "c"]], 0,
                  Sizing().for_length("infer", 90), True, job="j", streaming=True)
    tracker = ShardTracker(60)
    tracker.add(shard)
    running = UnitStatus("running", pod="p0")

    def seen(st):
        return [(e.target, str(e.state)) for e in tracker.events(shard, st)]

    assert seen(running) == []                                    # no progress yet
    run.write_shard_progress("infer-0001-std", 0, "c", [])       # `a` and `b` still align
    assert seen(running) == [("c", "running")]
    run.write_shard_progress("infer-0001-std", 0, "b", ["c"])
    got = seen(running)
    assert got == [("c", "finished"), ("b", "running")]
    assert seen(running) == []                                    # nothing twice
    run.write_shard_progress("infer-0001-std", 0, None, ["c", "b", "a"])
    assert seen(running) == [("b", "finished")]                   # the last waits for the Pod
    assert seen(UnitStatus("finished", pod="p0")) == [("a", "finished")]


def test_inference_pod_memory_classes_cover_the_measured_host_peak():
    """Each inference size class's memory holds the measured host peak (committed CSV of
    `eksfold bench hostmem`) at its longest length and 30,000 MSA rows, plus the weights, the
    stated CUDA allowance and 25 %; the small class fits a 16 GiB xlarge GPU node."""
    import csv
    from importlib.resources import files

    from eksfold.bench.hostmem import CUDA_HOST_GIB
    from eksfold.planner.karpenter import default_cluster

    rows = list(csv.DictReader(files("eksfold").joinpath(
        "profiles/cpu-2core/infer-host-memory.csv").open()))
    model = next(r for r in rows if r["kind"] == "model")
    weights = float(model["peak_rss_mb"]) - float(model["rss_imported_mb"])
    at = {int(r["length"]): float(r["peak_rss_mb"]) for r in rows
          if r["kind"] == "features" and int(r["depth"]) == 30000}

    def peak(length):   # linear between the measured lengths
        lo = max(n for n in at if n <= length)
        hi = min(n for n in at if n >= length)
        return at[lo] if lo == hi else at[lo] + (at[hi] - at[lo]) * (length - lo) / (hi - lo)

    classes = [c for c in Sizing().classes["infer"] if c.max_length is not None
               and c.max_length <= max(at)]
    assert [c.resources.size for c in classes] == ["small", "std"]
    for c in classes:
        need_gib = (peak(c.max_length) + weights + CUDA_HOST_GIB * 1024) * 1.25 / 1024
        assert need_gib <= float(c.resources.memory.rstrip("Gi")), (c.resources.size, need_gib)
    small = classes[0].resources
    g5 = next(p for p in default_cluster().pools if p.name == "eksfold-infer")
    assert g5.instance == "g5.xlarge" and g5.fits(float(small.cpu), 12.0, 1)


def test_a_unit_whose_pod_was_oomkilled_gets_the_next_size_class(tmp_path):
    from eksfold.memory.kills import record_kill

    lengths = {"a": 300, "b": 250}
    run = Run.create(str(tmp_path / "run"), _targets(lengths), RunConfig())
    b = Batcher(Sizing(), max_shards={"infer": 2}, fixed_cost_s={"infer": 0.0})
    assert b.unit_resources(run, "infer", "a").size == "small"
    # a kill of unknown cause (a spot reclaim, a user's SIGKILL) is no reason for more memory
    record_kill(run.store, "infer", "a", "unknown", "Pod x disrupted", "kubernetes")
    assert b.unit_resources(run, "infer", "a").memory == "12Gi"
    record_kill(run.store, "infer", "a", "oom", "Pod x OOMKilled (exit code 137)", "kubernetes")
    assert (b.unit_resources(run, "infer", "a").size,
            b.unit_resources(run, "infer", "a").memory) == ("std", "24Gi")
    from eksfold.memory.kills import oom_counts

    assert oom_counts(run.store, "infer") == {"a": 1}     # b has no kill file; a's unknown kill
    assert oom_counts(run.store, "align") == {}           # does not count
    b.add(run, "infer", ["a", "b"])
    got = {s.resources.size: s.shards for s in b.take(force=True)}
    assert got == {"std": [["a"]], "small": [["b"]]}
    # the last class is the ceiling
    for _ in range(5):
        record_kill(run.store, "infer", "a", "oom", "OOMKilled", "kubernetes")
    assert b.unit_resources(run, "infer", "a") == Sizing().classes["infer"][-1].resources
