"""Where a unit runs: the executor's size class (:class:`eksfold.k8s.jobs.Sizing`), then the
pool serving that class (GPU class label), then the pool's instance type that holds the Pod."""
from __future__ import annotations

import dataclasses

from ..errors import TargetError
from ..stages import get_stage


def route(stage: str, length: int, cluster, sizing, target: str = "?", memory_model=None):
    """(pool, Resources) for one unit: the executor's size class, then the pool serving it.

    With ``memory_model`` (a CUDA :class:`~eksfold.memory.costmodel.CostModel`) the GPU class
    is the smallest whose GPU memory fits the target (:func:`eksfold.memory.chooser.gpu_class_for`)
    instead of the size class's length threshold.
    """
    res = sizing.for_length(stage, length)
    kind = "infer" if get_stage(stage).pool == "gpu" else "align"
    pools = cluster.pools_for(stage) or cluster.pools_for(kind)
    gpu_class = res.gpu_class
    if gpu_class and memory_model is not None:
        from ..memory.chooser import gpu_class_for

        classes = {p.gpu_class: p.gpu_memory_gb * 1024 for p in pools if p.gpu_class}
        try:
            gpu_class = gpu_class_for(length, memory_model, classes)["gpu_class"]
        except TargetError as exc:
            raise TargetError(target, exc.problem) from None
    if gpu_class:
        pools = [p for p in pools if p.gpu_class == gpu_class]
    pools = sorted(pools, key=lambda p: -p.weight)   # as Karpenter: the heaviest pool that fits
    req = (float(res.cpu), float(res.memory.rstrip("Gi")), res.gpu)
    for pool in pools:
        if pool.max_nodes > 0 and pool.fits(*req):
            return pool, res
        for other in pool.variants if pool.max_nodes > 0 else ():
            if other.fits(*req):     # the pool's limit covers its bigger types too
                return dataclasses.replace(other, name=f"{pool.name}/{other.instance}",
                                           max_nodes=pool.max_nodes, variants=()), res
    raise TargetError(target, f"{length} residues: the {stage} size class {res.size!r} needs "
                      f"{req[0]:g} CPU, {req[1]:g} GiB" + (f", {req[2]} GPU of class "
                      f"{gpu_class!r}" if req[2] else "") + " and no node type of cluster "
                      f"{cluster.name!r} fits it (pools: "
                      f"{', '.join(p.name for p in cluster.pools) or 'none'})")


def most_at_once(intervals) -> int:
    """Most of the ``(start, end)`` intervals open at one time (an end frees before a start)."""
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    up = best = 0
    for _, d in edges:
        up += d
        best = max(best, up)
    return best


def peak_nodes(nodes) -> int:
    """Most nodes up at once."""
    return most_at_once([(n.launched, n.released) for n in nodes])
