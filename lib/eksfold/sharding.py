"""Packing targets into shards, and the order a worker takes them in.

A shard pays a fixed cost once (Pod start, image pull, interpreter, model build and weights)
and then runs its targets back to back. :func:`plan_shards` chooses the number of shards so
that the fixed cost stays a small fraction of each shard's predicted time, never more shards
than may run at once, then packs targets longest-processing-time first (each target to the
least-loaded shard: within 4/3 of the optimal makespan) and orders each shard longest first,
so the target that bounds the makespan starts first and the short ones fill the end. Shard 0
holds the longest target (Pods are created in index order, so it is also placed first), and
a stage's Jobs (one per size class) are submitted longest group first
(:func:`longest_group_first`).

A streaming worker (one whose targets' inputs are still being computed) takes, each time it
is free, the first target of its shard whose dependency is finished (:func:`next_ready`):
longest ready first. The executors, the worker and the planner use these functions.

>>> plan_shards({"a": 10, "b": 9, "c": 2, "d": 1}, fixed_cost_s=0.5, max_shards=2,
...             lengths={"a": 400, "b": 380, "c": 90, "d": 50})
[['a', 'd'], ['b', 'c']]
>>> next_ready(["a", "b", "c"], {"a": "wait", "b": "done", "c": "done"})
'b'
"""
from __future__ import annotations

import heapq
import math

WAIT = "wait"       # the dependency is still running: not ready yet


def shard_count(total_s: float, n_targets: int, fixed_cost_s: float,
                max_overhead: float = 0.05, max_shards: int | None = None) -> int:
    """How many shards: as many as run at once, as long as each keeps its fixed cost at most
    ``max_overhead`` of its predicted work."""
    if n_targets == 0:
        return 0
    by_overhead = (math.floor(total_s * max_overhead / fixed_cost_s)
                   if fixed_cost_s > 0 else n_targets)
    return max(1, min(n_targets, by_overhead, max_shards or n_targets))


def longest_first(ids, order: dict) -> list[str]:
    """``ids`` by decreasing ``order`` (length or predicted seconds), ties by id."""
    return sorted(ids, key=lambda t: (-order[t], t))


def plan_shards(costs: dict[str, float], *, fixed_cost_s: float, max_overhead: float = 0.05,
                max_shards: int | None = None, shard_size: int | None = None,
                lengths: dict[str, int] | None = None) -> list[list[str]]:
    """Shards of target ids from predicted per-target seconds ``costs``.

    ``shard_size`` fixes the number of targets per shard instead (tests, small clusters).
    ``lengths`` orders each shard, longest first (default: by cost).
    """
    if not costs:
        return []
    if shard_size:
        k = math.ceil(len(costs) / shard_size)
    else:
        k = shard_count(sum(costs.values()), len(costs), fixed_cost_s, max_overhead, max_shards)
    bins: list[tuple[float, int]] = [(0.0, i) for i in range(k)]
    shards: list[list[str]] = [[] for _ in range(k)]
    for tid in longest_first(costs, costs):
        load, i = heapq.heappop(bins)
        if shard_size:   # fixed sizes: the least-loaded shard that still has room
            full = []
            while len(shards[i]) >= shard_size:
                full.append((load, i))
                load, i = heapq.heappop(bins)
            for item in full:
                heapq.heappush(bins, item)
        shards[i].append(tid)
        heapq.heappush(bins, (load + costs[tid], i))
    order = lengths or costs
    return [longest_first(s, order) for s in shards if s]


def longest_group_first(groups: dict, lengths: dict) -> list[tuple]:
    """``groups`` (key -> target ids) as items, the group with the longest target first: a
    stage's Jobs are submitted in this order, so the long targets' Pods are placed first."""
    return sorted(groups.items(), key=lambda kv: -max(lengths[t] for t in kv[1]))


def next_ready(remaining: list[str], state: dict[str, str]) -> str | None:
    """The first of ``remaining`` (a shard in its order) whose dependency is not :data:`WAIT`
    (finished, or failed: the worker then skips it); None while every one still waits."""
    return next((t for t in remaining if state.get(t) != WAIT), None)


def makespan(shards: list[list[str]], costs: dict[str, float], fixed_cost_s: float) -> float:
    """Predicted wall time when every shard runs at once."""
    return max((fixed_cost_s + sum(costs[t] for t in s) for s in shards), default=0.0)
