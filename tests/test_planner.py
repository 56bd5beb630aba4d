"""The planner: simulator logic on hand-computable cases, routing, impossible plans, clusters.

Costs here are simple stated curves (align 10 s, infer length/10 s), so every start, end,
makespan, cost and critical-path step can be computed by hand; no timing is measured.
"""
from __future__ import annotations

import pytest
import yaml

from eksfold import planner
from eksfold.errors import ConfigError, TargetError
from eksfold.planner import search
from eksfold.planner.cluster import ClusterSpec, NodePool, load_cluster
from eksfold.planner.karpenter import default_cluster
from eksfold.planner.costs import Costs, FixedCosts, loglog_curve
from eksfold.planner.localsim import simulate_local
from eksfold.planner.simulate import simulate_cluster
from eksfold.planner import routing as _routing  # noqa: F401  (planner.routing below)

LENGTHS = {"t1": 400, "t2": 300, "t3": 200, "t4": 100}


def simple_costs(node_start=100.0, infer_open=0.0):
    fixed = FixedCosts(node_start_s=node_start, image_pull_s=0.0, pod_start_s=0.0,
                       worker_open_s={"align": 0.0, "infer": infer_open}, unit_overhead_s={})
    return Costs({"align": lambda n: 10.0, "infer": lambda n: n / 10.0}, fixed, ["test"],
                 "jackhmmer")


def small_cluster(gpus=2, large=0, align_price=1.8, gpu_price=3.6):
    # vCPU 8.2 / 40 GiB: exactly one 8-CPU alignment Pod per node (after reserves), 32 GiB fits
    pools = [NodePool("cpu", "align", "c", 8.2, 40, align_price, max_nodes=1),
             NodePool("gpu", "infer", "g", 8.2, 40, gpu_price, gpu="L4", gpu_count=1,
                      gpu_memory_gb=24, gpu_class="standard", max_nodes=gpus)]
    if large:
        pools.append(NodePool("big", "infer", "b", 16, 128, 5.0, gpu="L40S", gpu_count=1,
                              gpu_memory_gb=48, gpu_class="large", max_nodes=large))
    return ClusterSpec("test", pools)


def test_local_schedule_by_hand():
    # align 0-10, 10-20, 20-30, 30-40 on one worker; infer worker 1 starts at 10 (+5 load),
    # worker 2 at 20 (+5): t1 15-55, t2 25-55, then t3 55-75 (worker 1), t4 55-65 (worker 2)
    cl = planner.local_cluster(align_workers=1, infer_workers=2)
    plan = simulate_local(LENGTHS, cl, simple_costs(infer_open=5.0))
    got = {(u.stage, u.target): (u.start, u.end, u.worker) for u in plan.units}
    assert got[("infer", "t1")] == (15.0, 55.0, "infer-worker-1")
    assert got[("infer", "t2")] == (25.0, 55.0, "infer-worker-2")
    assert got[("infer", "t3")] == (55.0, 75.0, "infer-worker-1")
    assert got[("infer", "t4")] == (55.0, 65.0, "infer-worker-2")
    assert got[("align", "t4")][:2] == (30.0, 40.0)
    assert plan.makespan_s == 75.0
    path = [(s["stage"], s["start"], s["end"]) for s in plan.critical_path]
    assert path == [("align", 0.0, 10.0), ("infer", 10.0, 15.0), ("infer", 15.0, 75.0)]
    assert plan.critical_stage() == "infer"


def cluster_plan(gpus=2, window=35.0):
    return simulate_cluster(LENGTHS, small_cluster(gpus), simple_costs(), batch_window=window,
                            poll_s=0.0)


def test_cluster_schedule_by_hand():
    # the classic batch window. Align node up at 100; one Pod runs t1, t2, t3, t4 (longest
    # first) 100-140. The first alignment (t1, 110) opens the inference batch; 35 s later (145)
    # all four are in it. plan_shards (LPT, 2 shards = 2 GPUs): [t1, t4] and [t2, t3], each
    # longest first; GPU nodes up at 245.
    plan = cluster_plan()
    got = {(u.stage, u.target): (u.start, u.end) for u in plan.units}
    assert [got[("align", t)] for t in ("t1", "t2", "t3", "t4")] == \
        [(100, 110), (110, 120), (120, 130), (130, 140)]
    assert got[("infer", "t1")] == (245, 285) and got[("infer", "t4")] == (285, 295)
    assert got[("infer", "t2")] == (245, 275) and got[("infer", "t3")] == (275, 295)
    assert sorted(w.targets for w in plan.workers if w.stage == "infer") == \
        [["t1", "t4"], ["t2", "t3"]]
    assert plan.makespan_s == 295
    # GPU nodes 145-295 at $3.6/h each; the CPU node 0-140 at $1.8/h (no consolidation delay)
    assert plan.cost_by_stage["infer"] == pytest.approx(2 * 150 * 3.6 / 3600)
    assert plan.cost_by_stage["align"] == pytest.approx(140 * 1.8 / 3600)
    assert plan.node_counts == {"cpu": 1, "gpu": 2}
    path = [(s["start"], s["end"]) for s in plan.critical_path]
    assert path == [(0, 100), (100, 110), (110, 145), (145, 245), (245, 295)]
    assert "node start" in plan.critical_path[0]["what"]
    assert "batch window" in plan.critical_path[2]["what"]


def streaming_plan(gpus=2, delay=None):
    return simulate_cluster(LENGTHS, small_cluster(gpus), simple_costs(), stream=True,
                            stream_delay=delay, poll_s=0.0)


def test_streaming_schedule_by_hand():
    # Both Jobs at 0: the CPU and GPU nodes start together, up at 100. Align t1..t4 100-140
    # (longest first). GPU shards [t1, t4], [t2, t3]; their workers are ready at 100 and idle
    # until an input is in: t1 110-150 then t4 (aligned at 140) 150-160; t2 120-150 then t3
    # (aligned at 130) 150-170. Makespan 170, against 295 with the 35 s batch window.
    plan = streaming_plan()
    got = {(u.stage, u.target): (u.start, u.end) for u in plan.units}
    assert got[("infer", "t1")] == (110, 150) and got[("infer", "t4")] == (150, 160)
    assert got[("infer", "t2")] == (120, 150) and got[("infer", "t3")] == (150, 170)
    assert plan.makespan_s == 170
    # inference started before the last alignment was committed (140)
    assert min(got[("infer", t)][0] for t in LENGTHS) < max(got[("align", t)][1] for t in LENGTHS)
    # GPU nodes 0-160 and 0-170, idle 100-110 / 100-120 included; CPU node 0-140
    assert plan.cost_by_stage["infer"] == pytest.approx((160 + 170) * 3.6 / 3600)
    assert plan.cost_by_stage["align"] == pytest.approx(140 * 1.8 / 3600)
    # critical path: node start, align t1..t2 on the CPU Pod, then the GPU worker that waited
    # for t2's alignment runs t2 and t3 back to back
    path = [(s["stage"], s["start"], s["end"]) for s in plan.critical_path]
    assert path == [("align", 0, 100), ("align", 100, 120), ("infer", 120, 170)]
    assert plan.cost_fallback == pytest.approx(plan.cost)     # no spot prices given


def test_streaming_lead_holds_the_gpu_job_until_it_is_needed():
    # first alignment ends at 110; a GPU node needs 100 s: the GPU Job may wait 10 s, which
    # saves 2 x 10 GPU-seconds and changes no unit's time
    from eksfold.planner.levers import stream_lead

    fixed = simple_costs().fixed
    assert stream_lead(streaming_plan(), fixed, ("align", "infer")) == {"infer": 10.0}
    held = streaming_plan(delay={"infer": 10.0})
    assert held.makespan_s == 170
    assert held.cost_by_stage["infer"] == pytest.approx((150 + 160) * 3.6 / 3600)
    assert {(u.stage, u.target): (u.start, u.end) for u in held.units} == \
        {(u.stage, u.target): (u.start, u.end) for u in streaming_plan().units}


def test_longest_first_inside_and_across_shards():
    from eksfold.sharding import next_ready, plan_shards

    costs = {"a": 1.0, "b": 8.0, "c": 3.0, "d": 5.0, "e": 2.0}
    shards = plan_shards(costs, fixed_cost_s=0.0, max_shards=2)
    # LPT: b (8) -> 0, d (5) -> 1, c (3) -> 1, e (2) -> 0, a (1) -> 1: shard 0 holds the longest
    assert shards == [["b", "e"], ["d", "c", "a"]]
    # a streaming worker takes the longest target whose input is in
    assert next_ready(["d", "c", "a"], {"d": "wait", "c": "done", "a": "done"}) == "c"
    assert next_ready(["d", "c"], {"d": "wait", "c": "wait"}) is None
    # one GPU, one shard t1..t4 (longest first): it waits for t1 (110) and never again
    plan = streaming_plan(gpus=1)
    got = {u.target: (u.start, u.end) for u in plan.units if u.stage == "infer"}
    assert got == {"t1": (110, 150), "t2": (150, 180), "t3": (180, 200), "t4": (200, 210)}


def test_lower_bounds_by_hand():
    # critical target t1: node 100 + align 10 + infer 40 = 150; infer work 100 s on 2 GPUs
    # after the 100 s node start = 150; align work 40 s on 1 Pod after it = 140
    from eksfold.planner.levers import lower_bounds

    b = lower_bounds(streaming_plan(), simple_costs().fixed, ("align", "infer"))
    assert b["critical target t1"] == 150 and b["lower bound"] == 150
    assert b["node start + infer work / 2 GPUs"] == 150
    assert b["node start + align work / 1 align Pods"] == 140


def test_spot_prices_only_where_allowed():
    cl = small_cluster()
    cl.pools[1].spot_price = 1.2          # GPU pool allows spot, CPU pool is on-demand only
    plan = simulate_cluster(LENGTHS, cl, simple_costs(), batch_window=35.0, poll_s=0.0,
                            spot=True)
    assert plan.cost_by_stage["infer"] == pytest.approx(2 * 150 * 1.2 / 3600)
    assert plan.cost_by_stage["align"] == pytest.approx(140 * 1.8 / 3600)


def test_spot_reclaims_price_the_work_they_redo():
    # infer units of 40, 30, 20 and 10 s on spot GPU nodes at $1.2/h; at r reclaims per
    # node-hour a unit of T h redoes r * T^2 / 2 node-hours on average: with r = 3600/h,
    # 3600 * (40^2 + 30^2 + 20^2 + 10^2) / 3600^2 / 2 * 1.2 = $0.50; align is on-demand: none
    cl = small_cluster()
    cl.pools[1].spot_price = 1.2
    cl.spot_interruptions_per_hour = 3600.0
    plan = simulate_cluster(LENGTHS, cl, simple_costs(), batch_window=35.0, poll_s=0.0,
                            spot=True)
    assert plan.spot_rework == pytest.approx(0.5, abs=1e-4)
    assert plan.cost_by_stage["infer"] == pytest.approx(2 * 150 * 1.2 / 3600 + 0.5, abs=1e-4)
    assert plan.cost_by_stage["align"] == pytest.approx(140 * 1.8 / 3600)
    on_demand = simulate_cluster(LENGTHS, cl, simple_costs(), batch_window=35.0, poll_s=0.0)
    assert on_demand.spot_rework == 0.0


def test_long_target_routed_to_large_gpu_class():
    lengths = {**LENGTHS, "long": 1500}   # Sizing: infer > 1000 residues is class "large"
    plan = simulate_cluster(lengths, small_cluster(large=1), simple_costs(), batch_window=35.0,
                            poll_s=0.0)
    pools = {u.target: u.pool for u in plan.units if u.stage == "infer"}
    assert pools["long"] == "big" and {pools[t] for t in LENGTHS} == {"gpu"}


def test_target_that_fits_no_node_type():
    lengths = {**LENGTHS, "long": 1500}
    with pytest.raises(TargetError) as err:
        simulate_cluster(lengths, small_cluster(large=0), simple_costs())
    assert err.value.target == "long" and "no node type" in str(err.value)


def fixed_window_sim(cl, window):
    return simulate_cluster(LENGTHS, cl, simple_costs(), batch_window=35.0, poll_s=0.0)


def test_smallest_cluster_for_deadline(monkeypatch):
    # 2 GPUs: 295 s (above); 1 GPU: one shard t4,t3,t2,t1 from 245: 345 s
    monkeypatch.setattr(search, "WINDOWS", (35.0,))
    two = search.smallest_for_deadline(fixed_window_sim, small_cluster(gpus=4), 300)
    assert two.node_counts["gpu"] == 2 and two.makespan_s == 295
    one = search.smallest_for_deadline(fixed_window_sim, small_cluster(gpus=4), 350)
    assert one.node_counts["gpu"] == 1 and one.makespan_s == 345
    with pytest.raises(search.InfeasiblePlan) as err:
        search.smallest_for_deadline(fixed_window_sim, small_cluster(gpus=4), 200)
    assert "deadline" in str(err.value) and err.value.best.makespan_s < 300



def test_cheapest_cluster_for_deadline_can_have_more_nodes():
    # streaming; align 60 s per target, infer L/10 s, nodes start in 100 s, CPU $0.5/h, GPU
    # $3.6/h, every node launched at 0. One CPU node: aligns end 160/220/280/340, the GPU runs
    # t1 160-200, t2 220-250, t3 280-300, t4 340-350: GPU 350 s ($0.35) + CPU 340 s ($0.0472).
    # Two CPU nodes: aligns end 160, 160, 220, 220; GPU t1 160-200, t2 200-230, t3 230-250,
    # t4 250-260: GPU 260 s ($0.26) + CPU 2 x 220 s ($0.0611): one node more, $0.076 less.
    fixed = FixedCosts(node_start_s=100.0, image_pull_s=0.0, pod_start_s=0.0,
                       worker_open_s={"align": 0.0, "infer": 0.0}, unit_overhead_s={})
    costs = Costs({"align": lambda n: 60.0, "infer": lambda n: n / 10.0}, fixed, ["test"],
                  "jackhmmer")
    cl = small_cluster(gpus=1, align_price=0.5)
    cl.pools[0].max_nodes = 2

    def sim(c, window):
        return simulate_cluster(LENGTHS, c, costs, stream=True, poll_s=0.0)

    fewest = search.smallest_for_deadline(sim, cl, 400, windows=(None,))
    assert fewest.node_counts == {"cpu": 1, "gpu": 1} and fewest.makespan_s == 350
    assert fewest.cost == pytest.approx(350 * 3.6 / 3600 + 340 * 0.5 / 3600, abs=1e-4)
    cheapest = search.smallest_for_deadline(sim, cl, 400, windows=(None,), objective="cost")
    assert cheapest.node_counts == {"cpu": 2, "gpu": 1} and cheapest.makespan_s == 260
    assert cheapest.cost == pytest.approx(260 * 3.6 / 3600 + 2 * 220 * 0.5 / 3600, abs=1e-4)
    assert "cheapest cluster meeting the deadline" in cheapest.notes[-1]
    with pytest.raises(ConfigError):
        search.smallest_for_deadline(sim, cl, 400, windows=(None,), objective="speed")

def test_fastest_for_budget(monkeypatch):
    monkeypatch.setattr(search, "WINDOWS", (35.0,))
    rich = search.fastest_for_budget(fixed_window_sim, small_cluster(gpus=2), 10.0)
    assert rich.makespan_s == 295
    # 1 GPU costs (345-145) s * $3.6/h = $0.20 + CPU $0.07 = $0.27; 2 GPUs $0.37
    poor = search.fastest_for_budget(fixed_window_sim, small_cluster(gpus=2), 0.30)
    assert poor.makespan_s == 345
    with pytest.raises(search.InfeasiblePlan) as err:
        search.fastest_for_budget(fixed_window_sim, small_cluster(gpus=2), 0.01)
    assert "$0.01" in str(err.value)


def _sizing():
    from eksfold.k8s.jobs import Sizing

    return Sizing()


def test_default_cluster_is_read_from_cluster_dir():
    cl = default_cluster()
    docs = [d for d in yaml.safe_load_all(open(planner.cluster.CLUSTER_DIR
                                                 / "karpenter/nodepools.yaml")) if d]
    assert {p.name for p in cl.pools} == {d["metadata"]["name"] for d in docs}
    large = next(p for p in cl.pools if p.gpu_class == "large")
    # its NodePool allows spot (reclaims priced as rework: test_spot_reclaims_price_...)
    assert large.spot_price is not None and large.spot_price < large.price
    assert cl.spot_interruptions_per_hour > 0
    assert large.max_nodes <= int(next(d for d in docs if d["metadata"]["name"] == large.name)
                                  ["spec"]["limits"]["nvidia.com/gpu"])
    assert large.gpu in ("L40S", "H100") and large.instance in large.candidates
    align = next(p for p in cl.pools if p.stage == "align")
    assert align.spot_price < align.price
    # the 16 GiB align Pod: an m 2xlarge (32 GiB) is the cheapest that holds it, while a
    # 32 GiB one (queries over 1,000 residues) needs a bigger type of the pool: an r 2xlarge
    assert align.instance.startswith("m") and align.instance.endswith(".2xlarge")
    long_pool, _ = planner.routing.route("align", 1500, cl, _sizing())
    assert long_pool.instance.startswith("r") and long_pool.instance.endswith(".2xlarge")


def test_user_cluster_yaml(tmp_path):
    good = tmp_path / "c.yaml"
    good.write_text(yaml.safe_dump({"name": "mine", "always_on_per_hour": 0.5, "pools": [
        {"name": "cpu", "stage": "align", "instance": "r6i.8xlarge", "vcpu": 32,
         "memory_gib": 256, "price": 2.0, "max_nodes": 2},
        {"name": "gpu", "stage": "infer", "gpu_class": "standard", "instance": "g5.4xlarge",
         "vcpu": 16, "memory_gib": 64, "gpu": "A10G", "gpu_count": 1, "price": 1.6,
         "max_nodes": 3}]}))
    cl = load_cluster(good)
    assert cl.name == "mine" and [p.max_nodes for p in cl.pools] == [2, 3]
    plan = planner.plan(LENGTHS, cluster=str(good), msa_mode="mmseqs2")
    assert plan.node_counts["gpu"] <= 3 and plan.cost_by_stage["cluster (always on)"] > 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("pools:\n  - {name: x, stage: align, instance: i, vcpu: 4, memory_gib: 8, "
                   "price: 1, gpus: 2}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml, pool 1: unknown field\(s\) gpus"):
        load_cluster(bad)
    bad.write_text("pools: [{name: x, stage: align}]\n")
    with pytest.raises(ConfigError, match="missing field"):
        load_cluster(bad)
    bad.write_text("pools: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_cluster(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_cluster(tmp_path / "nope.yaml")


def test_cameo92_plan_with_reference_profile():
    od = planner.plan("data/cameo92/targets.fasta", msa_mode="mmseqs2")
    spot = planner.plan("data/cameo92/targets.fasta", msa_mode="mmseqs2", spot=True)
    jh = planner.plan("data/cameo92/targets.fasta", msa_mode="jackhmmer")
    assert od.targets == 92 and len(od.units) == 184
    assert spot.cost < od.cost
    assert jh.stage_span_s["align"][1] > od.stage_span_s["align"][1]
    assert od.critical_path and od.critical_path[-1]["end"] == od.makespan_s
    assert any("literature" in s for s in od.sources)
    back = planner.Plan.from_dict(od.to_dict())
    assert back.makespan_s == od.makespan_s and back.units[0] == od.units[0]


def test_durations_and_bad_lengths():
    assert planner.parse_duration("1h30m") == 5400 and planner.parse_duration("45m") == 2700
    with pytest.raises(ConfigError, match="duration"):
        planner.parse_duration("soon")
    with pytest.raises(TargetError, match="positive"):
        planner.target_lengths({"x": 0})


def test_reference_curve_passes_through_its_points():
    f = loglog_curve([(256, 36.0), (384, 66.0), (2500, 7560.0)])
    assert f(384) == pytest.approx(66.0) and f(2500) == pytest.approx(7560.0)
    assert f(100) < f(256) < f(300) < f(384) < f(5000)


def test_pod_too_big_for_the_usual_type_gets_a_bigger_one():
    # > 2500 residues: Sizing's "xlarge" class asks 120 GiB; the large pool's usual
    # g6e.4xlarge (128 GiB, less after reserves) cannot hold it, a bigger allowed type can
    plan = planner.plan({"huge": 2600, "small": 100}, msa_mode="mmseqs2", batch_window=0)
    pools = {u.target: u.pool for u in plan.units if u.stage == "infer"}
    assert pools["small"] == "eksfold-infer"
    assert pools["huge"].startswith("eksfold-infer-large/")
    node = next(n for n in plan.nodes if n.pool == pools["huge"])
    large = next(p for p in default_cluster().pools if p.name == "eksfold-infer-large")
    bigger = next(v for v in large.variants if v.instance == node.instance)
    assert bigger.memory_gib > large.memory_gib and bigger.fits(8, 120, 1)


def test_planned_vs_actual(tmp_path):
    from eksfold.config import RunConfig
    from eksfold.records import UnitRecord
    from eksfold.run import Run
    from eksfold.targets import Target

    targets = [Target(id="a", sequence="M" * 40), Target(id="b", sequence="M" * 80)]
    run = Run.create(str(tmp_path / "run"), targets, RunConfig())
    p = simulate_local({"a": 40, "b": 80}, planner.local_cluster(), simple_costs())
    planner.save_plan(run.root, p)       # longest first: align b 0-10, a 10-20; infer b 10-18, a 20-24
    actual = {("align", "b"): (0, 10), ("align", "a"): (10, 22),
              ("infer", "b"): (10, 20), ("infer", "a"): (22, 27)}
    base = 1_700_000_000
    for (stage, tid), (s, e) in actual.items():
        rec = UnitRecord(stage, tid, wall_s=float(e - s),
                         started=_utc(base + s), finished=_utc(base + e))
        rec.succeed({}, {})
        rec.write(run.store)
    df = planner.planned_vs_actual(run.root).set_index(["stage", "target"])
    assert df.loc[("infer", "b"), "planned_s"] == 8.0 and df.loc[("infer", "b"), "error_s"] == 2.0
    assert df.loc[("infer", "b"), "actual_end"] == 20.0
    cmp = planner.makespan_comparison(run.root)
    assert cmp["planned_s"] == 24.0 and cmp["actual_s"] == 27.0
    assert cmp["error"] == pytest.approx(24 / 27 - 1, abs=1e-4) and cmp["units_done"] == 4


def _utc(t):
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def test_gpu_class_from_a_memory_model():
    # A CUDA cost model routes by predicted GPU memory instead of Sizing's 1000-residue line.
    # The table is test input for the routing logic (a fitted curve 1000 + 0.03 L^2 MB), not
    # a measurement: with the 15 % margin, 800 residues fit 24 GB, 900 need 48 GB, 1300 fit none.
    import pandas as pd

    from eksfold.memory.costmodel import CostModel

    Ls = [100, 400, 700, 1000, 1200]
    table = pd.DataFrame({"length": Ls, "setting": "default", "device": "cuda",
                          "inference_s": [1.0 + L / 100 for L in Ls],
                          "peak_rss_mb": [4000.0] * 5,
                          "peak_cuda_reserved_mb": [1000 + 0.03 * L * L for L in Ls]})
    costs = simple_costs()
    costs.memory_model = CostModel.fit(table, device="cuda")
    plan = simulate_cluster({"a": 800, "b": 900}, small_cluster(large=1), costs)
    pools = {u.target: u.pool for u in plan.units if u.stage == "infer"}
    assert pools == {"a": "gpu", "b": "big"}
    with pytest.raises(TargetError) as err:
        simulate_cluster({"c": 1300}, small_cluster(large=1), costs)
    assert err.value.target == "c" and "largest GPU class" in str(err.value)


def test_cli_plan_and_impossible_deadline(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "plan.json"
    ok = subprocess.run([sys.executable, "-m", "eksfold.cli.plan", "data/cameo92/targets.fasta",
                         "--msa", "mmseqs2", "--spot", "--limit", "12", "--json", str(out)],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "critical path" in ok.stdout and json.loads(out.read_text())["targets"] == 12
    bad = subprocess.run([sys.executable, "-m", "eksfold.cli.plan", "data/cameo92/targets.fasta",
                          "--deadline", "5m"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no cluster within the pools' limits meets the deadline" \
        in bad.stderr


def test_bigger_type_waits_for_the_pool_limit():
    # limit 1 node in the large pool: the 2600-residue Pod's bigger node starts only after the
    # 1500-residue target's node has been released (the limit covers every type of the pool)
    cl = default_cluster().scaled(**{"eksfold-infer-large": 1})
    plan = planner.plan({"a": 1500, "b": 2600}, cluster=cl, msa_mode="mmseqs2", batch_window=0)
    assert len(plan.units) == 4
    large = [n for n in plan.nodes if n.pool.startswith("eksfold-infer-large")]
    assert len(large) == 2
    first, second = sorted(large, key=lambda n: n.launched)
    assert second.launched >= first.released and second.pool != first.pool


def test_local_dispatch_gap_by_hand():
    # a warm worker's next unit starts 1 s after the later of its previous unit and its input;
    # a new worker's first unit starts worker_open_s (5 s) after its input, with no extra gap
    costs = simple_costs(infer_open=5.0)
    costs.fixed.unit_overhead_s = {"align": 1.0, "infer": 1.0}
    plan = simulate_local({"a": 400, "b": 100}, planner.local_cluster(), costs)
    got = {(u.stage, u.target): (u.start, u.end) for u in plan.units}
    assert got == {("align", "a"): (0, 10), ("align", "b"): (11, 21),
                   ("infer", "a"): (15, 55), ("infer", "b"): (56, 66)}
    assert plan.makespan_s == 66


def test_instance_type_by_cost_per_structure():
    # eksfold-infer allows g5 with > 15,000 MiB: the 12 GiB infer Pod of <= 800 residues (host
    # memory measured, k8s.sizing) fits g5.xlarge, the cheapest per structure:
    # $1.006/h over the A10G's data-sheet speed relative to a V100, sqrt(600/900 * 31.2/15.7)
    import math

    from eksfold.planner.karpenter import cost_per_structure_key

    a10g = math.sqrt(600 / 900 * 31.2 / 15.7)
    l4 = math.sqrt(300 / 900 * 30.3 / 15.7)
    cl = default_cluster()
    std = next(p for p in cl.pools if p.name == "eksfold-infer")
    assert std.instance == "g5.xlarge" and std.weight > 0
    assert cost_per_structure_key(std) == pytest.approx(1.006 / a10g)
    # the 24 GiB Pod (801-1,000 residues) takes the pool's next type that holds it
    g5_2 = next(v for v in std.variants if v.instance == "g5.2xlarge")
    assert cost_per_structure_key(g5_2) == pytest.approx(1.212 / a10g)
    assert cost_per_structure_key(g5_2) > cost_per_structure_key(std)
    # L4 (g6) costs less per hour but more per structure: it is the lower-weight fallback
    # NodePool, which the plan does not use while the g5 pool fits
    fallback = next(p for p in cl.pools if p.name == "eksfold-infer-l4")
    assert fallback.gpu == "L4" and fallback.weight < std.weight
    assert fallback.price < std.price
    assert cost_per_structure_key(fallback) == pytest.approx(0.8048 / l4)
    assert cost_per_structure_key(fallback) > cost_per_structure_key(std)
    for length, instance in ((300, "g5.xlarge"), (800, "g5.xlarge"), (900, "g5.2xlarge")):
        pool, res = planner.routing.route("infer", length, cl, _sizing())
        assert pool.instance == instance and pool.name.startswith("eksfold-infer"), length
        assert pool.fits(float(res.cpu), float(res.memory.rstrip("Gi")), res.gpu)


def test_spot_fallback_and_msa_cache_by_hand():
    # GPU pool at spot $1.2/h (on-demand $3.6/h): the streaming schedule's GPU nodes run
    # 0-160 and 0-170 s; if both fell back to on-demand they would cost (160 + 170) * 3.6 / 3600
    cl = small_cluster()
    cl.pools[1].spot_price = 1.2
    plan = simulate_cluster(LENGTHS, cl, simple_costs(), stream=True, spot=True, poll_s=0.0)
    assert plan.cost_by_stage["infer"] == pytest.approx((160 + 170) * 1.2 / 3600)
    assert plan.cost_fallback == pytest.approx((160 + 170) * 3.6 / 3600 + 140 * 1.8 / 3600)
    # t1's MSA from the cache: its alignment is a 2 s fetch (100-102), t2 102-112, ...
    cached = simulate_cluster(LENGTHS, small_cluster(), simple_costs(), stream=True,
                              poll_s=0.0, cache_hits={"t1"})
    got = {(u.stage, u.target): (u.start, u.end) for u in cached.units}
    assert got[("align", "t1")] == (100, 102) and got[("align", "t2")] == (102, 112)
    assert got[("infer", "t1")] == (102, 142)
