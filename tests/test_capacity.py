"""Shards bounded by what the cluster can run at once (issue 23: API objects grow with what can
run, not with the targets). The NodePool figures are the shipped `cluster/karpenter/` ones; the
Node figures are the manifests the test cluster registers (tests/k8s_cluster.py)."""
from __future__ import annotations

from pathlib import Path

import yaml

from eksfold.config import RunConfig
from eksfold.executors.kubernetes.batching import Batcher
from eksfold.executors.kubernetes.capacity import fits, node_slots, nodepool_slots, quantity
from eksfold.k8s import names
from eksfold.k8s.jobs import Sizing
from eksfold.run import Run
from eksfold.targets import Target
from k8s_cluster import DEFAULT_NODES as NODES

CLUSTER = Path(__file__).resolve().parents[1] / "cluster"


def shipped_nodepools() -> list[dict]:
    text = (CLUSTER / "karpenter" / "nodepools.yaml").read_text()
    return [d for d in yaml.safe_load_all(text) if d and d.get("kind") == "NodePool"]


def as_nodes(specs) -> list[dict]:
    out = []
    for spec in specs:
        m = spec.manifest()
        out.append({"labels": m["metadata"]["labels"], "unschedulable": False,
                    "allocatable": {k: quantity(v) for k, v in m["status"]["allocatable"].items()}})
    return out


def test_pods_fit_by_their_scarcest_request():
    align = Sizing().for_length("align", 300)                     # 8 CPUs, 16 GiB
    assert fits({"cpu": 16, "memory": quantity("64Gi")}, align) == 2
    assert fits({"cpu": 64, "memory": quantity("40Gi")}, align) == 2   # memory binds
    gpu = Sizing().for_length("infer", 300)                       # 1 GPU, 4 CPUs, 24 GiB
    assert fits({"cpu": 32, "memory": quantity("256Gi"), names.GPU_RESOURCE: 1}, gpu) == 1
    assert fits({"cpu": 32, "memory": quantity("256Gi")}, gpu) == 0    # no GPU: none


def test_the_shipped_nodepools_bound_each_pool_by_its_limits():
    pools, sizing = shipped_nodepools(), Sizing()
    limits = {p["metadata"]["name"]: p["spec"]["limits"] for p in pools}
    align = sizing.for_length("align", 300)
    expected = min(quantity(limits[names.ALIGN_POOL]["cpu"]) // quantity(align.cpu),
                   quantity(limits[names.ALIGN_POOL]["memory"]) // quantity("16Gi"))
    assert nodepool_slots(pools, names.ALIGN_POOL, align) == expected
    # a standard inference unit may use either GPU NodePool; a large one only the large pool
    standard, large = sizing.for_length("infer", 300), sizing.for_length("infer", 1500)
    gpus = {n: int(quantity(lim.get(names.GPU_RESOURCE, 0))) for n, lim in limits.items()}
    assert nodepool_slots(pools, names.INFER_POOL, standard) == sum(gpus.values())
    assert nodepool_slots(pools, names.INFER_POOL, large) == gpus["eksfold-infer-large"]
    assert nodepool_slots([], names.ALIGN_POOL, align) is None


def test_nodes_of_the_pool_and_class_count_and_an_unknown_cluster_says_so():
    nodes, sizing = as_nodes(NODES), Sizing()
    assert node_slots(nodes, names.ALIGN_POOL, sizing.for_length("align", 300)) == 2
    assert node_slots(nodes, names.INFER_POOL, sizing.for_length("infer", 300)) == 2
    assert node_slots(nodes, names.INFER_POOL, sizing.for_length("infer", 1500)) == 1
    assert node_slots([], names.ALIGN_POOL, sizing.for_length("align", 300)) is None


def test_a_submission_is_cut_into_no_more_shards_than_can_run(tmp_path):
    lengths = {f"t{i:03d}": 40 + i for i in range(200)}
    run = Run.create(str(tmp_path / "run"),
                     [Target(t, ("ACDEFGHIKLMNPQRSTVWY" * 20)[:n]) for t, n in lengths.items()],
                     RunConfig())
    seen = []

    def slots(pool, res):
        seen.append((pool, res.size))
        return 3

    b = Batcher(Sizing(), max_shards={"align": 256}, fixed_cost_s={"align": 0.0})
    b.slots = slots
    b.add(run, "align", list(lengths))
    (sub,) = b.take()
    assert len(sub.shards) == 3 and seen == [("cpu", "std")]
    assert sorted(t for s in sub.shards for t in s) == sorted(lengths)
    b.slots = lambda pool, res: None          # the cluster does not say: the configured bound
    b.max_shards = {"align": 5}
    b.add(run, "align", list(lengths))
    assert len(b.take()[0].shards) == 5
