"""Memory in warm workers: each unit's own peak, what the worker holds, extrapolation margins.

Real processes and real folds: the per-unit peak test runs the pipeline's warm inference
worker on two targets; the resident-memory test holds real memory in a child process under a
real RLIMIT_DATA. The chooser tests use hand-made cost tables (exact formulas) to check logic.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from eksfold.memory.chooser import BEYOND_MARGIN, Budget, choose, choose_in_worker, refuse_unfit
from eksfold.memory.costmodel import CostModel
from eksfold.memory.limits import limited_child
from eksfold.memory.usage import UnitMemory, own_peak, release
from eksfold.records import UnitRecord
from eksfold.targets import Target

GOOD = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSL"
MEM = {"default": (500, 0.5, 0.05), "chunk": (500, 0.5, 0.01)}   # MB = a + bL + cL^2


def table(lengths=(50, 100, 150, 200, 300)):
    return pd.DataFrame([{"length": L, "setting": s, "preset": "tiny", "device": "cpu",
                          "peak_rss_mb": a + b * L + c * L * L, "inference_s": 1e-3 * L * L,
                          "error": None} for s, (a, b, c) in MEM.items() for L in lengths])


def test_per_unit_peaks_differ_between_a_long_and_a_short_unit_in_one_warm_worker(
        tmp_path, small_db, worker_env):
    from eksfold.config import DatabaseConfig
    from eksfold.pipeline import run_pipeline
    from eksfold.progress import TextProgress
    from eksfold.results import load_summary

    long_seq = (GOOD * 4)[:220]
    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">long\n{long_seq}\n>short\n{GOOD[:40]}\n")
    run = run_pipeline(fasta, str(tmp_path / "run"), preset="tiny", settings="default",
                       databases=DatabaseConfig(uniref90=str(small_db)),
                       reporter=TextProgress(bars=False))
    long, short = run.record("infer", "long"), run.record("infer", "short")
    assert long.done and short.done
    # one warm worker: the short unit ran after the long one, in the same process
    assert long.metrics["model_reused"] is False and short.metrics["model_reused"] is True
    assert long.finished <= short.started
    assert long.peak_rss_scope == short.peak_rss_scope == "unit"
    # a lifetime figure (ru_maxrss) would give the short unit the long one's peak
    assert short.peak_rss_mb < long.peak_rss_mb - 150, (short.peak_rss_mb, long.peak_rss_mb)
    assert short.metrics["peak_rss_mb"] < long.metrics["peak_rss_mb"] - 150
    # the worker's resident memory around each unit is recorded, the peak lies above both
    for rec in (long, short):
        assert 0 < rec.rss_start_mb <= rec.peak_rss_mb and 0 < rec.rss_end_mb <= rec.peak_rss_mb
    df = load_summary(run.root).set_index("target")
    assert set(df["infer_peak_rss_scope"]) == {"unit"}
    assert df.loc["short", "infer_peak_rss_mb"] == short.metrics["peak_rss_mb"]
    assert df.loc["short", "infer_rss_start_mb"] == short.rss_start_mb
    # the run's memory report: no kills, both with `default`, what the worker kept per unit
    from eksfold.memory.runreport import summarise
    summary = summarise(run)
    assert (summary["folded"], summary["oom_kills"], summary["other_kills"]) == (2, 0, 0)
    assert summary["settings"].set_index("setting").loc["default", "units"] == 2
    units = summary["units"].set_index("target")
    for rec in (long, short):
        kept = rec.rss_end_mb - rec.metrics["worker_baseline_mb"]
        assert units.loc[rec.target, "retained_mb"] == pytest.approx(kept, abs=0.11)


def test_unit_memory_measures_each_unit_alone_and_release_returns_freed_memory():
    import torch

    unit = UnitMemory().start()
    big = torch.ones(300 * 2**20 // 4)          # 300 MB, touched
    del big
    first = unit.finish(release_memory=False)
    unit = UnitMemory().start()
    small = torch.ones(20 * 2**20 // 4)
    del small
    second = unit.finish()
    assert first["peak_rss_scope"] == second["peak_rss_scope"] == "unit"
    assert first["peak_rss_mb"] - first["rss_start_mb"] > 250
    assert second["peak_rss_mb"] - second["rss_start_mb"] < 150   # not the first unit's peak
    # 300 MB of small tensors freed below one still alive: glibc keeps those heap pages
    # mapped (free() trims only the top of the heap); release() gives them back
    many = [torch.ones(100 * 1024 // 4) for _ in range(3000)]
    alive = many[-1]
    del many
    figures = release()
    assert figures["malloc_trim"] and alive.sum() > 0
    assert figures["rss_before_release_mb"] - figures["rss_end_mb"] > 200, figures


def test_old_records_are_marked_cumulative_and_left_out_of_fits_and_plots():
    old = UnitRecord.from_dict({"stage": "infer", "target": "a", "status": "ok", "schema": 2,
                                "peak_rss_mb": 18170.9})
    assert old.peak_rss_scope == "process"
    assert UnitRecord.from_dict({"stage": "infer", "target": "b"}).peak_rss_scope is None
    df = pd.DataFrame({"length": [40, 100, 200], "infer_peak_rss_mb": [18170.9, 600, 900],
                       "infer_peak_rss_scope": ["process", "unit", "unit-sampled"]})
    assert list(own_peak(df)) == [False, True, True]
    assert own_peak(df.drop(columns=["infer_peak_rss_scope"])).all()   # a benchmark's table
    from eksfold.plots import plot_memory_vs_length

    fig = plot_memory_vs_length(df.assign(device="cpu", preset="tiny"))
    xs = sorted(x for coll in fig.axes[0].collections for x, _ in coll.get_offsets())
    assert xs == [100, 200]


def test_the_chooser_accounts_for_the_workers_resident_memory():
    model = CostModel.fit(table())
    L, baseline = 200, 500.0
    need_default = (500 + 100 + 2000) * 1.15     # 2,990 MB with the margin
    fresh = Budget(3200, "given", resident_mb=baseline)
    assert choose_in_worker(L, fresh, baseline, model)["setting"] == "default"
    # the same limit, but the worker holds 600 MB above its baseline after earlier folds
    held = Budget(3200, "given", resident_mb=baseline + 600)
    c = choose_in_worker(L, held, baseline, model)
    assert c["setting"] == "chunk" and c["fits"]
    assert c["budget_mb"] == pytest.approx(3200 - 600) and c["budget_mb"] < need_default
    assert c["resident_mb"] == 1100 and c["free_mb"] == 2100 and c["baseline_mb"] == 500
    # holding more still: nothing fits (the unit would be refused / not started)
    assert not choose_in_worker(L, Budget(3200, "given", resident_mb=baseline + 2500),
                                baseline, model)["fits"]


def test_the_budget_read_in_a_process_drops_by_what_it_holds(tmp_path):
    """A real child under a real RLIMIT_DATA reads its budget before and after holding 400 MB:
    the limit is the same, the budget for a fresh-process prediction is 400 MB smaller."""
    script = textwrap.dedent("""
        import json
        from eksfold.memory.chooser import memory_budget
        from eksfold.memory.usage import rss_mb
        baseline = rss_mb()
        a = memory_budget()
        held = bytearray(400 * 2**20)
        for i in range(0, len(held), 4096):
            held[i] = 1
        b = memory_budget()
        print(json.dumps({"a": [a.mb, a.source, a.resident_mb, a.for_prediction(baseline)],
                          "b": [b.mb, b.source, b.resident_mb, b.for_prediction(baseline)]}))
    """)
    with limited_child(3000, "rlimit") as kw:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             check=True, **kw).stdout
    res = json.loads(out.strip().splitlines()[-1])
    assert res["a"][1] == res["b"][1] == "rlimit" and res["a"][0] == res["b"][0] == 3000
    assert res["b"][2] - res["a"][2] == pytest.approx(400, abs=30)
    assert res["a"][3] - res["b"][3] == pytest.approx(400, abs=30)


def test_the_margin_widens_past_the_sweep_and_the_choice_says_how_far():
    model = CostModel.fit(table())
    inside = choose(300, 100_000, model)
    assert inside.sweep_max_length == 300 and inside.beyond_sweep == 0 and inside.margin == 0.15
    far = choose(600, 100_000, model)
    assert far.beyond_sweep == pytest.approx(1.0)
    assert far.margin == pytest.approx(0.15 + BEYOND_MARGIN)
    # a budget the old fixed margin would accept at 600 residues is refused for `default`
    pred = model.predict(600, "default")
    c = choose(600, pred * 1.2, model)
    assert c.setting == "chunk" and c.fits
    _, errors = refuse_unfit([Target("huge", "A" * 1200)], model.predict(1200, "chunk") * 1.5, model)
    assert "huge" in str(errors[0]) and "90% safety margin" in str(errors[0])


def test_admission_starts_a_unit_beside_others_only_when_its_peak_fits():
    from eksfold.memory.admission import admit_choice, fits_beside

    model = CostModel.fit(table())
    big = 500 + 150 + 0.05 * 300 ** 2           # default at 300 residues: 5,150 MB
    alone = admit_choice(300, model, 1000, [])
    assert alone is not None and not alone.fits   # alone it starts (the chooser refuses up front)
    beside = admit_choice(300, model, 12000, [3000])
    assert beside.setting == "default" and beside.predicted_mb == pytest.approx(big)
    assert fits_beside(beside.predicted_mb, [3000], 12000)
    frugal = admit_choice(300, model, 6000, [3000])       # only `chunk` fits what is left
    assert frugal.setting == "chunk" and fits_beside(frugal.predicted_mb, [3000], 6000)
    assert admit_choice(300, model, 5000, [3000]) is None  # nothing fits beside: held
    assert not fits_beside(1500, [3000], 5000)


def test_admission_counts_a_child_folding_workers_whole_process_tree(tmp_path):
    """OpenFold3 folds in a runner child: its memory is the worker's (tree RSS), and a unit
    reserves the child's predicted peak plus the worker's own memory."""
    import time

    from eksfold.memory.admission import Admission, _own_rss_mb, _pid_rss_mb
    from eksfold.storage.local import LocalStore

    child_code = "b = bytearray(300 * 2**20); print('ready', flush=True); import time; time.sleep(60)"
    parent_code = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', %r], "
                   "stdout=sys.stdout); p.wait()" % child_code)
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        own, tree = _own_rss_mb(parent.pid), _pid_rss_mb(parent.pid)
        assert own < 100 and tree >= own + 300, (own, tree)   # the child's 300 MB counted

        model = CostModel.fit(table())
        store = LocalStore(str(tmp_path / "run"))
        plain = Admission(model, available=lambda: 20_000)
        child = Admission(model, available=lambda: 20_000, folds_in_child=True)
        for adm in (plain, child):
            assert adm.admit(store, "first", 300, parent.pid)
        predicted = plain.running["first"].predicted_mb
        assert child.running["first"].predicted_mb == pytest.approx(predicted + _own_rss_mb(parent.pid), abs=5)
        # capacity = free memory + the whole tree, not the worker alone
        assert plain.capacity_mb(parent.pid) >= 20_000 + 300
    finally:
        subprocess.run(["pkill", "-P", str(parent.pid)], check=False)
        parent.kill()
        parent.wait()


def test_the_planner_holds_inference_units_as_the_executor_does():
    from eksfold.planner.costs import stage_costs
    from eksfold.planner.cluster import local_cluster
    from eksfold.planner.localsim import simulate_local

    model = CostModel.fit(table())
    targets = {f"t{i}": 300 for i in range(4)}
    spec, costs = local_cluster(infer_workers=2), stage_costs()

    def overlaps(plan):
        infer = sorted((u.start, u.end) for u in plan.units if u.stage == "infer")
        return sum(b[0] < a[1] for a, b in zip(infer, infer[1:]))

    free = simulate_local(targets, spec, costs, memory=(100_000, model))
    tight = simulate_local(targets, spec, costs, memory=(6500, model))   # one 5 GB unit at a time
    assert overlaps(free) > 0 and overlaps(tight) == 0
    assert tight.makespan_s > free.makespan_s


def test_the_local_executor_grants_a_budget_beside_a_running_unit(tmp_path, small_db, worker_env):
    from eksfold.config import DatabaseConfig
    from eksfold.pipeline import run_pipeline
    from eksfold.progress import TextProgress

    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">a\n{GOOD[:50]}\n>b\n{GOOD[5:60]}\n")
    run = run_pipeline(fasta, str(tmp_path / "run"), preset="tiny",
                       databases=DatabaseConfig(uniref90=str(small_db)),
                       executor_options={"infer_workers": 2}, reporter=TextProgress(bars=False))
    recs = [run.record("infer", t) for t in ("a", "b")]
    assert all(r.done for r in recs)
    sources = sorted(r.metrics["choice"]["budget_source"] for r in recs)
    # both ready together (one MMseqs2 batch), two workers: the second started beside the
    # first, with the budget the executor granted it
    assert recs[0].metrics["model_reused"] is False and recs[1].metrics["model_reused"] is False
    assert "admission" in sources, sources
    assert not list((tmp_path / "run").glob("admission/infer/*.json"))   # grants removed
