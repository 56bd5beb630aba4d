"""The critical path of a simulated schedule: the chain of waits and work that ends last.

Walking back from the unit that finishes last: the targets its worker ran before it, the
worker's start (image pull, Pod start, model load), what the worker waited for (a node to
start, or a slot another worker held), and what made it exist (the dependency unit whose
completion opened its batch). Each step is a segment ``{"what", "stage", "start", "end"}``.
"""
from __future__ import annotations


def _seg(what, stage, start, end):
    return {"what": what, "stage": stage, "start": round(start, 2), "end": round(end, 2)}


def _worker_run(pod, units, upto):
    """Segment for the worker's targets up to (and including) ``upto``."""
    mine = [units[(pod.stage, t)] for t in pod.targets]
    i = next(k for k, u in enumerate(mine) if u.target == upto.target)
    last = mine[i]
    n = i + 1
    what = (f"{pod.stage} of {n} target{'s' if n > 1 else ''} on {pod.name} "
            f"(last {last.target}, {last.length} residues: {last.end - last.start:.0f} s)")
    return _seg(what, pod.stage, pod.ready, last.end)


def cluster_critical_path(units: dict, pods: dict, nodes: dict, batches: dict,
                          after: dict | None = None, delays: dict | None = None) -> list:
    """Segments, earliest first (see module docstring). ``after``: unit -> what its start
    waited for (``("worker", previous unit)``, ``("dep", input unit)``, ``("ready", None)``);
    ``delays``: stage -> the seconds its Job was held after the start (the plan's lead)."""
    if not units:
        return []
    after = after or {}
    unit = max(units.values(), key=lambda u: (u.end, u.stage, u.target))
    out = []
    for _ in range(100_000):       # bounded: every step moves to an earlier time
        pod = pods[unit.worker]
        run = [unit]                # the worker's targets back to back up to this one
        while after.get((run[-1].stage, run[-1].target), ("",))[0] == "worker":
            run.append(units[after[(run[-1].stage, run[-1].target)][1]])
        first, n = run[-1], len(run)
        out.append(_seg(f"{pod.stage} of {n} target{'s' if n > 1 else ''} on {pod.name} "
                        f"(last {unit.target}, {unit.length} residues: "
                        f"{unit.end - unit.start:.0f} s)", pod.stage, first.start, unit.end))
        how, dep = after.get((first.stage, first.target), ("ready", None))
        if how == "dep":            # the worker was idle until this input was committed
            unit = units[dep]
            continue
        if not after:               # the classic batch form: the shard ran from its start
            out.pop()
            out.append(_worker_run(pod, units, unit))
        out.append(_seg(f"{pod.name}: image pull (first Pod on its node), Pod start, "
                        f"{pod.stage} worker load", pod.stage, pod.start, pod.ready))
        if pod.waited_for.startswith("slot after "):
            other = pods[pod.waited_for.split(" ", 2)[2]]
            out.append(_seg(f"{pod.name} queued for a slot on {pod.node}", pod.stage,
                            pod.submitted, pod.start))
            nxt = units[(other.stage, other.targets[-1])] if not after else \
                max((u for u in units.values() if u.worker == other.name), key=lambda u: u.end)
            if nxt.end > pod.submitted + 1e-6:   # the wait, not the submission, was binding
                unit = nxt
                continue
        elif pod.waited_for.startswith("node "):
            node = nodes[pod.waited_for.split(" ", 1)[1]]
            out.append(_seg(f"node start ({node.instance}, {node.name})", pod.stage,
                            max(node.launched, pod.submitted), node.ready))
        trigger = batches.get(pod.name)
        if not trigger:
            if (delays or {}).get(pod.stage):
                out.append(_seg(f"{pod.stage} Job held {delays[pod.stage]:.0f} s (the plan's "
                                f"lead: nodes ready as the first input is)", pod.stage, 0.0,
                                pod.submitted))
            break
        dep = units[tuple(trigger)]
        out.append(_seg(f"batch window: {pod.stage} Job submitted after {dep.stage} of "
                        f"{dep.target}", pod.stage, dep.end, pod.submitted))
        unit = dep
    out = [s for s in reversed(out) if s["end"] - s["start"] > 1e-6]
    return out


def local_critical_path(units: list, workers: dict) -> list:
    """The same for the local executor: a unit waits for its worker or its dependency."""
    if not units:
        return []
    by_worker: dict[str, list] = {}
    for u in sorted(units, key=lambda u: u.start):
        by_worker.setdefault(u.worker, []).append(u)
    key = {(u.stage, u.target): u for u in units}
    unit = max(units, key=lambda u: (u.end, u.stage, u.target))
    out, run = [], [unit]
    from ..stages import depends_on

    while True:
        mine = by_worker[unit.worker]
        i = mine.index(unit)
        prev = mine[i - 1] if i else None
        dep_key = (depends_on(unit.stage), unit.target)
        dep = key.get(dep_key)
        if prev is not None and (dep is None or prev.end >= dep.end - 1e-6):
            run.append(prev)
            unit = prev
            continue
        first = run[-1]
        n = len(run)
        out.append(_seg(f"{unit.stage} of {n} target{'s' if n > 1 else ''} on {unit.worker} "
                        f"({first.target} .. {run[0].target})", unit.stage, first.start, run[0].end))
        w = workers[unit.worker]
        if prev is None and w.ready > (dep.end if dep else 0.0) + 1e-6:
            out.append(_seg(f"{unit.worker}: worker start and {unit.stage} load", unit.stage,
                            w.start, w.ready))
        if dep is None:
            if w.start > 1e-6:
                out.append(_seg("run start (run root, manifest, driver)", unit.stage, 0.0, w.start))
            break
        unit, run = dep, [dep]
    return [s for s in reversed(out) if s["end"] - s["start"] > 1e-6]
