"""The cluster in ``cluster/``: Karpenter NodePools read into a :class:`ClusterSpec`.

For each NodePool: the instance types of the price table its requirements allow, the one with
the lowest cost per structure for the pool's usual Pod (price per Pod over the GPU's relative
speed, not merely the cheapest that fits: Karpenter launches the cheapest fitting type, so the
plan says which requirement pins its choice), the bigger ones for Pods that type cannot hold,
the node limit from the pool's ``limits``, spot where its capacity types allow it, and its
consolidation delay.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import ConfigError
from .cluster import CLUSTER_DIR, PRICES, ClusterSpec, NodePool, price_table

POOL_STAGE = {"eksfold-align": "align", "eksfold-infer": "infer"}   # eksfold.io/pool label


def _allowed(req: dict, name: str, facts: list, gpus: dict) -> bool:
    """Whether instance ``name`` meets one Karpenter requirement."""
    family, size = name.split(".")
    vcpu, mem, gpu, count, _ = facts
    values = {"karpenter.k8s.aws/instance-category": family[0],
              "karpenter.k8s.aws/instance-family": family,
              "karpenter.k8s.aws/instance-generation": "".join(c for c in family if c.isdigit()),
              "karpenter.k8s.aws/instance-cpu": str(vcpu),
              "karpenter.k8s.aws/instance-memory": str(mem * 1024),
              "karpenter.k8s.aws/instance-gpu-count": str(count),
              "karpenter.k8s.aws/instance-gpu-manufacturer": "nvidia" if gpu else None}
    key, op, want = req["key"], req["operator"], req.get("values", [])
    if key not in values:
        return True          # zone, arch, capacity type: not properties of the type here
    have = values[key]
    if op == "In":
        return have in want
    if op == "NotIn":
        return have not in want
    if op in ("Gt", "Lt"):
        return have is not None and (float(have) > float(want[0]) if op == "Gt"
                                     else float(have) < float(want[0]))
    if op == "Exists":
        return have is not None
    raise ConfigError(f"nodepools.yaml: operator {op!r} of requirement {key} is not understood")


def _seconds(text: str | None) -> float:
    if not text:
        return 0.0
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


def _pod_requests(stage: str, gpu_class: str | None) -> tuple[float, float, int]:
    """The largest requests of the executor's size classes routed to this pool."""
    from ..k8s.jobs import Sizing

    classes = [c.resources for c in Sizing().classes.get(stage, ())
               if c.resources.gpu_class == gpu_class]
    if not classes:
        return 1.0, 1.0, 0
    r = classes[0]   # the first class of the pool is the one most of its Pods use
    return float(r.cpu), float(r.memory.rstrip("Gi")), r.gpu


def cost_per_structure_key(pool, reference_gpu: str = "V100") -> float:
    """$/h per (Pods per node x relative GPU speed): lower is cheaper per structure."""
    from .costs import gpu_speed

    slots = pool.slots(*_pod_requests(pool.stage, pool.gpu_class))
    speed = (pool.gpu_speed or gpu_speed(pool.gpu, reference_gpu, pool.name)) if pool.gpu else 1.0
    return pool.price / max(slots, 1) / speed if slots else float("inf")


def default_cluster(path: Path | None = None, prices: Path = PRICES) -> ClusterSpec:
    """The cluster in ``cluster/karpenter/nodepools.yaml`` with the shipped price table."""
    path = Path(path or CLUSTER_DIR / "karpenter" / "nodepools.yaml")
    if not path.is_file():
        raise ConfigError(f"{path} not found: pass a cluster YAML (--cluster) or set "
                          "EKSFOLD_CLUSTER_DIR to the repository's cluster/ folder")
    table = price_table(prices)
    pools = []
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc or doc.get("kind") != "NodePool":
            continue
        name, spec = doc["metadata"]["name"], doc["spec"]
        labels = spec["template"]["metadata"]["labels"]
        stage = POOL_STAGE.get(labels.get("eksfold.io/pool"))
        if stage is None:
            continue
        gpu_class = labels.get("eksfold.io/gpu-class")
        reqs = spec["template"]["spec"].get("requirements", [])
        allowed = [n for n, f in table["instances"].items()
                   if all(_allowed(r, n, f, table["gpus"]) for r in reqs)]
        if not allowed:
            raise ConfigError(f"{path}: NodePool {name}: no instance type of {prices} meets its "
                              "requirements; add one to the price table or a cluster YAML")
        capacity = next((r.get("values", []) for r in reqs
                         if r["key"] == "karpenter.sh/capacity-type"), ["on-demand"])
        cpu, mem, gpu = _pod_requests(stage, gpu_class)
        candidates = []
        for n in allowed:
            vcpu, mem_gib, gtype, count, price = table["instances"][n]
            pool = NodePool(name, stage, n, vcpu, mem_gib, price,
                            price * table["spot_fraction"] if "spot" in capacity else None,
                            gtype, count, table["gpus"].get(gtype, {}).get("memory_gb", 0.0),
                            gpu_class=gpu_class)
            slots = pool.slots(cpu, mem, gpu)
            if slots:
                candidates.append((price / slots, n, pool))
        if not candidates:
            raise ConfigError(f"NodePool {name}: no allowed instance type holds one {stage} Pod "
                              f"({cpu:g} CPU, {mem:g} GiB, {gpu} GPU)")
        # the type with the lowest cost per structure: $/h over Pods per node and, for GPUs,
        # the GPU's relative speed (not only the cheapest type that fits)
        ranked = sorted((cost_per_structure_key(p), n, p) for _, n, p in candidates)
        _, _, best = ranked[0]
        cheapest_fit = min(candidates)[2]
        best.choice = ("lowest cost per structure of " + ", ".join(
            f"{p.instance} {k:.3g}" for k, _, p in ranked[:3]) + " ($/h per Pod / relative "
            "speed)" + ("" if cheapest_fit.instance == best.instance else
                        f"; pin it in the NodePool (karpenter.k8s.aws/instance-type In "
                        f"[{best.instance}]): Karpenter alone would launch the cheapest per Pod, "
                        f"{cheapest_fit.instance}"))
        # Karpenter launches a bigger type for a Pod the usual one cannot hold (e.g. 120 GiB)
        others = []
        for n in allowed:
            if n != best.instance:
                vcpu, mem_gib, gtype, count, price = table["instances"][n]
                others.append(NodePool(name, stage, n, vcpu, mem_gib, price,
                                       price * table["spot_fraction"] if "spot" in capacity
                                       else None, gtype, count,
                                       table["gpus"].get(gtype, {}).get("memory_gb", 0.0),
                                       gpu_class=gpu_class))
        best.variants = tuple(sorted(others, key=lambda p: p.price))
        limits = spec.get("limits", {})
        by = [float(limits["cpu"]) // best.vcpu] if "cpu" in limits else []
        if "nvidia.com/gpu" in limits and best.gpu_count:
            by.append(float(limits["nvidia.com/gpu"]) // best.gpu_count)
        if "memory" in limits:
            by.append(float(str(limits["memory"]).rstrip("Gi")) // best.memory_gib)
        best.max_nodes = int(min(by)) if by else 16
        best.consolidate_after_s = _seconds(spec.get("disruption", {}).get("consolidateAfter"))
        for v in best.variants:
            v.consolidate_after_s = best.consolidate_after_s
        best.candidates = tuple(sorted(allowed))
        best.weight = int(spec.get("weight", 0))
        pools.append(best)
    rate = float(table.get("spot_interruptions_per_hour", 0.0))
    return ClusterSpec("cluster/ (Karpenter NodePools)", pools, table["always_on_per_hour"],
                       f"{path.name} + {table['source']}; spot = {table['spot_fraction']} x "
                       f"on-demand ({table['spot_source']}); spot reclaims {rate:g} per "
                       f"node-hour ({table.get('spot_interruptions_source', 'given')})",
                       spot_interruptions_per_hour=rate)
