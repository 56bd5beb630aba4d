"""From launched units to Job submissions: buffering, size classes, shards.

The driver launches units as they become ready; :class:`Batcher` gathers them for
``window`` seconds, groups them by (run, stage) and size class (one set of Pod requests per
Job), and packs each group into shards with :func:`eksfold.sharding.plan_shards` (predicted
cost from the stage class, fixed cost per Pod from the executor's options).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ...k8s.jobs import Resources, Sizing
from ...run import Run
from ...sharding import plan_shards
from ...stages import get_stage


@dataclass
class Shard:
    """One index of a submitted batch: the targets one Pod (one warm worker) runs."""

    run: Run
    run_id: str
    stage: str
    batch: str
    shards: list          # every shard of the batch (the Job's annotation)
    index: int
    resources: Resources
    indexed: bool
    job: str = ""
    attempt: int = 0
    created: float = 0.0                # monotonic time the Job was created
    final_since: float | None = None    # first poll that saw it final without a Pod reason

    @property
    def targets(self) -> list[str]:
        return self.shards[self.index]


@dataclass
class Submission:
    """One Job's worth of work: shards of one stage, all of one size class."""

    run: Run
    stage: str
    shards: list[list[str]]
    resources: Resources


class Batcher:
    """Buffers launches; :meth:`take` returns the submissions that are due."""

    def __init__(self, sizing: Sizing, window: float = 0.0, shard_size: int | None = None,
                 max_shards: dict | None = None, fixed_cost_s: dict | None = None,
                 max_overhead: float = 0.05):
        self.sizing, self.window, self.shard_size = sizing, window, shard_size
        self.max_shards = max_shards or {}
        self.fixed_cost_s = fixed_cost_s or {}
        self.max_overhead = max_overhead
        self._buffer: list[tuple[float, Run, str, list[str]]] = []

    def add(self, run: Run, stage: str, target_ids: list[str]) -> None:
        if target_ids:
            self._buffer.append((time.monotonic(), run, stage, list(target_ids)))

    def clear(self) -> None:
        self._buffer.clear()

    def take(self, force: bool = False) -> list[Submission]:
        if not self._buffer or (not force and self.window > 0
                                and time.monotonic() - self._buffer[0][0] < self.window):
            return []
        groups: dict[tuple[str, str], tuple[Run, list[str]]] = {}
        for _, run, stage, ids in self._buffer:
            groups.setdefault((run.root, stage), (run, []))[1].extend(ids)
        self._buffer.clear()
        out = []
        for (_, stage), (run, ids) in groups.items():
            by_size: dict[str, list[str]] = {}
            for tid in dict.fromkeys(ids):
                by_size.setdefault(self.sizing.for_length(stage, run.target(tid).length).size,
                                   []).append(tid)
            for group in by_size.values():
                out.append(self._submission(run, stage, group))
        return out

    def _submission(self, run: Run, stage: str, ids: list[str]) -> Submission:
        cls = get_stage(stage)
        model = cls(run)
        lengths = {t: run.target(t).length for t in ids}
        costs = {t: model.predicted_seconds(n) for t, n in lengths.items()}
        shards = plan_shards(costs, fixed_cost_s=self.fixed_cost_s.get(stage, cls.fixed_cost_s),
                             max_overhead=self.max_overhead, shard_size=self.shard_size,
                             max_shards=self.max_shards.get(stage), lengths=lengths)
        resources = self.sizing.for_length(stage, max(lengths.values()))
        return Submission(run, stage, shards, resources)
