"""From a shard's Job/Pod state and the run store to per-unit events.

A shard's Pod runs its targets in order and commits each as it finishes, so while the Pod runs
the tracker reads the record of the next expected target only (one store read per running
shard and poll) and reports it finished as soon as it is committed; the next one is reported
running. When the shard ends, every target not yet reported gets its final event (the driver
reads the store to tell done from failed). A streaming shard's worker takes targets out of
shard order as their inputs arrive, so for it the tracker reads the progress file the worker
keeps (:meth:`eksfold.run.Run.write_shard_progress`; still one read per running shard and poll).
Nothing here calls the Kubernetes API.
"""
from __future__ import annotations

import time

from ...contracts import Event
from ...k8s.status import UnitStatus
from ..base import UnitEvent


class ShardTracker:
    def __init__(self, unschedulable_timeout: float):
        self.unschedulable_timeout = unschedulable_timeout
        self.shards: dict[tuple[str, int], object] = {}     # (job, index) -> Shard
        self._next: dict[tuple[str, int], int] = {}         # position of the next target
        self._reported: dict[tuple[str, int], str] = {}
        self._unschedulable_since: dict[tuple[str, int], float] = {}
        self._done: dict[tuple[str, int], list[str]] = {}    # streaming: reported finished

    def add(self, shard) -> None:
        key = (shard.job, shard.index)
        self.shards[key] = shard
        self._next[key] = 0

    def remove(self, key) -> None:
        for table in (self.shards, self._next, self._reported, self._unschedulable_since,
                      self._done):
            table.pop(key, None)

    def forget_job(self, job: str) -> None:
        for key in [k for k in self.shards if k[0] == job]:
            self.remove(key)

    def has_job(self, job: str) -> bool:
        return any(k[0] == job for k in self.shards)

    def job_names(self) -> set[str]:
        return {k[0] for k in self.shards}

    def clear(self) -> None:
        for key in list(self.shards):
            self.remove(key)

    def apply_unschedulable_timeout(self, key, st: UnitStatus) -> UnitStatus:
        if st.state != "unschedulable":
            self._unschedulable_since.pop(key, None)
            return st
        since = self._unschedulable_since.setdefault(key, time.monotonic())
        if time.monotonic() - since < self.unschedulable_timeout:
            return st
        return UnitStatus("failed", st.detail, None, "Unschedulable", st.pod)

    def events(self, shard, st: UnitStatus) -> list[UnitEvent]:
        key = (shard.job, shard.index)
        targets, pos = shard.targets, self._next.get(key, 0)
        out: list[UnitEvent] = []
        if st.final:
            state = Event.FINISHED if st.state == "finished" else Event.FAILED
            if key in self._done:   # a streaming shard: what its progress did not report
                reported = set(self._done[key])
                out += [UnitEvent(shard.stage, t, state, st.detail) for t in targets
                        if t not in reported]
                self._done[key] = list(targets)
                self._next[key] = len(targets)
                return out
            out += [UnitEvent(shard.stage, t, state, st.detail) for t in targets[pos:]]
            self._next[key] = len(targets)
            return out
        if st.state == "running" and getattr(shard, "streaming", False):
            return out + self._streaming_events(key, shard, st)
        if st.state == "running":
            # committed targets, in the order the worker runs them; the last one is reported
            # when the Pod ends, so "every unit final" also means "the shard's Pod is done"
            while pos < len(targets) - 1 and shard.run.record(shard.stage, targets[pos]) is not None:
                out.append(UnitEvent(shard.stage, targets[pos], Event.FINISHED))
                pos += 1
            self._next[key] = pos
            if pos < len(targets) and self._reported.get(key) != f"running:{pos}":
                out.append(UnitEvent(shard.stage, targets[pos], Event.RUNNING, st.pod))
                self._reported[key] = f"running:{pos}"
        elif st.state == "unschedulable" and self._reported.get(key) != "unschedulable":
            out += [UnitEvent(shard.stage, t, Event.WAITING, st.detail) for t in targets[pos:]]
            self._reported[key] = "unschedulable"
        return out

    def _streaming_events(self, key, shard, st: UnitStatus) -> list[UnitEvent]:
        """Events of a running streaming shard from its worker's progress file: committed
        targets finished (in the order the worker ran them), the one it runs now running. The
        last committed one is held back until the Pod ends, as for in-order shards."""
        progress = shard.run.read_shard_progress(shard.batch, shard.index) or {}
        reported = self._done.setdefault(key, [])
        out = []
        done = [t for t in progress.get("done", []) if t in shard.targets]
        for tid in done[len(reported):]:
            if len(reported) >= len(shard.targets) - 1:
                break
            out.append(UnitEvent(shard.stage, tid, Event.FINISHED))
            reported.append(tid)
        running = progress.get("running")
        if running in shard.targets and running not in reported \
                and self._reported.get(key) != f"running:{running}":
            out.append(UnitEvent(shard.stage, running, Event.RUNNING, st.pod))
            self._reported[key] = f"running:{running}"
        return out
