"""Choosing a cluster size: the smallest one that meets a deadline, the fastest one in a budget.

The knobs are the node limits of each pool (what Karpenter may start) and the executor's
inference batch window. Candidates are a grid of node counts per pool (every count up to 8,
then powers of two and the pool's limit), each simulated in full; pools that no target is
routed to stay at zero. "Smallest" is the fewest nodes at the peak, then the lowest cost.
"""
from __future__ import annotations

import itertools

from ..errors import ConfigError
from .model import Plan, fmt_duration

WINDOWS = (0.0, 60.0, 300.0)    # inference batch windows tried (seconds)


class InfeasiblePlan(ConfigError):
    """No cluster within the limits meets the goal; ``best`` is the closest plan."""

    def __init__(self, message: str, best: Plan | None = None):
        super().__init__(message)
        self.best = best


def _counts(limit: int) -> list[int]:
    small = list(range(1, min(limit, 8) + 1))
    big = [2 ** k for k in range(4, 12) if 2 ** k < limit]
    return sorted(set(small + big + [limit])) if limit else [0]


def best_window(simulate, cluster, windows=None) -> tuple[Plan, float]:
    """The batch window of ``windows`` (default :data:`WINDOWS`; ``(None,)``: streaming, no
    window) with the shortest makespan (then the lowest cost)."""
    plans = [(simulate(cluster, w), w) for w in (windows or WINDOWS)]
    return min(plans, key=lambda pw: (round(pw[0].makespan_s), pw[0].cost))


def _grid(simulate, cluster, used_pools, window):
    pools = [p for p in cluster.pools if p.name in used_pools]
    for combo in itertools.product(*[_counts(p.max_nodes) for p in pools]):
        counts = dict(zip((p.name for p in pools), combo))
        counts.update({p.name: 0 for p in cluster.pools if p.name not in used_pools})
        yield counts, simulate(cluster.scaled(**counts), window)


def _used(simulate, cluster, window) -> set[str]:
    plan = simulate(cluster, window)
    return {u.pool.split("/")[0] for u in plan.units}   # a bigger type counts as its pool


def smallest_for_deadline(simulate, cluster, deadline_s: float, windows=None,
                          objective: str = "nodes") -> Plan:
    """The fewest nodes (then the lowest cost) whose plan finishes within ``deadline_s``;
    ``objective="cost"``: the lowest cost to the cent (then the fewest nodes). A smaller
    cluster is not always cheaper: GPU nodes that wait for fewer alignment nodes bill idle."""
    if objective not in ("nodes", "cost"):
        raise ConfigError(f"objective must be 'nodes' or 'cost', not {objective!r}")
    fastest, window = best_window(simulate, cluster, windows)
    if fastest.makespan_s > deadline_s:
        raise InfeasiblePlan(
            f"no cluster within the pools' limits meets the deadline of {fmt_duration(deadline_s)}"
            f": the fastest plan (every pool at its limit: "
            f"{', '.join(f'{p.name} {p.max_nodes}' for p in cluster.pools)}) takes "
            f"{fmt_duration(fastest.makespan_s)}; its critical path is {fastest.critical_stage()}-"
            f"bound: {_longest(fastest)}", fastest)
    used = _used(simulate, cluster, window)
    best = None
    for counts, plan in _grid(simulate, cluster, used, window):
        if plan.makespan_s <= deadline_s:
            nodes = sum(plan.node_counts.values())
            key = (nodes, plan.cost) if objective == "nodes" else (round(plan.cost, 2), nodes)
            if best is None or key < best[0]:
                best = (key, counts, plan)
    counts = best[1]
    plan, window = best_window(simulate, cluster.scaled(**counts), windows)
    if plan.makespan_s > deadline_s:       # the grid's window was better for these counts
        plan = best[2]
    what = "smallest" if objective == "nodes" else "cheapest"
    plan.notes.append(f"{what} cluster meeting the deadline {fmt_duration(deadline_s)}: "
                      + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return plan


def fastest_for_budget(simulate, cluster, budget: float, windows=None) -> Plan:
    """The shortest makespan (then the lowest cost) whose plan costs at most ``budget`` USD."""
    _, window = best_window(simulate, cluster, windows)
    used = _used(simulate, cluster, window)
    best, cheapest = None, None
    for counts, plan in _grid(simulate, cluster, used, window):
        if cheapest is None or plan.cost < cheapest.cost:
            cheapest = plan
        if plan.cost <= budget:
            key = (round(plan.makespan_s), plan.cost)
            if best is None or key < best[0]:
                best = (key, counts, plan)
    if best is None:
        raise InfeasiblePlan(
            f"no cluster within the pools' limits stays within ${budget:,.2f}: the cheapest "
            f"plan costs ${cheapest.cost:,.2f} ({', '.join(f'{k} {v}' for k, v in cheapest.node_counts.items())}"
            f", {fmt_duration(cheapest.makespan_s)})", cheapest)
    plan = best[2]
    plan.notes.append(f"fastest cluster within ${budget:,.2f}: "
                      + ", ".join(f"{k} {v}" for k, v in best[1].items()))
    return plan


def _longest(plan: Plan) -> str:
    seg = max(plan.critical_path, key=lambda s: s["end"] - s["start"], default=None)
    if seg is None:
        return "no critical path"
    return f"{seg['what']} ({fmt_duration(seg['end'] - seg['start'])})"


def sweep(simulate, cluster, pool: str, counts, window: float | None = None):
    """(count, Plan) for ``pool`` at each of ``counts`` nodes (cost/time vs cluster size)."""
    out = []
    for n in counts:
        scaled = cluster.scaled(**{pool: n})
        plan = simulate(scaled, window) if window is not None else best_window(simulate, scaled)[0]
        out.append((n, plan))
    return out
