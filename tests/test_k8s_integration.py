"""The Kubernetes executor against a real control plane (etcd + kube-apiserver/controller-manager/
scheduler on 127.0.0.1, see tests/k8s_cluster.py); a stand-in kubelet runs the Pods' worker
commands locally. Nothing is mocked on the API side: Jobs are validated and defaulted by the
server, Pods are created by the Job controller and placed by the real scheduler.

One suite for both Job forms: CI's 1.20 predates Indexed Jobs, so there the executor uses its
fallback form (one Job per shard, index passed explicitly); on >= 1.29 (``$EKSFOLD_K8S_BIN``)
the same tests run the Indexed form. Assertions read a Pod's shard from the batch file at its
index, which both forms share; checks of Indexed-only behaviour skip, saying why, where the
server does not serve it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kubernetes.client.rest import ApiException

from eksfold.config import DatabaseConfig
from eksfold.executors.kubernetes import KubernetesExecutor
from eksfold.k8s import jobs as kjobs
from eksfold.k8s import names
from eksfold.k8s.status import pod_index
from eksfold.memory.kills import read_kills
from eksfold.pipeline import run_pipeline
from eksfold.progress import TextProgress
from eksfold.results import load_summary
from eksfold.run import Run

import k8s_cluster

pytestmark = pytest.mark.k8s
PROJECT = Path(__file__).resolve().parents[1]
GOOD = ("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQ"
        "HDFSAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQ")
# Columns that must agree between executors (timings and memory differ run to run).
SAME = ["target", "length", "pdb_id", "chain", "align_status", "msa_depth", "infer_status",
        "device", "preset", "weights", "untrained", "mean_plddt", "ptm", "error"]


@pytest.fixture(scope="session")
def k8s(tmp_path_factory):
    missing = k8s_cluster.missing_binaries()
    if missing:
        pytest.fail("Kubernetes control plane not built: missing " + ", ".join(missing)
                    + ". Run `make test-setup` (tools/k8s/build_control_plane.sh builds it once per "
                    "machine, 5-15 minutes).")
    cluster = k8s_cluster.Cluster(tmp_path_factory.mktemp("k8s"))
    # the worker image's environment: this checkout's package and the venv's `python`
    image_env = {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
                 "PYTHONPATH": str(PROJECT / "lib") + os.pathsep + os.environ.get("PYTHONPATH", ""),
                 # the base worker image has no OpenFold3 environment ...
                 "EKSFOLD_OF3_PYTHON": "/opt/openfold3-not-in-this-image/bin/python"}
    # ... the OpenFold3 worker image has (cluster/images/worker-openfold3 sets the same variable)
    images = {"eksfold-worker-openfold3": {
        "EKSFOLD_OF3_PYTHON": str(PROJECT / ".venv-of3" / "bin" / "python")}}
    try:
        cluster.start(image_env, images=images)
    except Exception:
        print(cluster.diagnostics())
        cluster.stop()
        raise
    print(f"\ncontrol plane + nodes ready in {cluster.startup_s:.1f}s")
    yield cluster
    cluster.stop()


def executor(k8s, **kw) -> KubernetesExecutor:
    opts = dict(kubeconfig=str(k8s.kubeconfig), volume_root=str(k8s.volume_dir),
                poll_interval=0.3, retries=0, unschedulable_timeout=60)
    opts.update(kw)
    return KubernetesExecutor(**opts)


def fasta(path: Path, records) -> Path:
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in records))
    return path


def run_root(k8s, name: str) -> Path:
    return k8s.volume_dir / "runs" / name


def wait_events(ex, n: int, timeout: float = 120) -> list:
    events, deadline = [], time.monotonic() + timeout
    while len([e for e in events if e.state not in ("running", "waiting")]) < n:
        assert time.monotonic() < deadline, f"timed out; events so far: {events}"
        events += ex.poll()
        time.sleep(0.2)
    return events


def pod_shard(r) -> list[str]:
    """The targets a Pod (a kubelet run) was given: its batch file's shard at its index
    ($JOB_COMPLETION_INDEX, set on both Job forms)."""
    root = r.argv[r.argv.index("--root") + 1]         # the kubelet mapped /fsx to the volume
    batch = r.argv[r.argv.index("--batch") + 1]
    return Run.open(root).read_batch(batch)[int(r.env[kjobs.INDEX_ENV])]


def indexed(k8s) -> bool:
    """Whether this server runs the executor's Indexed form (else one Job per shard)."""
    return k8s.api.supports_indexed()


def skip_unless_indexed(k8s) -> None:
    if not indexed(k8s):
        pytest.skip(f"Kubernetes {'.'.join(map(str, k8s.version))} serves no Indexed Jobs with "
                    "backoffLimitPerIndex and podFailurePolicy (>= 1.29): the executor runs its "
                    "fallback form here, covered by the other tests")


def running_pods(k8s, root: Path) -> list:
    return [r for r in k8s.kubelet.history if str(root) in r.argv and r.proc.poll() is None]


def aligned_run(k8s, tmp_path, small_db, name: str, records) -> Run:
    """A run root on the shared volume with every target aligned (locally: fast set-up)."""
    src, root = fasta(tmp_path / f"{name}.fasta", records), run_root(k8s, name)
    return run_pipeline(src, str(root), preset="tiny", stages=("align",),
                        databases=DatabaseConfig(uniref90=str(small_db)))


def pdb_atoms(path: Path) -> tuple[list[str], np.ndarray]:
    """(atom identities, backbone N/CA/C/CB coordinates). With random weights the torsion
    outputs are zero vectors, so O and side-chain atoms differ between any two runs, local ones
    included; the backbone frames are reproducible."""
    atoms = [ln for ln in path.read_text().splitlines() if ln.startswith("ATOM")]
    backbone = [ln for ln in atoms if ln[12:16].strip() in ("N", "CA", "C", "CB")]
    return ([ln[12:27] for ln in atoms],
            np.array([[float(ln[30:38]), float(ln[38:46]), float(ln[46:54])] for ln in backbone]))


def test_end_to_end_matches_local_executor(k8s, cameo_fasta, small_db, tmp_path, worker_env):
    common = dict(preset="tiny", weights="random", limit=3, shortest=True,
                  databases=DatabaseConfig(uniref90=str(small_db)))
    t0 = time.monotonic()
    local = run_pipeline(cameo_fasta, str(tmp_path / "local"), reporter=TextProgress(bars=False),
                         **common)
    t1 = time.monotonic()
    root = run_root(k8s, "e2e")
    ex_opts = dict(kubeconfig=str(k8s.kubeconfig), volume_root=str(k8s.volume_dir),
                   poll_interval=0.3, ttl_seconds=600)
    kube = run_pipeline(cameo_fasta, str(root), executor="kubernetes", executor_options=ex_opts,
                        reporter=TextProgress(bars=False), **common)
    print(f"local {t1 - t0:.1f}s, kubernetes {time.monotonic() - t1:.1f}s")

    a, b = load_summary(local.root), load_summary(kube.root)
    assert len(a) == 3 and (b.infer_status == "done").all()
    pd.testing.assert_frame_equal(a[SAME], b[SAME])
    # same output files; identical alignments; same structures and confidences
    def files(r):
        return sorted(p.relative_to(r).as_posix() for p in Path(r).glob("targets/**/*")
                      if p.is_file() and p.name != "metrics.json")

    assert files(local.root) == files(kube.root)
    for rel in files(local.root):
        pa, pb = Path(local.root) / rel, Path(kube.root) / rel
        if pa.suffix == ".sto":
            assert pa.read_bytes() == pb.read_bytes(), rel
        elif pa.suffix == ".pdb":
            (ids_a, xyz_a), (ids_b, xyz_b) = pdb_atoms(pa), pdb_atoms(pb)
            assert ids_a == ids_b, rel
            np.testing.assert_allclose(xyz_a, xyz_b, atol=2e-3)
        elif pa.suffix == ".npy":
            np.testing.assert_allclose(np.load(pa), np.load(pb), atol=1e-3)
    # it really went through Kubernetes: Pods bound by the scheduler to the right pools,
    # with the worker command of docs/DESIGN.md on the /fsx view of the run root
    # Each Pod is a warm worker running a shard: fewer Pods than units, every unit run once
    ran = [r for r in k8s.kubelet.history if str(root) in r.argv]
    assert 2 <= len(ran) < 6
    shards = {"align": [], "infer": []}
    for r in ran:
        stage = r.argv[r.argv.index("--stage") + 1]
        assert r.argv[1:3] == ["-m", "eksfold.worker"] and "--batch" in r.argv
        if indexed(k8s):        # the worker reads $JOB_COMPLETION_INDEX
            assert "--index" not in r.argv
        else:
            assert r.env[kjobs.INDEX_ENV] == r.argv[r.argv.index("--index") + 1]
        assert r.node.startswith("align-" if stage == "align" else "infer-")
        assert r.env["OMP_NUM_THREADS"] in ("8", "4", "3")   # align, infer std / small Pods
        shards[stage] += pod_shard(r)
    assert sorted(shards["align"]) == sorted(shards["infer"]) == sorted(b.target)
    # the record names the very Pod that ran the unit (downward API), not a shared hostname
    for stage in ("align", "infer"):
        for t in b.target:
            metrics = json.loads((root / "targets" / t / stage / "metrics.json").read_text())
            (pod,) = [r.name for r in ran if r.argv[r.argv.index("--stage") + 1] == stage
                      and t in pod_shard(r)]
            assert metrics["pod"] == pod
    batches = sorted(p.name for p in (root / "batches").iterdir())
    assert batches and all(json.loads((root / "batches" / n).read_text()) for n in batches)
    jobs_ = KubernetesExecutor(kubeconfig=str(k8s.kubeconfig),
                               volume_root=str(k8s.volume_dir)).run_jobs(kube)
    assert {j.metadata.labels[names.STAGE_LABEL] for j in jobs_} == {"align", "infer"}
    job = jobs_[0]
    # 1.20 drops completionMode: the executor fell back to one Job per shard
    assert job.spec.completion_mode == ("Indexed" if indexed(k8s) else None)
    assert job.spec.ttl_seconds_after_finished == 600      # TTLAfterFinished gate honoured
    tpl = job.spec.template
    assert tpl.metadata.annotations[names.DO_NOT_DISRUPT_ANNOTATION] == "true"
    assert tpl.spec.service_account_name == names.WORKER_SERVICE_ACCOUNT


def test_failed_unit_retried_reported_and_resubmit_reruns_only_it(k8s, small_db, tmp_path,
                                                                  worker_env):
    records = [("alpha", GOOD[:50]), ("beta", GOOD[50:110]), ("gamma", GOOD[110:170])]
    src, root = fasta(tmp_path / "in.fasta", records), run_root(k8s, "failing")
    opts = dict(kubeconfig=str(k8s.kubeconfig), volume_root=str(k8s.volume_dir),
                poll_interval=0.3, retries=1, shard_size=1)   # one target per Pod
    common = dict(preset="tiny", databases=DatabaseConfig(uniref90=str(small_db)),
                  executor="kubernetes", reporter=TextProgress(bars=False), executor_options=opts)
    run_pipeline(src, str(root), stages=("align",), **common)
    # a malformed extra alignment (ragged rows) makes OpenFold's feature code crash: exit 1
    broken = root / "targets" / "beta" / "align" / "bfd_uniclust_hits.a3m"
    broken.write_text(f">beta\n{GOOD[50:110]}\n>hit\nMK\n")
    n_pods = len(k8s.kubelet.history)
    run = run_pipeline(src, str(root), **common)
    df = load_summary(run.root).set_index("target")
    assert df.loc["beta", "infer_status"] == "failed" and "ValueError" in df.loc["beta", "error"]
    assert (df.drop("beta").infer_status == "done").all()
    tried = [",".join(pod_shard(r)) for r in k8s.kubelet.history[n_pods:]]
    assert sorted(tried) == ["alpha", "beta", "beta", "gamma"]   # one retry (retries=1)

    ex = executor(k8s)
    err = ex.unit_failure(run, "infer", "beta")
    assert err.exit_code == 1 and "ValueError" in err.reason
    assert "Traceback" in err.stderr_tail                # the worker's log, read from the run root
    assert ex.unit_failure(run, "infer", "alpha") is None

    before = {t: (root / "targets" / t / "infer" / "metrics.json").stat().st_mtime_ns
              for t in ("alpha", "gamma")}
    n_pods = len(k8s.kubelet.history)
    broken.unlink()
    status = ex.resubmit(run, reporter=TextProgress(bars=False))
    assert all(v == "done" for v in status.values())
    new = k8s.kubelet.history[n_pods:]
    assert [(r.argv[r.argv.index("--stage") + 1], pod_shard(r)) for r in new] == [
        ("infer", ["beta"])]
    assert before == {t: (root / "targets" / t / "infer" / "metrics.json").stat().st_mtime_ns
                      for t in ("alpha", "gamma")}
    assert (load_summary(run.root).infer_status == "done").all()


def test_bad_input_fails_fast_without_retries(k8s, small_db, tmp_path, worker_env):
    """Exit code 2 (deterministic) is not retried even with retries left (podFailurePolicy's
    FailIndex, applied by the executor on servers without it)."""
    src = fasta(tmp_path / "in.fasta", [("solo", GOOD[:40])])
    root = run_root(k8s, "badinput")
    run = run_pipeline(src, str(root), preset="tiny", stages=(),
                       databases=DatabaseConfig(uniref90=str(small_db)))
    ex = executor(k8s, retries=3, ttl_seconds=3)
    ex.launch(run, "infer", ["solo"])           # no alignment yet: the worker exits 2
    events = wait_events(ex, 1)
    final = [e for e in events if e.state not in ("running", "waiting")]
    assert final[0].state == "failed" and final[0].detail.startswith("exit code 2")
    time.sleep(2)
    ran = [r for r in k8s.kubelet.history if str(root) in r.argv]
    assert len(ran) == 1                         # no retry Pod
    assert not [j for j in ex.run_jobs(run) if (j.status.active or 0) > 0]
    err = ex.unit_failure(run, "infer", "solo")
    assert err.exit_code == 2 and "alignment" in err.reason
    # ttlSecondsAfterFinished: the TTL controller removes the finished Job, and the reason
    # stays readable from the run root (the executor recorded it: the worker could not)
    k8s_cluster.wait_until(lambda: not ex.run_jobs(run), 60, "the TTL controller")
    later = ex.unit_failure(run, "infer", "solo")
    assert later.exit_code == 2 and "exit code 2" in later.reason


def test_unschedulable_unit_reported_with_scheduler_reason(k8s, small_db, tmp_path, worker_env):
    src = fasta(tmp_path / "in.fasta", [("huge", GOOD[:40])])
    root = run_root(k8s, "nogpu")
    run = run_pipeline(src, str(root), preset="tiny", stages=(),
                       databases=DatabaseConfig(uniref90=str(small_db)))
    # every GPU node has one GPU: a unit asking for four can never be placed
    ex = executor(k8s, sizing=kjobs.Sizing().scaled(gpu=4), unschedulable_timeout=3)
    ex.launch(run, "infer", ["huge"])
    events = wait_events(ex, 1, timeout=60)
    # first shown as waiting (not final: Karpenter may still add a node), with the reason
    (waiting,) = [e for e in events if e.state == "waiting"]
    assert "Insufficient nvidia.com/gpu" in waiting.detail
    (final,) = [e for e in events if e.state not in ("running", "waiting")]
    assert final.state == "failed"
    assert final.detail.startswith("unschedulable: 0/3 nodes are available")
    assert "Insufficient nvidia.com/gpu" in final.detail
    err = ex.unit_failure(run, "infer", "huge")
    assert err is not None and "Insufficient nvidia.com/gpu" in err.reason
    k8s_cluster.wait_until(lambda: not ex.run_jobs(run), 30, "the abandoned Job to be deleted")
    assert not [r for r in k8s.kubelet.history if str(root) in r.argv]


def test_abandoned_index_is_stopped_for_real_and_resubmit_reruns_it(k8s, small_db, tmp_path,
                                                                     worker_env):
    """Three 1-GPU shards, two GPU nodes: the shard that gets no node within the timeout is
    reported failed (scheduler's reason), its Pod is deleted and its shard withdrawn in the
    batch file, so it never runs later, even when a GPU frees; no Job stays active, and
    resubmit reruns only that unit."""
    records = [(f"g{i}", GOOD[i * 30:i * 30 + 40]) for i in range(3)]
    run = aligned_run(k8s, tmp_path, small_db, "abandon", records)
    root = Path(run.root)
    ex = executor(k8s, shard_size=1, unschedulable_timeout=2)
    ex.launch(run, "infer", [t for t, _ in records])
    events = wait_events(ex, 3, timeout=300)
    final = {e.target: e for e in events if e.state not in ("running", "waiting")}
    failed = [t for t, e in final.items() if e.state == "failed"]
    assert len(failed) == 1, final           # two GPUs: two shards ran, the third waited
    (lost,) = failed
    assert final[lost].detail.startswith("unschedulable: ")
    assert "Insufficient nvidia.com/gpu" in final[lost].detail
    assert [e for e in events if e.target == lost and e.state == "waiting"]
    record = run.record("infer", lost)
    assert record.reason == "Unschedulable" and not record.done
    (batch,) = {r.argv[r.argv.index("--batch") + 1] for r in k8s.kubelet.history
                if str(root) in r.argv}
    shards = run.read_batch(batch)
    (index,) = [i for i, shard in enumerate(shards) if shard == [lost]]
    assert set(run.abandoned_shards(batch)) == {index}
    # a Job whose indexes are all finished or abandoned does not stay active
    k8s_cluster.wait_until(lambda: not [j for j in ex.run_jobs(run) if (j.status.active or 0)],
                           60, "no active Job of the run")
    time.sleep(3)   # were the index still wanted, a freed GPU would take it by now
    assert run.record("infer", lost).to_dict() == record.to_dict()   # not overwritten
    for r in [r for r in k8s.kubelet.history if str(root) in r.argv and pod_shard(r) == [lost]]:
        # only an Indexed Job's replacement Pod can start: it runs nothing and exits 0
        r.proc.wait(30)
        assert r.proc.returncode == 0 and "abandoned" in r.log.read_text()
    # what any later Pod of that index runs (on the Indexed form the Job controller may make
    # one): the worker reads the withdrawal from the batch file and runs nothing
    late = subprocess.run([sys.executable, "-m", "eksfold.worker", "--root", str(root), "--stage",
                           "infer", "--batch", batch, "--index", str(index)],
                          capture_output=True, text=True, timeout=300)
    assert late.returncode == 0 and "abandoned" in late.stderr, late.stderr[-2000:]
    assert run.record("infer", lost).to_dict() == record.to_dict()
    err = ex.unit_failure(run, "infer", lost)
    assert "Insufficient nvidia.com/gpu" in err.reason

    n_pods = len(k8s.kubelet.history)
    status = executor(k8s, shard_size=1).resubmit(run, stages=("infer",),
                                                  reporter=TextProgress(bars=False))
    assert all(v == "done" for v in status.values()) and len(status) == 3
    assert [pod_shard(r) for r in k8s.kubelet.history[n_pods:]] == [[lost]]
    assert run.record("infer", lost).done


def _launch_one_and_wait_running(k8s, tmp_path, small_db, name: str, **opts):
    run = aligned_run(k8s, tmp_path, small_db, name, [("solo", GOOD[:40])])
    ex = executor(k8s, **opts)
    ex.launch(run, "infer", ["solo"])
    events = []

    def started():
        events.extend(ex.poll())
        return running_pods(k8s, Path(run.root))
    (victim,) = k8s_cluster.wait_until(started, 120, "the unit's Pod to be running")
    return run, ex, victim, events


def test_oom_killed_pod_recorded_as_an_oom_kill_of_its_unit(k8s, small_db, tmp_path, worker_env):
    """The kubelet reports the container OOMKilled: the executor records an ``oom`` kill for the
    unit the Pod was running (the evidence that lets inference step its setting down)."""
    run, ex, victim, events = _launch_one_and_wait_running(k8s, tmp_path, small_db, "oom")
    k8s.kubelet.oom_kill(victim.name)
    events += wait_events(ex, 1)
    (final,) = [e for e in events if e.state not in ("running", "waiting")]
    assert final.state == "failed" and "OOMKilled" in final.detail
    (kill,) = read_kills(run.store, "infer", "solo")
    assert kill["cause"] == "oom" and kill["executor"] == "kubernetes"
    assert kill["evidence"] == f"Pod {victim.name} OOMKilled (exit code 137)"
    try:
        pod = k8s.api.core.read_namespaced_pod(victim.name, names.NAMESPACE)
        term = pod.status.container_statuses[0].state.terminated
        assert (pod.status.phase, term.reason, term.exit_code) == ("Failed", "OOMKilled", 137)
    except ApiException as exc:
        # the Pod can be gone by now (seen once in a full-suite run, 404): the evidence above
        # is what the executor read from its status; the kubelet's own account must agree
        assert exc.status == 404
        assert (victim.killed_for, victim.exit_code) == ("OOMKilled", 137)
    record = run.record("infer", "solo")
    assert record.reason == "OOMKilled" and record.exit_code == 137 and not record.done



def test_oom_killed_pod_is_retried_in_the_next_size_class(k8s, small_db, tmp_path, worker_env):
    """A unit whose Pod was OOMKilled outgrew its size class's host memory (e.g. an MSA deeper
    than the class allows for): its retry asks for the next class, not the same Pod again."""
    run, ex, victim, events = _launch_one_and_wait_running(k8s, tmp_path, small_db, "oomup",
                                                           retries=1)

    def memory(pod_name):
        pod = k8s.api.core.read_namespaced_pod(pod_name, names.NAMESPACE)
        return pod.spec.containers[0].resources.requests["memory"]

    assert memory(victim.name) == "12Gi"          # 40 residues: the small class
    k8s.kubelet.oom_kill(victim.name)
    retry = []

    def retried():
        events.extend(ex.poll())
        retry[:] = [r for r in running_pods(k8s, Path(run.root)) if r.name != victim.name]
        return retry
    k8s_cluster.wait_until(retried, 120, "the retry's Pod to be running")
    assert memory(retry[0].name) == "24Gi"        # the next class
    events += wait_events(ex, 1, timeout=300)
    assert run.record("infer", "solo").done


def test_evicted_pod_gets_a_terminal_phase_is_retried_and_recorded_as_unknown_kill(
        k8s, small_db, tmp_path, worker_env):
    """Node-pressure eviction as kubelets >= 1.27 report it (Failed, exit 137,
    DisruptionTarget): not the unit's fault, so retried without counting (retries=0 here), and
    recorded as a kill of unknown cause: it must not step the unit's setting down."""
    run, ex, victim, events = _launch_one_and_wait_running(k8s, tmp_path, small_db, "evict")
    k8s.kubelet.evict(victim.name)
    kills = []

    def done():
        events.extend(ex.poll())
        kills[:] = kills or read_kills(run.store, "infer", "solo")   # before a commit clears it
        return [e for e in events if e.state not in ("running", "waiting")]
    (final,) = k8s_cluster.wait_until(done, 300, "the retried unit to end", interval=0.2)
    assert final.state == "finished" and run.record("infer", "solo").done
    (kill,) = kills
    assert kill["cause"] == "unknown"
    assert kill["evidence"].startswith(f"Pod {victim.name} disrupted (TerminationByKubelet), "
                                       "exit code 137")
    pod = k8s.api.core.read_namespaced_pod(victim.name, names.NAMESPACE)
    term = pod.status.container_statuses[0].state.terminated
    assert (pod.status.phase, pod.status.reason, term.exit_code) == ("Failed", "Evicted", 137)
    assert [(c.status, c.reason) for c in pod.status.conditions
            if c.type == "DisruptionTarget"] == [("True", "TerminationByKubelet")]
    ran = [r for r in k8s.kubelet.history if str(run.root) in r.argv]
    assert len(ran) == 2 and run.record("infer", "solo").pod == ran[1].name


def test_deleted_running_pod_recorded_as_unknown_kill(k8s, small_db, tmp_path, worker_env):
    """A running unit's Pod deleted (a user, a drain by hand): the stand-in kubelet stops it and
    writes its terminal phase first, as kubelets >= 1.27 do; the executor records a kill of
    unknown cause for the unit."""
    run, ex, victim, events = _launch_one_and_wait_running(k8s, tmp_path, small_db, "delpod")
    k8s.api.core.delete_namespaced_pod(victim.name, names.NAMESPACE)
    kills = []

    def seen():
        events.extend(ex.poll())
        kills[:] = kills or read_kills(run.store, "infer", "solo")
        return kills
    k8s_cluster.wait_until(seen, 120, "the kill to be recorded", interval=0.2)
    ((kill,),) = [kills]
    assert kill["cause"] == "unknown" and victim.name in kill["evidence"]
    assert victim.proc.poll() is not None
    ex.cancel()


def test_indexed_form_fields_and_counts_where_served(k8s, small_db, tmp_path, worker_env):
    """>= 1.29 only: the server keeps the Indexed fields, retries an index that exited 1 once
    (job-index-failure-count), replaces an evicted Pod without counting
    (job-index-ignored-failure-count), and fails the Job on its failed index alone."""
    skip_unless_indexed(k8s)
    run = aligned_run(k8s, tmp_path, small_db, "indexed",
                      [("good", GOOD[:40]), ("bad", GOOD[50:90])])
    root = Path(run.root)
    (root / "targets" / "bad" / "align" / "bfd_uniclust_hits.a3m").write_text(
        f">bad\n{GOOD[50:90]}\n>hit\nMK\n")   # ragged rows: OpenFold's features fail, exit 1
    ex = executor(k8s, shard_size=1, retries=1)
    ex.launch(run, "infer", ["good", "bad"])
    (job,) = ex.run_jobs(run)
    spec = job.spec
    assert spec.completion_mode == "Indexed" and spec.completions == 2
    assert spec.backoff_limit_per_index == 1 and spec.max_failed_indexes == 2
    rules = spec.pod_failure_policy.rules
    assert (rules[0].action, rules[0].on_pod_conditions[0].type) == ("Ignore", "DisruptionTarget")
    assert (rules[1].action, rules[1].on_exit_codes.values) == ("FailIndex", [2])
    cmd = spec.template.spec.containers[0].command
    shards = run.read_batch(cmd[cmd.index("--batch") + 1])
    events = []

    def good_running():
        events.extend(ex.poll())
        return [r for r in running_pods(k8s, root) if pod_shard(r) == ["good"]]
    (victim,) = k8s_cluster.wait_until(good_running, 120, "the good index running")
    k8s.kubelet.evict(victim.name)
    events += wait_events(ex, 2, timeout=300)
    final = {e.target: e.state for e in events if e.state not in ("running", "waiting")}
    assert final == {"good": "finished", "bad": "failed"}
    pods = k8s.api.core.list_namespaced_pod(
        names.NAMESPACE, label_selector=f"job-name={job.metadata.name}").items

    def annotations(shard):   # of the index's Pods, oldest first
        return [p.metadata.annotations for p in sorted(pods, key=lambda p: (
                p.metadata.creation_timestamp, p.metadata.name))
                if pod_index(p) == shards.index(shard)]
    good_pods, bad_pods = annotations(["good"]), annotations(["bad"])
    assert len(good_pods) == 2 and len(bad_pods) == 2
    assert good_pods[1].get("batch.kubernetes.io/job-index-ignored-failure-count") == "1"
    assert bad_pods[1].get("batch.kubernetes.io/job-index-failure-count") == "1"
    done = k8s.api.batch.read_namespaced_job(job.metadata.name, names.NAMESPACE)
    assert done.status.failed_indexes == str(shards.index(["bad"]))
    assert done.status.completed_indexes == str(shards.index(["good"]))


def test_cancel_stops_jobs_pods_and_processes(k8s, small_db, tmp_path, worker_env):
    records = [(f"c{i}", GOOD[i * 30:i * 30 + 40]) for i in range(4)]
    src, root = fasta(tmp_path / "in.fasta", records), run_root(k8s, "cancel")
    run = run_pipeline(src, str(root), preset="tiny", stages=("align",),
                       databases=DatabaseConfig(uniref90=str(small_db)))  # local: fast set-up
    ex = executor(k8s, shard_size=1)
    ex.launch(run, "infer", [t for t, _ in records])   # inference takes seconds: cancel mid-way

    def running():
        return [r for r in k8s.kubelet.history if str(root) in r.argv and r.proc.poll() is None]
    victims = k8s_cluster.wait_until(running, 60, "an inference Pod to be running", interval=0.05)
    ex.cancel()
    other = executor(k8s)                      # another session (e.g. a notebook) sees nothing left
    k8s_cluster.wait_until(lambda: not other.run_jobs(run), 30, "the Jobs to be deleted")
    core = k8s.api.core
    k8s_cluster.wait_until(lambda: not core.list_namespaced_pod(
        names.NAMESPACE, label_selector=f"{names.RUN_LABEL}={ex.run_id(run)}").items, 60,
        "the Pods to be deleted")
    k8s_cluster.wait_until(lambda: not running(), 30, "the processes to stop")
    assert ex.poll() == []
    # the running worker was stopped (SIGTERM: exit 130, or -15 before its handler was set);
    # the two GPU nodes fit two inference units at once, so the others never started
    # (-9: the kubelet's 5 s grace ran out while a busy machine unwound the forward pass)
    assert all(r.proc.returncode in (130, -15, -9) for r in victims), [r.proc.returncode for r in victims]
    assert len([r for r in k8s.kubelet.history if str(root) in r.argv]) <= 2
    assert Run.open(str(root)).unit_status("infer", pod_shard(victims[0])[0]) != "done"
    # cancel_run from another session: the run's label alone finds its Jobs
    ex.launch(run, "infer", ["c0"])
    assert other.cancel_run(run)
    k8s_cluster.wait_until(lambda: not other.run_jobs(run), 30, "the Jobs to be deleted")


def test_config_from_kubeconfig_and_from_in_cluster_service_account(k8s, tmp_path, monkeypatch):
    import base64

    from eksfold.k8s.client import connect, in_cluster
    api = connect(kubeconfig=k8s.kubeconfig)        # a laptop: kubeconfig and its context
    # the version the server reports is the one its binary was built as
    assert api.namespace == names.NAMESPACE and api.version == k8s.plane.version
    assert api.supports_indexed() == (api.version >= (1, 29))
    # a notebook Pod: the service-account token, CA and namespace files the kubelet mounts
    sa_dir = k8s.service_account_files(names.WORKER_SERVICE_ACCOUNT, tmp_path / "serviceaccount")
    sa = api.core.read_namespaced_service_account(names.WORKER_SERVICE_ACCOUNT, names.NAMESPACE)
    if api.version < (1, 24):   # the legacy auto-created token Secret, where it still exists
        secret = api.core.read_namespaced_secret(sa.secrets[0].name, names.NAMESPACE)
        assert base64.b64decode(secret.data["namespace"]).decode() == names.NAMESPACE
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(k8s.plane.port))
    assert in_cluster(sa_dir)
    pod_api = connect(sa_dir=sa_dir)
    assert pod_api.namespace == names.NAMESPACE and pod_api.version == k8s.plane.version
    pod_api.batch.list_namespaced_job(names.NAMESPACE)   # authenticated as the service account
    pod_api.close()
    # the token is what authenticates: a tampered one is refused by the server
    (sa_dir / "token").write_text((sa_dir / "token").read_text()[:-4] + "AAAA")
    with pytest.raises(ApiException) as info:
        connect(sa_dir=sa_dir)
    assert info.value.status == 401
    api.close()


@pytest.mark.slow
def test_a_thousand_targets_run_as_a_few_shards(k8s, small_db, tmp_path, worker_env):
    """1,000 targets tracked against the real control plane: the API objects grow with the
    shards, not the targets; every unit is committed once; the driver's API calls per poll do
    not depend on the number of targets."""
    import random
    import resource

    rng = random.Random(7)
    letters = "ACDEFGHIKLMNPQRSTVWY"
    records = [(f"s{i:04d}", "".join(rng.choice(letters) for _ in range(rng.randint(20, 60))))
               for i in range(1000)]
    src, root = fasta(tmp_path / "in.fasta", records), run_root(k8s, "scale")
    run = run_pipeline(src, str(root), preset="tiny", stages=(),
                       databases=DatabaseConfig(uniref90=str(small_db)))
    # predicted work alone (UniRef90-scale alignment times since #23) would cut 1,000 targets
    # into up to 256 shards; the executor reads the cluster: one 16-CPU node of the align pool
    # holds two 8-CPU alignment Pods, so two shards
    ex = executor(k8s, poll_interval=1.0, unschedulable_timeout=1800)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    n_pods = len(k8s.kubelet.history)
    from eksfold.executors import execute
    status = execute(run, ex, stages=("align",), reporter=TextProgress(bars=False))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    assert all(v == "done" for v in status.values()) and len(status) == 1000
    pods = k8s.kubelet.history[n_pods:]
    jobs_ = ex.run_jobs(run)
    objects = len(pods) + len(jobs_)
    driver_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    print(f"\n1000 targets: {len(pods)} Pods, {len(jobs_)} Jobs, {ex.api_calls} list calls, "
          f"driver CPU {driver_cpu:.2f}s ({1000 * driver_cpu / 1000:.2f} ms per target)")
    assert objects <= 0.01 * 1000 + 4                  # shards, not targets
    assert len(pods) == 2                              # as many as the cluster runs at once
    assert sorted(t for p in pods for t in pod_shard(p)) == [
        t for t, _ in records]                          # each target in exactly one shard
    assert ex.api_calls < 2 * 1000                      # two list calls per poll, not per target
    assert len({r.pod for r in (run.record("align", t) for t, _ in records)}) == len(pods)


def _utc_s(stamp: str) -> float:
    from datetime import datetime, timezone

    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def test_streaming_inference_starts_before_the_last_alignment(k8s, small_db, tmp_path, worker_env):
    """Issue 23: with ``stream=True`` the inference Job is submitted with the alignment Job; its
    worker takes each target as its alignment is committed (longest first), so the inference Pod
    runs before the last alignment is committed. Two Jobs, two Pods."""
    import random

    rng = random.Random(23)
    letters = "ACDEFGHIKLMNPQRSTVWY"
    records = [(f"q{i:02d}", "".join(rng.choice(letters) for _ in range(rng.randint(20, 60))))
               for i in range(8)]
    src, root = fasta(tmp_path / "in.fasta", records), run_root(k8s, "stream")
    n_pods = len(k8s.kubelet.history)
    opts = dict(kubeconfig=str(k8s.kubeconfig), volume_root=str(k8s.volume_dir),
                poll_interval=0.3, stream=True, max_shards={"align": 1, "infer": 1})
    run = run_pipeline(src, str(root), executor="kubernetes", executor_options=opts,
                       preset="tiny", weights="random", reporter=TextProgress(bars=False),
                       databases=DatabaseConfig(uniref90=str(small_db)))
    ids = [t for t, _ in records]
    align = {t: run.record("align", t) for t in ids}
    infer = {t: run.record("infer", t) for t in ids}
    assert all(r is not None and r.done for r in [*align.values(), *infer.values()])
    pods = k8s.kubelet.history[n_pods:]
    by_stage = {p.argv[p.argv.index("--stage") + 1]: p for p in pods}
    assert len(pods) == 2 and set(by_stage) == {"align", "infer"}   # one warm worker each
    assert by_stage["infer"].env["EKSFOLD_FOLLOW_S"]                 # a streaming worker
    last_align = max(_utc_s(r.finished) for r in align.values())
    first_infer_done = min(_utc_s(r.finished) for r in infer.values())
    print(f"\ninfer Pod started {_utc_s(by_stage['infer'].started) - last_align:+.0f} s and the "
          f"first inference finished {first_infer_done - last_align:+.0f} s from the last "
          "alignment's commit")
    # the GPU Pod was running before the last alignment was committed (no batch window, no
    # wait for the whole stage), and no target was folded before its own alignment was in
    # (timestamps have 1 s resolution: on a loaded machine the Pod's start and the last commit
    # share a second; a batch window or a wait for the stage would put it seconds after)
    assert _utc_s(by_stage["infer"].started) <= last_align
    assert all(infer[t].started >= align[t].finished for t in ids)
    # both shards longest first (the batch files the Pods read)
    lengths = {t: len(s) for t, s in records}
    for batch in (root / "batches").iterdir():
        shard = json.loads(batch.read_text())["shards"][0]
        assert [lengths[t] for t in shard] == sorted((lengths[t] for t in shard), reverse=True)


@pytest.mark.slow
def test_openfold3_complex_runs_its_inference_pods_on_the_openfold3_image(k8s, of3, small_db,
                                                                          tmp_path, worker_env):
    """A heterodimer with the real OpenFold3 code (reduced configuration, UNTRAINED random
    weights) through the Kubernetes executor: the alignment Pods run the base image, the
    inference Pod the OpenFold3 image, which alone has OpenFold3's environment here (the
    kubelet gives each image its own), so a Pod on the wrong image would fail its unit."""
    src = tmp_path / "dimer.fasta"
    src.write_text(">dimer\nMKTAYIAKQRQISFVKSHFSRQLEERLG:GSHMLEDPVDAFQRLLKEAW\n")
    root = run_root(k8s, "of3")
    ex_opts = dict(kubeconfig=str(k8s.kubeconfig), volume_root=str(k8s.volume_dir),
                   poll_interval=0.3, ttl_seconds=600, image="registry.local/eksfold-worker:1.2")
    run = run_pipeline(src, str(root), preset="of3-tiny", weights="random:3", seed=42,
                       device="cpu", databases=DatabaseConfig(uniref90=str(small_db)),
                       stages=("align", "infer"), executor="kubernetes",
                       executor_options=ex_opts, reporter=TextProgress(bars=False))
    df = load_summary(run.root).set_index("target")
    assert df.loc["dimer", "infer_status"] == "done", df.loc["dimer"].to_dict()
    assert df.loc["dimer", "chains"] == 2
    ran = [r for r in k8s.kubelet.history if str(root) in r.argv]
    by_stage = {}
    for r in ran:
        by_stage.setdefault(r.argv[r.argv.index("--stage") + 1], []).append(r)
    assert set(by_stage) == {"align", "infer"}
    jobs_ = KubernetesExecutor(kubeconfig=str(k8s.kubeconfig),
                               volume_root=str(k8s.volume_dir)).run_jobs(run)
    images = {j.metadata.labels[names.STAGE_LABEL]: {c.image for c in
                                                     j.spec.template.spec.containers}
              for j in jobs_}
    assert images == {"align": {"registry.local/eksfold-worker:1.2"},
                      "infer": {"registry.local/eksfold-worker-openfold3:1.2"}}
    for r in by_stage["infer"]:
        assert r.env["EKSFOLD_OF3_PYTHON"].endswith(".venv-of3/bin/python")
    for r in by_stage["align"]:
        assert "not-in-this-image" in r.env["EKSFOLD_OF3_PYTHON"]
    metrics = json.loads((root / "targets" / "dimer" / "infer" / "metrics.json").read_text())
    assert metrics["metrics"]["untrained"] is True
    assert metrics["pod"] in {r.name for r in by_stage["infer"]}
