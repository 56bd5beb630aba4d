"""Memory-aware inference: settings ladder, cost models, chooser, refusal, OOM detection/retry.

The chooser and refusal tests use hand-made cost tables (exact formulas, not timings), so they
check logic. The OOM tests use real allocation failures: a real tiny-preset fold under a real
RLIMIT_DATA in a child process.
"""
from __future__ import annotations

import json
import os
import subprocess
import textwrap

import numpy as np
import pandas as pd
import pytest

from eksfold.errors import ConfigError, ResourceError, TargetError
from eksfold.memory import (CostModel, choose, crossovers, fold_with_oom_fallback, gpu_class_for,
                            is_out_of_memory, memory_budget, refuse_unfit)
from eksfold.models.openfold2.settings import apply, next_lower
from eksfold.memory import costmodel
from eksfold.memory.limits import limited_child
from eksfold.targets import Target

LENGTHS = [50, 100, 150, 200, 300]
# hand-made: MB = weights + per-setting quadratic; seconds = per-setting multiple of L^2
MEM = {"default": (800, 0.5, 0.05), "chunk": (800, 0.5, 0.02), "lma": (800, 0.5, 0.005)}
TIME = {"default": 1.0, "chunk": 1.3, "lma": 2.5}


def table(device="cpu", mem_col="peak_rss_mb"):
    rows = []
    for s, (a, b, c) in MEM.items():
        for L in LENGTHS:
            rows.append({"length": L, "setting": s, "preset": "demo", "device": device,
                         mem_col: a + b * L + c * L * L, "peak_rss_mb": a + b * L + c * L * L,
                         "inference_s": TIME[s] * 1e-3 * L * L + 2, "error": None})
    return pd.DataFrame(rows)


def mem(s, L):
    a, b, c = MEM[s]
    return a + b * L + c * L * L


def test_ladder_order_and_next_lower():
    assert next_lower("default") == "chunk"
    assert next_lower("chunk") == "lma"
    assert next_lower("lma") is None          # offload only saves device memory
    assert next_lower("lma", "cuda") == "offload"
    assert next_lower("offload", "cuda") is None
    with pytest.raises(ConfigError, match="unknown inference setting 'fast'"):
        next_lower("fast")


def test_fit_recovers_formulas_and_reports_loo():
    model = CostModel.fit(table())
    assert model.settings == ["default", "chunk", "lma"]
    for s in MEM:
        fit = model.fits[(s, "peak_rss_mb")]
        assert fit.predict(300) == pytest.approx(mem(s, 300), rel=1e-3)
        # the fitted formula itself extrapolates exactly; beyond the sweep a prediction is the
        # highest plausible form's, never below it
        exact = float(costmodel._design([1000], fit.powers) @ fit.coef)
        assert exact == pytest.approx(mem(s, 1000), rel=1e-3)
        assert model.predict(1000, s) >= exact * (1 - 1e-9)
        assert fit.loo_max_error < 1e-3 and len(fit.loo) == len(LENGTHS)
    loo = model.loo_table()
    assert set(loo["setting"]) == set(MEM) and (loo["rel_error"].abs() < 1e-3).all()


def test_beyond_the_sweep_the_highest_plausible_form_counts():
    # the committed tiny sweep (64..384 residues): a + bL^2 fits best inside it, but the
    # unchunked setting's L^3 attention logits take over later: 7opk-a (883 residues) was
    # killed at 23.2 GB with `default` chosen from a 12.1 GB prediction
    model = CostModel.from_profile("cpu-2core", "tiny")
    fit = model.fits[("default", "peak_rss_mb")]
    assert fit.form == "a+bL^2" and max(fit.lengths) == 384
    assert model.predict(384, "default") == pytest.approx(fit.predict(384))
    assert fit.envelope_form(883) == "cubic" and model.predict(883, "default") > 20000
    assert choose(883, 22000, model).setting == "chunk"
    assert choose(300, 22000, model).setting == "default"


def test_fit_of_a_curving_table_beats_a_power_law_through_zero():
    # peaks rising from 0.4 to 15 GB, curving upward as the tiny run did
    L = np.array([100, 200, 300, 400, 500, 600, 700, 883])
    y = 400 + 0.0185 * L ** 2 + np.where(L % 200 == 0, 30, -30)
    fit = CostModel.fit(pd.DataFrame({"length": L, "setting": "default", "device": "cpu",
                                      "peak_rss_mb": y, "inference_s": L / 10})).fits[
        ("default", "peak_rss_mb")]
    assert fit.loo_max_error < 0.20
    slope, intercept = np.polyfit(np.log(L[:-1]), np.log(y[:-1]), 1)
    assert abs(np.exp(intercept) * 883 ** slope / y[-1] - 1) > abs(fit.predict(883) / y[-1] - 1)


def test_choose_fastest_that_fits_with_margin():
    model = CostModel.fit(table())
    budget = 4000.0
    assert choose(100, budget, model).setting == "default"
    # default at 250: 800+125+3125 = 4050 > budget: the next fastest that fits is chunk
    c = choose(250, budget, model)
    assert (c.setting, c.fits) == ("chunk", True)
    assert c.predicted_mb == pytest.approx(mem("chunk", 250), rel=1e-3)
    # the margin matters: 230 residues fit default bare (3560 MB) but not with 15 %
    assert choose(230, budget, model, margin=0.0).setting == "default"
    assert choose(230, budget, model, margin=0.15).setting == "chunk"
    big = choose(2000, budget, model)
    assert (big.setting, big.fits) == ("lma", False)
    assert big.as_dict()["budget_mb"] == budget
    assert choose(250, budget, model, settings=["lma"]).setting == "lma"


def test_time_models_steer_the_choice_only_where_they_predicted_the_inner_lengths():
    # chunk measured faster than default (as on a quiet CPU); lma slowest
    df = table()
    df.loc[df.setting == "chunk", "inference_s"] = 0.6e-3 * df.length ** 2 + 2
    quiet = CostModel.fit(df)
    assert choose(200, 4000.0, quiet).setting == "chunk"           # the fastest that fits
    # an end length off the curve (an extrapolation in its LOO) does not revoke the trust
    ends = df.copy()
    ends.loc[(ends.setting == "chunk") & (ends.length == 300), "inference_s"] *= 1.6
    assert choose(200, 4000.0, CostModel.fit(ends)).setting == "chunk"
    # an inner length measured 3x off (a loaded machine): times no longer decide
    noisy = df.copy()
    noisy.loc[(noisy.setting == "chunk") & (noisy.length == 150), "inference_s"] *= 3
    assert choose(200, 4000.0, CostModel.fit(noisy)).setting == "default"   # ladder order


def test_crossovers_mark_each_switch():
    model = CostModel.fit(table())
    marks = crossovers(model, 4000.0, range(16, 1200, 4))
    assert [name for _, name in marks] == ["default", "chunk", "lma", "refused"]
    starts = dict((name, L) for L, name in marks)
    assert mem("default", starts["chunk"]) * 1.15 > 4000 >= mem("default", starts["chunk"] - 4) * 1.15


def test_refuse_unfit_names_target_length_and_memory():
    model = CostModel.fit(table())
    targets = [Target("small", "M" * 120), Target("huge", "A" * 4000), Target("mid", "G" * 260)]
    fit, errors = refuse_unfit(targets, 6000.0, model)
    assert [t.id for t in fit] == ["small", "mid"]
    (err,) = errors
    assert isinstance(err, TargetError) and err.target == "huge"
    predicted = model.predict(4000, "lma")   # beyond the sweep: the plausible forms' envelope
    assert predicted >= mem("lma", 4000)
    assert f"4000 residues: predicted {predicted:,.0f} MB" in str(err)
    assert "'lma'" in str(err) and "6,000 MB available" in str(err)


def test_gpu_class_from_the_model():
    model = CostModel.fit(table("cuda", "peak_cuda_reserved_mb"), device="cuda")
    assert model.settings == ["default", "chunk", "lma"]
    small = gpu_class_for(300, model)
    assert small["gpu_class"] == "standard" and small["setting"] == "default"
    assert small["memory_request_mb"] > mem("default", 300)
    # 2000 residues: lma needs 21.8 GB + 15 % > 24 GB; on 80 GB chunk needs 81.8 GB: lma
    big = gpu_class_for(2000, model)
    assert (big["gpu_class"], big["setting"]) == ("large", "lma")
    assert gpu_class_for(1500, model)["setting"] == "lma"   # smallest class first
    with pytest.raises(TargetError, match="largest GPU class"):
        gpu_class_for(5000, model)
    with pytest.raises(ValueError):
        gpu_class_for(100, CostModel.fit(table()))


def test_memory_budget_sees_an_rlimit(worker_env):
    code = ("import resource; resource.setrlimit(resource.RLIMIT_DATA, (3 << 30, 3 << 30));"
            "from eksfold.memory import memory_budget; b = memory_budget(); print(b.mb, b.source)")
    out = subprocess.run([worker_env, "-c", code], capture_output=True, text=True, check=True)
    mb, source = out.stdout.split()
    assert float(mb) <= 3072 and source in ("rlimit", "cgroup", "MemAvailable")
    assert memory_budget().mb > 0


def test_is_out_of_memory_on_real_failures(worker_env):
    import torch

    with pytest.raises(RuntimeError) as cpu:
        torch.empty(1 << 42, dtype=torch.uint8)      # 4 TiB: the CPU allocator refuses
    assert is_out_of_memory(cpu.value)
    with pytest.raises(MemoryError) as npy:
        np.empty(1 << 42, dtype=np.uint8)
    assert is_out_of_memory(npy.value)
    try:
        try:
            torch.empty(1 << 42, dtype=torch.uint8)
        except RuntimeError as inner:
            raise ValueError("wrapped") from inner
    except ValueError as outer:
        assert is_out_of_memory(outer)
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(None)
    # under a real memory limit a modest request fails the same way
    code = textwrap.dedent("""
        import torch
        from eksfold.memory import is_out_of_memory
        try:
            torch.ones(2 << 30, dtype=torch.uint8)   # 2 GiB under a 1 GiB limit
        except BaseException as e:
            print(is_out_of_memory(e), type(e).__name__)
    """)
    with limited_child(1024) as kw:
        out = subprocess.run([worker_env, "-c", code], capture_output=True, text=True, **kw)
    assert out.stdout.split() == ["True", "RuntimeError"], out.stderr[-500:]


def test_fallback_reraises_other_errors_and_stops_after_one_retry():
    calls = []

    def broken(setting):
        calls.append(setting)
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        fold_with_oom_fallback(broken, "default")
    assert calls == ["default"]

    def always_oom(setting):
        calls.append(setting)
        np.empty(1 << 42, dtype=np.uint8)

    calls.clear()
    # out of settings is a resource refusal (retryable where more memory is free), not bad input
    with pytest.raises(ResourceError, match="out of memory with settings default, chunk") as err:
        fold_with_oom_fallback(always_oom, "default", target="T1")
    assert calls == ["default", "chunk"] and len(err.value.attempts) == 2
    assert not isinstance(err.value, TargetError)


def test_settings_switch_a_built_model_without_rebuild(tmp_path):
    import torch

    from conftest import random_tiny_model
    from eksfold.bench.common import synthetic_sequence
    from eksfold.models.openfold2.folder import forward, make_features
    from eksfold.models.openfold2.settings import current
    from eksfold.models.openfold2.presets import build_openfold_config, get_preset

    model = random_tiny_model(3).eval()
    (tmp_path / "aln").mkdir()
    _, feats = make_features(Target("s", synthetic_sequence(24)), tmp_path / "aln",
                             build_openfold_config(get_preset("tiny")))
    coords = {}
    for name in ("default", "chunk", "lma"):
        apply(name, model)
        coords[name] = forward(model, feats, torch.device("cpu"))["final_atom_positions"]
    assert current(model) == {"chunk_size": 4, "use_lma": True, "offload_inference": False,
                              "use_flash": False, "chunk_tuners": 0}
    assert coords["default"].abs().max() > 1.0
    for name in ("chunk", "lma"):   # same weights and input: the same structure
        assert (coords["default"] - coords[name]).abs().max().item() < 1e-3, name


OOM_CHILD = textwrap.dedent("""
    import json, resource, sys, tempfile
    from pathlib import Path
    import torch
    from eksfold.bench.common import synthetic_sequence
    from eksfold.config import InferConfig
    from eksfold.models.openfold2.folder import build_model, forward, make_features
    from eksfold.memory import fold_with_oom_fallback
    from eksfold.models.openfold2.settings import apply
    from eksfold.models.openfold2.compat import prepare
    from eksfold.models.openfold2.presets import get_preset
    from eksfold.targets import Target
    prepare()
    L, headroom_mb = int(sys.argv[1]), int(sys.argv[2])
    model, of_config, _ = build_model(get_preset("tiny"), InferConfig(preset="tiny"), torch.device("cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "aln").mkdir()
        _, feats = make_features(Target("t", synthetic_sequence(L)), Path(tmp) / "aln", of_config)
    # the budget: what this process holds now plus a small headroom, as a real RLIMIT_DATA
    data = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmData")][0]
    limit = (data >> 10) + headroom_mb << 20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    def fold(name):
        apply(name, model)
        return forward(model, feats, torch.device("cpu"))["final_atom_positions"].shape
    shape, attempts = fold_with_oom_fallback(fold, "default", target="t")
    print(json.dumps({"shape": list(shape), "attempts": attempts}))
""")


def test_oom_retry_with_next_lower_setting_in_the_same_process(worker_env, tmp_path):
    # tiny preset, 128 residues (measured by polling VmData): unchunked, the fold needs
    # ~163 MB more than the model and features; chunk 32 needs ~60 MB. 110 MB fails the first.
    script = tmp_path / "oom_child.py"
    script.write_text(OOM_CHILD)
    # a fixed mmap threshold returns freed tensors to the system at once (as the worker does)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    out = subprocess.run([worker_env, str(script), "128", "110"], capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0, out.stderr[-1500:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["shape"] == [128, 37, 3]
    first, second = res["attempts"]
    assert first["setting"] == "default" and "can't allocate memory" in first["error"]
    assert second == {**second, "setting": "chunk", "error": None}


def test_only_a_kill_known_to_be_for_memory_steps_the_setting_down():
    from eksfold.memory.retry import setting_after_kill

    assert setting_after_kill("default", []) == "default"
    done = [{"setting": "default", "finished": True}]
    assert setting_after_kill("default", done) == "default"
    # unfinished with no OOM evidence (a user's kill, the driver died): the same setting
    unknown = [{"setting": s, "finished": False, "killed": "unknown"}
               for s in ("default", "chunk", "lma")]
    assert setting_after_kill("default", unknown) == "default"
    assert setting_after_kill("default", [{"setting": "chunk", "finished": False}]) == "default"
    oom = {"setting": "chunk", "finished": False, "killed": "oom"}
    assert setting_after_kill("default", [oom]) == "lma"
    assert setting_after_kill("default", [oom, unknown[2]]) == "lma"   # a later kill: still lma
    assert setting_after_kill("lma", [{**oom, "setting": "default"}]) == "lma"   # never back up
    assert setting_after_kill("default", [{**oom, "setting": "lma"}]) is None  # nothing left
    assert setting_after_kill("default", [{**oom, "setting": None}]) == "default"  # not folding


def test_attempt_markers_resolve_against_the_executors_kill_records(tmp_path):
    """A stale root of the old rule (three unfinished markers: default -> chunk -> lma, no
    kill record) recovers: no evidence of memory, so the run's own setting again."""
    from eksfold.memory.kills import read_kills, record_kill
    from eksfold.memory.retry import setting_after_kill
    from eksfold.stages.infer import Attempts
    from eksfold.storage import open_store

    store = open_store(str(tmp_path))
    stale = [{"setting": s, "finished": False} for s in ("default", "chunk", "lma")]
    store.write_json("attempts/infer/t.json", stale)
    markers = Attempts(store, "t")
    history = markers.resolve()
    assert [m["killed"] for m in history] == ["unknown"] * 3
    assert setting_after_kill("default", history) == "default"
    assert [a["error"] for a in Attempts.as_record(history)] == ["killed (cause unknown): no kill record"] * 3
    # now one attempt killed for memory with evidence from the executor, then a user's kill
    markers.clear()
    markers.begin("default")
    record_kill(store, "infer", "t", "oom", "cgroup counted 1 OOM kill", "local")
    history = markers.resolve()
    assert history[-1]["killed"] == "oom" and setting_after_kill("default", history) == "chunk"
    markers.begin("chunk")
    record_kill(store, "infer", "t", "unknown", "SIGKILL, no OOM record", "local")
    history = markers.resolve()
    assert [m["killed"] for m in history] == ["oom", "unknown"]
    assert setting_after_kill("default", history) == "chunk"
    assert markers.resolve() == history          # resolving again changes nothing
    markers.clear()
    assert read_kills(store, "infer", "t") == [] and markers.load() == []


def test_hostmem_measures_openfolds_feature_pipeline_and_weights_in_fresh_processes():
    """`eksfold bench hostmem`: the host side of GPU inference (features + weights), real
    OpenFold code on the CPU; the Pod request adds the stated CUDA allowance and margin."""
    from eksfold.bench.hostmem import CUDA_HOST_GIB, measure, pod_request_gib

    model = measure("model", 16, 1)
    assert model["parameters"] > 90_000_000                  # the full network (model_1_ptm)
    assert model["peak_rss_mb"] - model["rss_imported_mb"] > 300   # its fp32 weights
    shallow, deep = measure("features", 128, 20), measure("features", 128, 12000)
    for point in (shallow, deep):
        assert "error" not in point, point
        assert point["peak_rss_mb"] > point["rss_imported_mb"] and point["feature_mb"] > 0
    # the batch's shape is set by the config (MSA clusters, extra rows); parsing 12,000 rows
    # (~0.22 KB per residue-row measured at scale: ~340 MB here; 258-282 MB measured at this
    # size, where 4,000 rows gave 37-67 MB, too close to the allocator's noise) grows the peak
    assert deep["feature_mb"] == shallow["feature_mb"]
    assert deep["peak_rss_mb"] > shallow["peak_rss_mb"] + 150
    gib = pod_request_gib([model, shallow, deep])
    weights = (model["peak_rss_mb"] - model["rss_imported_mb"]) / 1024
    peak = max(shallow["peak_rss_mb"], deep["peak_rss_mb"]) / 1024
    assert gib == pytest.approx((peak + weights + CUDA_HOST_GIB) * 1.25,
                                abs=0.1)
