"""OpenFold3 memory-aware by tokens (issue 24): the settings ladder from OpenFold3's own
presets, switched per query on a warm runner; the per-token cost model of the committed CPU
sweep; refusal up front in tokens; the planner pricing complexes by tokens; and an OOM kill of
the runner (a child of the worker, in the worker's memory cgroup) retried one setting lower in
the same run, every attempt in the record.

The runtime tests run the real OpenFold3 code in .venv-of3 (reduced configuration, seeded
random checkpoint: UNTRAINED).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from eksfold.models import get_backend
from eksfold.models.openfold3.environment import LIB, of3_env
from eksfold.models.openfold3.settings import LADDER

# the targets of the runtime tests: long enough that `lma` lowers the runner's peak clearly
# (profiles/cpu-2core/settings-of3-tiny.csv: 2,047 vs 1,865 MB at 128 tokens, 2,617 vs 2,117
# MB at 224)
SWITCH_TOKENS, TOKENS = 128, 224


def protein(n: int) -> str:
    from eksfold.bench.common import synthetic_sequence
    return synthetic_sequence(n)


def test_the_ladder_is_openfold3s_own_presets(of3, tmp_path):
    """`predict` and `low_mem` hold exactly the memory values OpenFold3's own config builder
    gives for its presets (model_setting_presets.yml over model_config.py)."""
    script = (
        "import json\n"
        "from openfold3.projects.of3_all_atom.project_entry import OF3ProjectEntry\n"
        "from eksfold.models.openfold3.settings import BY_NAME\n"
        "entry, out = OF3ProjectEntry(), {}\n"
        "for name, presets in (('predict', ['predict']), ('low_mem', ['predict', 'low_mem'])):\n"
        "    c = entry.get_model_config_with_presets(presets)\n"
        "    s = BY_NAME[name]\n"
        "    out[name] = {\n"
        "        'eval': {k: [c.settings.memory.eval[k], v] for k, v in s.memory_eval.items()},\n"
        "        'offload': {k: [c.settings.memory.eval.offload_inference[k], v]\n"
        "                    for k, v in s.offload.items()},\n"
        "        'clear': [c.settings.clear_cache_between_steps, s.clear_cache_between_steps],\n"
        "        'heads': c.architecture.heads.per_sample_token_cutoff}\n"
        "print(json.dumps(out))\n")
    env = of3_env(tmp_path / "work")
    done = subprocess.run([of3, "-c", script], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for name, parts in found.items():
        for group in ("eval", "offload"):
            for key, (theirs, ours) in parts[group].items():
                assert theirs == ours, (name, group, key, theirs, ours)
        assert parts["clear"][0] == parts["clear"][1], name
        # the heads' cutoff is the same FieldReference as memory.eval's
        assert parts["heads"] == parts["eval"]["per_sample_token_cutoff"][0]
    assert [s.name for s in LADDER] == ["predict", "low_mem", "lma"]


def test_the_ladder_as_generic_code_sees_it():
    tiny, full = get_backend("of3-tiny"), get_backend("of3")
    # one diffusion sample on a CPU: low_mem changes nothing there (offloading to the host
    # is a no-op, per-sample heads and metrics need several samples): not a rung
    assert [s.name for s in tiny.ladder("cpu")] == ["predict", "lma"]
    assert [s.name for s in tiny.ladder("cuda")] == ["predict", "low_mem", "lma"]
    assert [s.name for s in full.ladder("cpu")] == ["predict", "low_mem", "lma"]
    assert tiny.next_lower("predict", "cpu") == "lma"
    assert full.next_lower("predict", "cuda") == "low_mem"
    assert tiny.next_lower("lma", "cpu") is None
    assert tiny.default_setting == "predict" and tiny.as_built_setting == "openfold3"
    assert tiny.memory_grows_with == "tokens"


def test_the_committed_sweep_fits_per_token_within_20_percent():
    from eksfold.memory.chooser import usable_model

    model, problem = usable_model("cpu", "of3-tiny")
    assert model is not None, problem
    assert {"predict", "lma"} <= set(model.settings)
    for setting in ("predict", "lma"):
        fit = model.fits[(setting, "peak_rss_mb")]
        assert len(fit.lengths) >= 4 and fit.loo_max_error <= 0.20, (setting, fit.loo)
    top = max(model.measured_lengths("lma"))
    # lma lowers the predicted peak at the longest measured token count
    assert model.predict(top, "lma") < model.predict(top, "predict")


def test_a_complex_too_large_is_refused_up_front_in_tokens():
    """refuse_unfit and gpu_class_for speak in the back end's unit: tokens for OpenFold3 (a
    table of the sweep's shape: peak = runner after loading + a per-token term)."""
    import pandas as pd

    from eksfold.errors import TargetError
    from eksfold.memory.chooser import gpu_class_for, refuse_unfit
    from eksfold.memory.costmodel import CostModel
    from eksfold.targets import Target

    rows = [{"length": n, "setting": s, "preset": "of3-tiny", "device": device,
             "inference_s": 10 + n / 10, "peak_rss_mb": 1700 + k * n * n / 100,
             "peak_cuda_reserved_mb": 900 + k * n * n / 50, "error": None}
            for device in ("cpu", "cuda") for s, k in (("predict", 2.0), ("lma", 0.5))
            for n in (32, 96, 160, 224)]
    cpu = CostModel.fit(pd.DataFrame(rows), "cpu")
    assert cpu.settings == ["predict", "lma"]
    small, big = Target("small", protein(40)), Target("big", protein(6000))
    fit, errors = refuse_unfit([small, big], 4000, cpu)
    assert [t.id for t in fit] == ["small"]
    (err,) = errors
    assert err.target == "big" and err.problem.startswith("6000 tokens: predicted ")
    assert "'lma'" in err.problem and "4,000 MB available" in err.problem
    gpu = CostModel.fit(pd.DataFrame(rows), "cuda")
    assert gpu_class_for(100, gpu)["gpu_class"] == "standard"
    with pytest.raises(TargetError, match="^.*20000 tokens: predicted"):
        gpu_class_for(20000, gpu)


def test_the_planner_prices_a_complex_by_its_tokens(tmp_path):
    from eksfold import planner

    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">mono\n{protein(60)}\n>dimer\n{protein(60)}:{protein(50)}\n")
    lengths = planner.target_lengths(str(fasta), preset="of3-tiny")
    assert lengths == {"mono": 60, "dimer": 110}          # one target, its token count
    backend = get_backend("of3-tiny")
    for local in (True, False):
        result = planner.plan(str(fasta), local=local, preset="of3-tiny")
        infer = {u.target: u for u in result.units if u.stage == "infer"}
        assert infer["dimer"].length == 110 and infer["mono"].length == 60
        assert any("per-token" in s and "of3-tiny" in s for s in result.sources), result.sources
    # the curves themselves: this machine's per-token CPU curve, the H100 one on a cluster
    from eksfold.planner.costs import reference_costs, stage_costs, with_backend_infer
    cpu = with_backend_infer(stage_costs(), "of3-tiny", local=True)
    assert cpu.curves["infer"](110) == backend.predicted_seconds(110)
    gpu = with_backend_infer(reference_costs(), "of3-tiny", local=False)
    assert gpu.curves["infer"](1869) == backend.gpu_seconds(1869) and gpu.reference_gpu == "H100"
    # an AlphaFold2 preset keeps the profile's curves (and splits nothing differently)
    assert with_backend_infer(stage_costs(), "tiny", local=True).curves["infer"](110) == \
        stage_costs().curves["infer"](110)


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_a_setting_switch_takes_effect_on_the_warm_runner(of3, of3_cache, tmp_path,
                                                           monkeypatch):
    """One runner, one load: the same query with `lma`, then `predict`, then `lma`: the
    network reports the values it folded with, and `predict` raises the runner's own peak.
    (In this order: a warm runner keeps what its biggest query grew it to, so a lower peak
    after a higher one cannot show.)"""
    from eksfold.config import InferConfig
    from eksfold.targets import Target

    monkeypatch.setenv("EKSFOLD_CACHE", str(of3_cache(tmp_path / "cache")))
    folder = get_backend("of3-tiny").load(InferConfig(preset="of3-tiny", weights="random:3",
                                                      device="cpu", seed=42))
    try:
        pid = folder.proc.pid
        assert folder.info["memory_settings"]["chunk_size"] == 1024   # as built: predict
        runs = []
        for setting in ("lma", "predict", "lma"):
            folder.apply_setting(setting)
            runs.append(folder.fold(Target("t", protein(SWITCH_TOKENS)), None,
                                    tmp_path / f"{setting}-{len(runs)}"))
        assert folder.proc.pid == pid                                 # nothing restarted
    finally:
        folder.close()
    lma, predict, again = runs
    assert predict["memory_settings"]["use_lma"] is False
    assert predict["memory_settings"]["chunk_size"] == 1024
    assert lma["memory_settings"]["use_lma"] is True and lma["memory_settings"]["chunk_size"] == 32
    assert again["memory_settings"] == lma["memory_settings"]
    # 97-225 MB apart at 128 tokens in the sweep and in suite runs: a margin clear of noise
    assert predict["child_peak_rss_mb"] > lma["child_peak_rss_mb"] + 50, runs


@pytest.mark.slow
@pytest.mark.timeout(6000)
def test_an_oom_killed_runner_is_retried_one_setting_lower_in_the_same_run(of3, small_db,
                                                                            of3_cache,
                                                                            tmp_path):
    """The inference worker runs in a memory cgroup (--infer-memory-mb) that holds the runner
    too; with `predict` the runner's peak passes the limit and the kernel kills it; the folder
    sees the cgroup's OOM count, the unit is retried with `lma` (a fresh runner) in the same
    worker and run; both attempts are in the record."""
    from eksfold.memory.chooser import usable_model
    from eksfold.memory.limits import cgroup_available
    from eksfold.run import Run

    assert cgroup_available(), "needs a writable memory cgroup (the test machine has one)"
    model, problem = usable_model("cpu", "of3-tiny")
    assert model is not None, problem
    high, low = model.predict(TOKENS, "predict"), model.predict(TOKENS, "lma")
    assert high - low > 200, (high, low)
    # The cgroup is charged the worker (~50 MB) and the runner's anonymous memory, not the
    # ~190 MB of shared libraries already in the page cache (measured: the runner's RssFile),
    # so the charged peaks are ~140 MB below the sweep's RSS peaks: the limit sits between.
    limit = (high + low) / 2 - 100
    env = dict(os.environ, EKSFOLD_CACHE=str(of3_cache(tmp_path / "cache")))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(LIB), env.get("PYTHONPATH")) if p)
    (tmp_path / "in.fasta").write_text(f">big\n{protein(TOKENS)}\n")
    cmd = [sys.executable, "-m", "eksfold.cli", "run", str(tmp_path / "in.fasta"), "--root",
           str(tmp_path / "run"), "--preset", "of3-tiny", "--weights", "random:3", "--seed",
           "42", "--device", "cpu", "--uniref90", str(small_db), "--stages", "align,infer",
           "--infer-workers", "1", "--settings", "predict", "--infer-memory-mb", f"{limit:.0f}"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=5400)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said[-4000:]
    rec = Run.open(str(tmp_path / "run")).record("infer", "big")
    assert rec.done and rec.metrics["setting"] == "lma", rec.attempts
    first, last = rec.attempts[0], rec.attempts[-1]
    assert first["setting"] == "predict" and "killed for memory" in first["error"], first
    assert "cgroup counted" in first["error"]
    assert last["setting"] == "lma" and last["error"] is None
    assert len(rec.attempts) == 2
    assert rec.metrics["memory_settings"]["use_lma"] is True
    # one worker: the retry happened inside it (a fresh runner, the same worker process)
    assert len(list((tmp_path / "run" / "logs" / "infer").glob("worker-*.out"))) == 1


def test_a_child_killed_for_memory_is_counted_by_its_parents_cgroup(tmp_path):
    """What the OpenFold3 folder relies on: its runner is a child in the worker's memory
    cgroup, so the cgroup's OOM-kill counter, read by the worker (own_oom_kills), counts the
    child's kill; the folder's RunnerOutOfMemory is then an out-of-memory failure that the
    retry records as a kill for memory. Real cgroup, real kernel OOM kill (no OpenFold3)."""
    from eksfold.memory.limits import cgroup_available, limited_child
    from eksfold.memory.retry import fold_with_oom_fallback, is_out_of_memory
    from eksfold.models.openfold3.folder import RunnerOutOfMemory

    assert cgroup_available(), "needs a writable memory cgroup (the test machine has one)"
    worker = (
        "import json, subprocess, sys\n"
        "from eksfold.memory.oomkill import own_oom_kills\n"
        "before = own_oom_kills()\n"
        "grow = 'b = bytearray(600 * 2**20)\\nfor i in range(0, len(b), 4096): b[i] = 1'\n"
        "child = subprocess.run([sys.executable, '-c', grow])\n"
        "print(json.dumps({'before': before, 'after': own_oom_kills(),"
        " 'code': child.returncode}))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(LIB), os.environ.get("PYTHONPATH")) if p))
    with limited_child(300, "cgroup") as kw:
        kw.pop("cgroup_procs", None)
        done = subprocess.run([sys.executable, "-c", worker], capture_output=True, text=True,
                              env=env, timeout=300, **kw)
    assert done.returncode == 0, done.stderr[-2000:]          # the worker itself lives on
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["code"] == -9 and seen["after"] == seen["before"] + 1, seen

    def fold(setting):
        if setting == "predict":
            err = RunnerOutOfMemory("big: the OpenFold3 runner was killed for memory")
            err.killed = "oom"
            raise err
        return {"setting": setting}

    assert is_out_of_memory(RunnerOutOfMemory("x"))
    result, attempts = fold_with_oom_fallback(fold, "predict", "cpu",
                                              backend=get_backend("of3-tiny"))
    assert result == {"setting": "lma"}
    assert [(a["setting"], a.get("killed")) for a in attempts] == [("predict", "oom"),
                                                                   ("lma", None)]
