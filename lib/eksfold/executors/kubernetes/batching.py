"""From launched units to Job submissions: streaming or buffering, size classes, shards.

The driver launches units as they become ready, or, to a streaming executor, as soon as their
dependency is in flight. :class:`Batcher` groups them by (run, stage) and size class (one set
of Pod requests per Job) and packs each group into shards with
:func:`eksfold.sharding.plan_shards`, longest first, with predicted seconds on the device the
shard runs on (:func:`eksfold.planner.devicecost.unit_seconds`: a GPU's cost model for GPU
shards, the measured alignment figures for alignment Pods; the stage classes' CPU formulas
only where nothing else is known). MMseqs2 alignment Pods ask for their database index's
memory (:mod:`eksfold.alignment.podmemory`).

When a group is submitted: ``window`` (seconds, or a dict per stage) after its first launch
(0: at once). Streaming, the inference Job is thus submitted with the alignment Job (GPU
capacity requested as soon as inference work is foreseeable) or ``window["infer"]`` later (the
plan's lead: GPU nodes ready when the first alignment is predicted to finish), and its workers
take targets as their alignments are committed (:mod:`eksfold.follow`). The planner's
simulation (:mod:`eksfold.planner.simulate`) calls the same functions.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ...alignment.podmemory import run_index_gib, sized_for_index
from ...k8s.jobs import Resources, Sizing
from ...memory.kills import oom_counts
from ...run import Run
from ...sharding import longest_group_first, plan_shards
from ...stages import get_stage

log = logging.getLogger(__name__)


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
    streaming: bool = False             # its worker takes targets as their inputs arrive

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


def shard_seconds(stage: str, lengths: dict[str, int], resources: Resources,
                  msa_mode: str = "jackhmmer", sensitivity: float | None = None) -> dict:
    """Predicted seconds per target on the device of ``resources`` (the sharding cost)."""
    from ...planner.devicecost import unit_seconds

    gpu = bool(resources.gpu)
    return {t: unit_seconds(stage, n, gpu=gpu, msa_mode=msa_mode, sensitivity=sensitivity)[0]
            for t, n in lengths.items()}


class Batcher:
    """Buffers launches; :meth:`take` returns the submissions that are due."""

    def __init__(self, sizing: Sizing, window: float | dict = 0.0, shard_size: int | None = None,
                 max_shards: dict | None = None, fixed_cost_s: dict | None = None,
                 max_overhead: float = 0.05):
        self.sizing, self.window, self.shard_size = sizing, window, shard_size
        self.max_shards = max_shards or {}
        self.fixed_cost_s = fixed_cost_s or {}
        self.max_overhead = max_overhead
        # (stage pool, Resources) -> Pods the cluster can run at once, or None (capacity.py)
        self.slots = None
        self._buffer: list[tuple[float, Run, str, list[str]]] = []

    def window_for(self, stage: str) -> float:
        if isinstance(self.window, dict):
            return float(self.window.get(stage, 0.0) or 0.0)
        return float(self.window or 0.0)

    def add(self, run: Run, stage: str, target_ids: list[str]) -> None:
        if target_ids:
            self._buffer.append((time.monotonic(), run, stage, list(target_ids)))

    def clear(self) -> None:
        self._buffer.clear()

    def take(self, force: bool = False) -> list[Submission]:
        now = time.monotonic()
        first: dict[str, float] = {}
        for added, _, stage, _ in self._buffer:
            first.setdefault(stage, added)
        due = {s for s, t0 in first.items() if force or now - t0 >= self.window_for(s)}
        if not due:
            return []
        groups: dict[tuple[str, str], tuple[Run, list[str]]] = {}
        keep = []
        for entry in self._buffer:
            _, run, stage, ids = entry
            if stage in due:
                groups.setdefault((run.root, stage), (run, []))[1].extend(ids)
            else:
                keep.append(entry)
        self._buffer[:] = keep
        out = []
        for (_, stage), (run, ids) in groups.items():
            by_size: dict[Resources, list[str]] = {}
            ooms = oom_counts(run.store, stage)
            for tid in dict.fromkeys(ids):
                by_size.setdefault(self.unit_resources(run, stage, tid, ooms), []).append(tid)
            lengths = {t: run.target(t).length for t in ids}
            for res, group in longest_group_first(by_size, lengths):
                out.append(self._submission(run, stage, group, res))
        return out

    def resources(self, run: Run, stage: str, length: int, step_up: int = 0) -> Resources:
        """The size class's requests; an MMseqs2 alignment Pod's memory from its index."""
        res = self.sizing.for_length(stage, length, step_up)
        if stage == "align":
            res = sized_for_index(res, run_index_gib(run.config.align))
        return res

    def unit_resources(self, run: Run, stage: str, target: str,
                       ooms: dict[str, int] | None = None) -> Resources:
        """The unit's requests: one size class up per OOMKilled Pod it has had (the kills the
        death watch recorded, :mod:`eksfold.memory.kills`), so that a retry gets more memory.
        ``ooms``: :func:`~eksfold.memory.kills.oom_counts` of the stage, when already read."""
        if ooms is None:
            ooms = oom_counts(run.store, stage)
        return self.resources(run, stage, run.target(target).length, ooms.get(target, 0))

    def _submission(self, run: Run, stage: str, ids: list[str],
                    resources: Resources) -> Submission:
        cls = get_stage(stage)
        lengths = {t: run.target(t).length for t in ids}
        align = run.config.align
        costs = shard_seconds(stage, lengths, resources, align.msa_mode,
                              align.mmseqs_sensitivity if align.msa_mode == "mmseqs2" else None)
        limit = self.max_shards.get(stage)
        room = self.slots(cls.pool, resources) if self.slots is not None else None
        if room is not None:   # more shards than Pods that can run together buy no speed
            limit = max(1, min(limit, room) if limit else room)
        shards = plan_shards(costs, fixed_cost_s=self.fixed_cost_s.get(stage, cls.fixed_cost_s),
                             max_overhead=self.max_overhead, shard_size=self.shard_size,
                             max_shards=limit, lengths=lengths)
        return Submission(run, stage, shards, resources)
