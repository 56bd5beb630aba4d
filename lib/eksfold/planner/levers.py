"""What a plan can pull to be faster or cheaper, and how far from the ideal it is.

- :func:`stream_lead`: how long the streaming executor holds a dependent stage's Job, so its
  nodes are ready as its first input is committed (GPUs requested as soon as inference work
  is foreseeable, without idling through the whole alignment ramp);
- :func:`lower_bounds`: the schedule's lower bounds: the critical target (node start, image,
  Pod start, worker load, then its alignment and inference back to back), and per stage the
  total work over the Pods the plan runs at once, after the first node start;
- :func:`index_sizing`: alignment Pods sized by the MMseqs2 index's memory (the executor's
  rule, :mod:`eksfold.alignment.podmemory`);
- :func:`cache_hit_targets`: which targets' MSAs are taken as cache hits (a stated fraction);
- :func:`describe_levers`: the instance type per pool and why, Pods per node, spot with its
  on-demand fallback, the MSA cache, $/structure and what dominates it.
"""
from __future__ import annotations

import hashlib

from ..stages import depends_on, get_stage
from .routing import most_at_once


def stream_lead(plan, fixed, stages) -> dict:
    """stage -> seconds its Job may wait after the start: its first input's end minus what a
    new node needs before its worker can take it (node start, image pull, Pod start, load)."""
    out = {}
    for stage in stages:
        dep = depends_on(stage)
        if dep not in stages:
            continue
        first = min((u.end for u in plan.units if u.stage == dep), default=0.0)
        ready = fixed.node_start_s + fixed.image_pull_s + fixed.pod_start_s + fixed.worker(stage)
        if first - ready > 1.0:
            out[stage] = float(int(first - ready))
    return out


def lower_bounds(plan, fixed, stages) -> dict:
    """Seconds no schedule on this cluster can beat, by what bounds it (module docstring)."""
    dur: dict[tuple, float] = {(u.stage, u.target): u.end - u.start for u in plan.units}
    start = fixed.node_start_s + fixed.image_pull_s + fixed.pod_start_s
    first = stages[0]
    chain = {t: start + fixed.worker(first) + sum(dur.get((s, t), 0.0) for s in stages)
             for _, t in dur}
    crit = max(chain, key=chain.get)
    out = {f"critical target {crit}": round(chain[crit], 1)}
    for stage in stages:
        pods = max(_concurrent(plan, stage), 1)
        work = sum(v for (s, _), v in dur.items() if s == stage)
        what = "GPUs" if get_stage(stage).pool == "gpu" else f"{stage} Pods"
        out[f"node start + {stage} work / {pods} {what}"] = round(
            start + fixed.worker(stage) + work / pods, 1)
    out["lower bound"] = max(out.values())
    return out


def _concurrent(plan, stage) -> int:
    """Most Pods of ``stage`` running at once in the plan."""
    return most_at_once([(w.start, w.end) for w in plan.workers if w.stage == stage])


def index_sizing(index_gib: float | None):
    """The executor's size classes, alignment Pods asking for the MMseqs2 index's memory."""
    from dataclasses import replace

    from ..alignment.podmemory import sized_for_index
    from ..k8s.jobs import Sizing

    sizing = Sizing()
    if not index_gib:
        return sizing
    classes = dict(sizing.classes)
    classes["align"] = tuple(replace(c, resources=sized_for_index(c.resources, index_gib))
                             for c in classes["align"])
    return Sizing(classes, sizing.gpu_model)


def cache_hit_targets(lengths: dict, fraction: float) -> set:
    """A stable ``fraction`` of the targets (by a hash of the id) whose MSA is cached."""
    if fraction <= 0:
        return set()
    cut = int(fraction * 2**32)
    return {t for t in lengths
            if int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "big") < cut}


def describe_levers(plan, spec, spot, cache_hit, index_gib, msa_mode) -> dict:
    from .karpenter import _pod_requests

    used = {n.pool.split("/")[0] for n in plan.nodes}
    pools = {}
    for p in spec.pools:
        if p.name not in used:
            continue
        cpu, mem, gpu = _pod_requests(p.stage, p.gpu_class)
        if p.stage == "align" and index_gib and msa_mode == "mmseqs2":
            from ..alignment.podmemory import pod_memory_gib

            mem = pod_memory_gib(index_gib, mem)
        slots = p.slots(cpu, mem, gpu)
        pools[p.name] = (f"{p.instance}: {slots} {p.stage} Pod{'s' if slots != 1 else ''} per "
                         f"node; {p.choice or 'given'}")
    stages = {k: v for k, v in plan.cost_by_stage.items()}
    top = max(stages, key=stages.get) if stages else ""
    n = max(plan.targets, 1)
    out = {"per_structure": round(plan.cost / n, 5),
           "dominated_by": f"{top} ({stages.get(top, 0) / (plan.cost or 1):.0%} of the cost)",
           "pools": pools,
           "msa_cache": (f"{cache_hit:.0%} of targets' MSAs assumed in the cache (an assumption,"
                         " not measured): their alignment is a fetch") if cache_hit else
           "no MSA cache hits assumed (--msa-cache-hit F plans reuse)"}
    if spot:
        rate = getattr(spec, "spot_interruptions_per_hour", 0.0)
        out["spot"] = (f"${plan.cost:,.2f} at spot prices, ${plan.spot_rework:,.2f} of it work "
                       f"redone after reclaims ({rate:g} per node-hour, an assumption); "
                       f"${plan.cost_fallback:,.2f} if every spot node falls back to on-demand "
                       "(same schedule)")
    if msa_mode == "mmseqs2":
        out["mmseqs_index"] = (f"alignment Pods sized for a {index_gib:g} GiB MMseqs2 index"
                               if index_gib else "MMseqs2 index size not given "
                               "(--mmseqs-index-gib): alignment Pods at their size class")
    return out
