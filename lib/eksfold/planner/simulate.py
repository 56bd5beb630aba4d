"""Discrete-event simulation of a run on a Kubernetes cluster, as the Kubernetes executor runs it.

What is simulated is what the executor, the driver and the worker do, with their own code:

- streaming (the default, ``stream=True``): every stage's Job is submitted at the start, a
  dependent stage ``stream_delay[stage]`` seconds later (the plan's GPU lead), grouped by size
  class with :class:`eksfold.k8s.jobs.Sizing` and packed into shards, longest first, with
  :func:`eksfold.sharding.plan_shards` (the same call as ``executors/kubernetes/batching.py``);
  a worker takes, each time it is free, :func:`eksfold.sharding.next_ready`: the first target
  of its shard whose dependency is committed (the worker's own rule, :mod:`eksfold.follow`);
- the classic batch window (``stream=False``): the driver launches each inference once its
  alignment is committed; the executor buffers launches for ``batch_window`` seconds (polling
  every ``poll_s``) and submits them as shards;
- each shard is one Pod; Pods queue FIFO (index order: the longest target's shard first) on
  the pool of their size class (GPU class routing), a pool starts nodes (``node_start_s``)
  for pending Pods up to ``max_nodes`` and releases a node ``consolidate_after_s`` after its
  last Pod (Karpenter's WhenEmpty); a node pulls the image once; a Pod pays its start and the
  worker's load, then runs its targets back to back, waiting where an input is not in yet.

Cost: every node's billed time at the pool's price (spot where allowed and asked for), split
between stages by Pod time, plus the always-on parts of the cluster for the makespan; beside
it the same schedule with every spot node fallen back to on-demand. A target whose MSA is in
the cache (``cache_hits``) pays only the cache fetch in the alignment stage.
"""
from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field

from ..sharding import WAIT, longest_group_first, next_ready, plan_shards
from ..stages import depends_on
from .critical import cluster_critical_path
from .routing import peak_nodes, route
from .model import NodeSlot, Plan, UnitSlot, WorkerSlot

CACHE_FETCH_S = 2.0    # stated: read a cached MSA (a few MB) from FSx/S3 instead of searching


@dataclass
class _Node:
    slot: NodeSlot
    free: list                      # cpu, memory GiB, gpus left
    image_ready: float | None = None
    pods: set = field(default_factory=set)
    idle_since: float | None = None
    last_freed_by: str = ""
    busy: dict = field(default_factory=dict)   # stage -> Pod seconds
    on_demand: float = 0.0                     # the pool's on-demand $/h (spot fallback)


class ClusterSim:
    def __init__(self, targets: dict, cluster, costs, stages, spot, batch_window, poll_s,
                 max_shards, sizing, stream=False, stream_delay=None, cache_hits=(),
                 cache_fetch_s=CACHE_FETCH_S):
        self.targets, self.cluster, self.costs, self.stages = targets, cluster, costs, stages
        self.spot, self.window, self.poll = spot, batch_window, poll_s
        self.stream, self.stream_delay = stream, dict(stream_delay or {})
        self.cache_hits, self.cache_fetch_s = set(cache_hits), cache_fetch_s
        self.remaining: dict[str, list] = {}       # pod -> its targets not yet started
        self.owner: dict[tuple, str] = {}          # (stage, target) -> the Pod that runs it
        self.idle: set = set()                     # Pods waiting for an input
        self.after: dict[tuple, tuple] = {}        # unit -> what its start waited for
        self.sizing, self.max_shards = sizing, max_shards
        self.events: list = []
        self.seq = 0
        self.nodes: list[_Node] = []
        self.pending = {p.name: deque() for p in cluster.pools}
        self.pools = {p.name: p for p in cluster.pools}
        self.buffer: dict[str, list] = {s: [] for s in stages}
        self.trigger: dict[str, str] = {}          # stage -> unit key that opened its buffer
        self.units: dict[tuple, UnitSlot] = {}
        self._node_of, self._node_pool, self._last = {}, {}, {}
        self.pods: dict[str, WorkerSlot] = {}
        self.pod_req: dict[str, tuple] = {}
        self.pool_reqs: dict[str, set] = {}        # the distinct Pod requests per pool
        self.batches: dict[str, str] = {}          # pod -> the unit that triggered its batch
        self.dependents = {s: [d for d in stages if depends_on(d) == s] for s in stages}
        self.routes = {}
        for s in stages:
            for t, n in targets.items():
                pool, res = self.routes[(s, t)] = route(s, n, cluster, sizing, t,
                                                        getattr(costs, "memory_model", None))
                if pool.name not in self.pools:     # a bigger instance type of a pool
                    self.pools[pool.name] = pool
                    self.pending[pool.name] = deque()

    def push(self, t, kind, data):
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, data))

    def run(self) -> Plan:
        for pool in self.cluster.pools:
            for _ in range(pool.min_nodes):
                self._launch(pool, -pool.consolidate_after_s, warm=True)
        for stage in self.stages:
            if self.stream or depends_on(stage) not in self.stages:
                self.buffer[stage] = list(self.targets)
                self.push(self.stream_delay.get(stage, 0.0) if self.stream else 0.0,
                          "batch", stage)
        while self.events:
            t, _, kind, data = heapq.heappop(self.events)
            getattr(self, "_on_" + kind)(t, data)
        return self._plan()

    # -- events ---------------------------------------------------------------------
    def _on_batch(self, t, stage):
        ids, self.buffer[stage] = self.buffer[stage], []
        trigger = self.trigger.pop(stage, "")
        groups: dict[tuple, list] = {}
        for tid in ids:
            pool, res = self.routes[(stage, tid)]
            groups.setdefault((pool.name, res.size), []).append(tid)
        fixed = self.costs.fixed.pod_start_s + self.costs.fixed.worker(stage)
        # the group holding the longest target first, as the executor submits them
        for (pool_name, size), group in longest_group_first(groups, self.targets):
            pool, res = self.routes[(stage, group[0])]
            cost = {tid: self.unit_seconds(stage, tid, pool) for tid in group}
            # never more Pods than the pool can run at once (the plan's max_shards option)
            limit = self.max_shards.get(stage) or pool.max_nodes * pool.slots(
                *self.pod_req_of(res))
            shards = plan_shards(cost, fixed_cost_s=fixed, max_shards=max(1, limit),
                                 lengths={tid: self.targets[tid] for tid in group})
            for shard in shards:
                name = f"{stage}-{len(self.pods) + 1:04d}-{size}"
                self.pods[name] = WorkerSlot(name, stage, pool_name, "", t, math.nan, math.nan,
                                             math.nan, shard)
                self.remaining[name] = list(shard)
                for tid in shard:
                    self.owner[(stage, tid)] = name
                self.pod_req[name] = self.pod_req_of(res)
                self.pool_reqs.setdefault(pool_name, set()).add(self.pod_req[name])
                self.batches[name] = trigger
                self.pending[pool_name].append(name)
            self._schedule(pool_name, t)

    def unit_seconds(self, stage, tid, pool) -> float:
        if stage == "align" and tid in self.cache_hits:
            return self.cache_fetch_s + self.costs.fixed.per_unit(stage)
        return self.costs.seconds(stage, self.targets[tid], pool)

    @staticmethod
    def pod_req_of(res) -> tuple:
        return float(res.cpu), float(res.memory.rstrip("Gi")), res.gpu

    def _on_node_ready(self, t, node):
        for name in sorted(node.pods, key=lambda n: self.pods[n].submitted):
            if math.isnan(self.pods[name].start):
                self._start(name, node, t)

    def _on_pod_end(self, t, data):
        name, node = data
        node.busy[self.pods[name].stage] = node.busy.get(self.pods[name].stage, 0.0) + \
            t - self.pods[name].start
        req = self.pod_req[name]
        node.free = [a + b for a, b in zip(node.free, req)]
        node.pods.discard(name)
        node.last_freed_by = name
        self._schedule(node.slot.pool, t)
        if not node.pods:
            node.idle_since = t
            self.push(t + self.pools[node.slot.pool].consolidate_after_s, "release", node)

    def _on_release(self, t, node):
        pool = self.pools[node.slot.pool]
        if (node.idle_since is not None and not node.pods and node.slot.released is None
                and t >= node.idle_since + pool.consolidate_after_s - 1e-9
                and sum(1 for n in self._active(pool.name)) > pool.min_nodes):
            node.slot.released = t
            family = node.slot.pool.split("/")[0]
            for name in self.pools:    # the freed limit may let another type of it start
                if name.split("/")[0] == family and name != node.slot.pool and self.pending[name]:
                    self._schedule(name, t)

    def _on_unit_end(self, t, key):
        stage, tid = key
        for dep in self.dependents[stage]:
            pod = self.owner.get((dep, tid))
            if pod in self.idle:          # its worker was waiting for this input
                self.idle.discard(pod)
                self._take(t, pod)
            if self.stream:
                continue
            if not self.buffer[dep]:
                self.trigger[dep] = key
                due = t + self.window
                if self.poll:    # the executor submits on its next poll
                    due = math.ceil(due / self.poll - 1e-9) * self.poll
                self.push(due, "batch", dep)
            self.buffer[dep].append(tid)

    # -- scheduling -----------------------------------------------------------------
    def _active(self, pool_name):
        return [n for n in self.nodes if n.slot.pool == pool_name and n.slot.released is None]

    def _family_size(self, pool_name) -> int:
        """Nodes up in a NodePool, its bigger instance types included (one limit for all)."""
        family = pool_name.split("/")[0]
        return sum(1 for n in self.nodes
                   if n.slot.released is None and n.slot.pool.split("/")[0] == family)

    def _launch(self, pool, t, warm=False) -> _Node:
        name = f"{pool.name}-{sum(1 for n in self.nodes if n.slot.pool == pool.name) + 1}"
        ready = t if warm else t + self.costs.fixed.node_start_s
        node = _Node(NodeSlot(name, pool.name, pool.instance, t, ready, None,
                              pool.hourly(self.spot)),
                     [pool.alloc_cpu, pool.alloc_mem_gib, pool.gpu_count],
                     image_ready=t if warm else None, on_demand=pool.price)
        self.nodes.append(node)
        if not warm:
            self.push(ready, "node_ready", node)
        return node

    def _schedule(self, pool_name, t):
        pool, queue = self.pools[pool_name], self.pending[pool_name]
        still = []
        nodes = sorted(self._active(pool_name), key=lambda n: n.slot.ready)
        failed: list[tuple] = []     # requests that found no room: bigger ones need not look
        while queue:
            name = queue.popleft()
            req = self.pod_req[name]
            if any(all(r >= f for r, f in zip(req, fr)) for fr in failed):
                still.append(name)
                continue
            node = next((n for n in nodes if all(f >= r - 1e-9 for f, r in zip(n.free, req))), None)
            if node is None and self._family_size(pool_name) < pool.max_nodes:
                node = self._launch(pool, t)
                nodes.append(node)
            if node is None:
                still.append(name)
                failed.append(req)
                if all(any(all(r >= f for r, f in zip(q, fr)) for fr in failed)
                       for q in self.pool_reqs[pool_name]):
                    break       # no Pod of any kind in this queue fits: stop looking (O(1))
                continue
            node.free = [f - r for f, r in zip(node.free, req)]
            node.pods.add(name)
            node.idle_since = None
            pod = self.pods[name]
            pod.node = node.slot.name
            if node.slot.ready <= t:
                self._start(name, node, t)
            elif node.slot.launched >= pod.submitted:
                pod.waited_for = f"node {node.slot.name}"
        queue.extendleft(reversed(still))   # the skipped ones keep their place, in order

    def _start(self, name, node, t):
        pod, pool = self.pods[name], self.pools[node.slot.pool]
        if not pod.waited_for and t > pod.submitted + 1e-9:
            pod.waited_for = f"slot after {node.last_freed_by}" if node.last_freed_by else \
                f"node {node.slot.name}"
        if node.image_ready is None:
            node.image_ready = t + self.costs.fixed.image_pull_s
        pod.start = t
        self._node_of[name], self._node_pool[name], self._last[name] = node, node.slot.pool, None
        clock = max(t, node.image_ready) + self.costs.fixed.pod_start_s + \
            self.costs.fixed.worker(pod.stage)
        pod.ready = clock
        self.push(clock, "worker_free", name)

    def _on_worker_free(self, t, name):
        self._take(t, name)

    def _take(self, t, name):
        """The worker's next target: :func:`next_ready` on its shard, as the worker does."""
        pod, left = self.pods[name], self.remaining[name]
        if not left:
            pod.end = t
            self.push(t, "pod_end", (name, self._node_of[name]))
            return
        dep = depends_on(pod.stage)
        state = {tid: "done" if dep not in self.stages or (
            (dep, tid) in self.units and self.units[(dep, tid)].end <= t + 1e-9) else WAIT
            for tid in left}
        tid = next_ready(left, state)
        if tid is None:
            self.idle.add(name)
            return
        left.remove(tid)
        pool = self.pools[self._node_pool[name]]
        prev = self._last[name]
        if prev is not None and self.units[prev].end >= t - 1e-9:
            self.after[(pod.stage, tid)] = ("worker", prev)
        elif prev is None and t <= pod.ready + 1e-9:
            self.after[(pod.stage, tid)] = ("ready", None)
        else:                          # idle until this input was committed
            self.after[(pod.stage, tid)] = ("dep", (dep, tid))
        dur = self.unit_seconds(pod.stage, tid, pool)
        self.units[(pod.stage, tid)] = UnitSlot(pod.stage, tid, self.targets[tid], t, t + dur,
                                               pool.name, name)
        self._last[name] = (pod.stage, tid)
        self.push(t + dur, "unit_end", (pod.stage, tid))
        self.push(t + dur, "worker_free", name)

    # -- result ---------------------------------------------------------------------
    def _plan(self) -> Plan:
        stuck = [name for q in self.pending.values() for name in q]
        if stuck:
            raise RuntimeError(f"simulation ended with {len(stuck)} Pods never scheduled "
                               f"(first: {stuck[0]} on {self.pods[stuck[0]].pool})")
        makespan = max(u.end for u in self.units.values())
        cost: dict[str, float] = {s: 0.0 for s in self.stages}
        for node in self.nodes:
            if node.slot.released is None:
                node.slot.released = (node.idle_since or makespan) + \
                    self.pools[node.slot.pool].consolidate_after_s
            total = sum(node.busy.values()) or 1.0
            for stage, busy in node.busy.items():
                cost[stage] += node.slot.cost * busy / total
        rework = self._spot_rework()
        for stage, usd in rework.items():
            cost[stage] += usd
        cost = {k: round(v, 4) for k, v in cost.items()}
        fallback = sum((n.slot.released - n.slot.launched) / 3600 * n.on_demand
                       for n in self.nodes)
        if self.cluster.always_on_per_hour:
            cost["cluster (always on)"] = round(self.cluster.always_on_per_hour * makespan / 3600, 4)
        spans = {s: (min(u.start for u in self.units.values() if u.stage == s),
                     max(u.end for u in self.units.values() if u.stage == s)) for s in self.stages}
        counts = {name: peak_nodes([n.slot for n in self.nodes if n.slot.pool == name])
                  for name in self.pools}
        path = cluster_critical_path(self.units, self.pods, {n.slot.name: n.slot for n in self.nodes},
                                     self.batches, self.after, self.stream_delay)
        always = cost.get("cluster (always on)", 0.0)
        plan = Plan(len(self.targets), round(makespan, 2), cost, spans, path,
                    units=list(self.units.values()), workers=list(self.pods.values()),
                    nodes=[n.slot for n in self.nodes], cluster=self.cluster.name,
                    node_counts=counts, sources=list(self.costs.sources))
        plan.cost_fallback = round(fallback + always, 4)
        plan.spot_rework = round(sum(rework.values()), 4)
        return plan

    def _spot_rework(self) -> dict:
        """stage -> expected USD of work redone after spot reclaims: a unit of T hours on a
        spot-priced node loses rate * T^2 / 2 node-hours on average (the cluster's stated
        reclaim rate; the schedule itself is not stretched)."""
        rate = getattr(self.cluster, "spot_interruptions_per_hour", 0.0)
        out: dict[str, float] = {}
        if not (self.spot and rate):
            return out
        nodes = {n.slot.name: n for n in self.nodes}
        for u in self.units.values():
            node = nodes.get(getattr(self.pods.get(u.worker), "node", None))
            if node is None or node.slot.hourly >= node.on_demand:   # on-demand: no reclaim
                continue
            hours = (u.end - u.start) / 3600
            out[u.stage] = out.get(u.stage, 0.0) + rate * hours ** 2 / 2 * node.slot.hourly
        return out


def simulate_cluster(targets: dict, cluster, costs, *, stages=("align", "infer"), spot=False,
                     batch_window: float = 0.0, poll_s: float = 2.0, max_shards=None,
                     sizing=None, stream: bool = False, stream_delay=None,
                     cache_hits=()) -> Plan:
    """Simulate ``targets`` (id -> length) on ``cluster``; see the module docstring."""
    from ..k8s.jobs import Sizing

    sim = ClusterSim(dict(targets), cluster, costs, tuple(stages), spot, batch_window, poll_s,
                     max_shards or {}, sizing or Sizing(), stream, stream_delay, cache_hits)
    return sim.run()
