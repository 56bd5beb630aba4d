"""Simulation of a run by the local executor: N warm workers per stage, fed one target at a time.

The semantics are :mod:`eksfold.executors.local` and the driver's: a stage has up to
``workers[stage]`` worker processes, started when a unit is first assigned to them (each pays
its ``worker_open_s`` once: interpreter, imports, tools or model); ready units are assigned in
the order they became ready (ties: longest first, as the driver orders them), so alignment of later targets overlaps
inference of earlier ones. The whole run starts after ``startup_s`` (run root, manifest).
A warm worker's next unit starts ``unit_overhead_s`` after its previous one or after its input
is committed, whichever is later (the driver's poll and the round trip to the worker); a new
worker's first unit starts ``worker_open_s`` after its input (spawn, imports, model load).
"""
from __future__ import annotations

import heapq

from ..sharding import longest_first
from ..stages import depends_on
from .critical import local_critical_path
from .model import Plan, UnitSlot, WorkerSlot


def simulate_local(targets: dict, cluster, costs, *, stages=("align", "infer"),
                   memory: tuple | None = None) -> Plan:
    """Simulate ``targets`` (id -> length) on the local machine ``cluster`` (local_cluster()).

    ``memory``: (capacity MB, CPU cost model): an inference unit starts only when its predicted
    peak fits beside the running ones, the local executor's rule
    (:func:`eksfold.memory.admission.hold_until_fits`)."""
    from ..memory.admission import hold_until_fits

    held: list = []     # (start, end, predicted MB) of scheduled inference units
    stages = tuple(stages)
    # the driver hands ready units over longest first (eksfold.sharding.longest_first)
    order = {tid: i for i, tid in enumerate(longest_first(targets, targets))}
    t0 = costs.fixed.startup_s
    ready: dict[str, list] = {s: [] for s in stages}     # heaps of (ready time, order, target)
    for s in stages:
        if depends_on(s) not in stages:
            for tid in targets:
                heapq.heappush(ready[s], (t0, order[tid], tid))
    free: dict[str, list] = {s: [] for s in stages}      # heaps of (free time, worker name)
    workers: dict[str, WorkerSlot] = {}
    units: list[UnitSlot] = []
    done_at: dict[tuple, float] = {}
    pending = {s: len(targets) for s in stages}
    dependents = {s: [d for d in stages if depends_on(d) == s] for s in stages}

    # Event-free formulation: repeatedly pick, across stages, the assignment that can start
    # earliest; deterministic and exact for FIFO dispatch with independent worker pools.
    while any(pending.values()):
        best = None
        for s in stages:
            if not ready[s]:
                continue
            t_ready, _, tid = ready[s][0]
            n = len([w for w in workers.values() if w.stage == s])
            if free[s] and (n >= cluster.workers.get(s, 1) or free[s][0][0] <= t_ready):
                start = max(free[s][0][0], t_ready) + costs.fixed.per_unit(s)
                name = free[s][0][1]
            elif n < cluster.workers.get(s, 1):
                start, name = t_ready + costs.fixed.worker(s), None
            else:
                continue
            if memory is not None and s == "infer":
                start, _ = hold_until_fits(start, targets[tid], memory[1], held, memory[0])
            if best is None or (start, stages.index(s)) < (best[0], stages.index(best[1])):
                best = (start, s, name)
        if best is None:
            raise RuntimeError("local simulation stalled (a dependency stage is missing)")
        start, s, name = best
        t_ready, _, tid = heapq.heappop(ready[s])
        if name is None:
            name = f"{s}-worker-{sum(1 for w in workers.values() if w.stage == s) + 1}"
            workers[name] = WorkerSlot(name, s, "local", "local", t_ready, t_ready, start,
                                       start, [])
        else:
            heapq.heappop(free[s])
        end = start + costs.work(s, targets[tid])
        if memory is not None and s == "infer":
            _, choice = hold_until_fits(start, targets[tid], memory[1], held, memory[0])
            held.append((start, end, choice.predicted_mb))
        units.append(UnitSlot(s, tid, targets[tid], start, end, "local", name))
        workers[name].targets.append(tid)
        workers[name].end = end
        heapq.heappush(free[s], (end, name))
        done_at[(s, tid)] = end
        pending[s] -= 1
        for d in dependents[s]:
            heapq.heappush(ready[d], (end, order[tid], tid))

    makespan = max(u.end for u in units)
    spans = {s: (min(u.start for u in units if u.stage == s),
                 max(u.end for u in units if u.stage == s)) for s in stages}
    return Plan(len(targets), round(makespan, 2), {s: 0.0 for s in stages}, spans,
                local_critical_path(units, workers), units=units,
                workers=list(workers.values()), cluster="local", node_counts={},
                sources=list(costs.sources),
                notes=[f"local executor: {cluster.workers} workers per stage"])
