"""The driver loop every executor shares: plan, respect dependencies, launch, poll, record.

:func:`execute` plans the units (skipping done ones), launches ready units up to the executor's
capacity per stage, longest first (so alignment of later targets overlaps inference of earlier
ones); an executor that ``streams`` also gets the units whose dependency is in flight (its
workers wait for their inputs: :mod:`eksfold.follow`). It polls
for events, takes the run store's unit records as the authority on success, reports progress,
and stops everything cleanly on Ctrl-C.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..contracts import Board, Event
from ..run import Run
from ..sharding import longest_first
from ..stages import depends_on

if TYPE_CHECKING:   # the base class's admin verbs call this loop: no runtime import back
    from .base import Executor, UnitEvent


def plan(run: Run, stages=None, target_ids=None) -> dict[tuple[str, str], str]:
    """Current status of every unit: "done", "failed" or "missing"."""
    ids = target_ids or [t.id for t in run.targets]
    stages = run.stages if stages is None else stages
    return {(stage, tid): run.unit_status(stage, tid) for tid in ids for stage in stages}


def execute(run: Run, executor: Executor, stages=None, reporter=None, target_ids=None,
            poll_interval: float = 0.5, skip: dict | None = None) -> dict[tuple[str, str], str]:
    """Run every unit of ``stages`` that is not done; returns the final status of each unit.

    Final statuses: "done", "failed" (with the reason in the unit's metrics.json or in
    ``details``), or "blocked" (its dependency failed).
    """
    from ..progress import make_reporter

    reporter = reporter or make_reporter("auto")
    stages = tuple(run.stages if stages is None else stages)   # (): nothing to run
    status = plan(run, stages, target_ids)
    skip = skip or {}
    pending = {stage: [tid for (s, tid), st in status.items()
                       if s == stage and st != "done" and tid not in skip]
               for stage in stages}
    in_flight: dict[str, set[str]] = {stage: set() for stage in stages}
    # longest first: what bounds the makespan starts first (the planner assumes the same order)
    lengths = {t.id: t.length for t in run.targets}
    for stage in stages:
        pending[stage] = longest_first(pending[stage], lengths)
    streams = bool(getattr(executor, "streams", False))
    reporter.start(run, status)
    for (stage, tid), st in status.items():
        if tid in skip and st != "done":   # refused before any work (e.g. too large here)
            status[(stage, tid)] = Board.INVALID
            reporter.update(stage, tid, Board.INVALID, skip[tid])

    def readiness(stage: str, tid: str) -> str:
        """"ready", "wait" (dependency still to run) or "blocked" (it will not finish)."""
        dep = depends_on(stage)
        if dep is None:
            return "ready"
        if dep not in stages:
            return "ready" if run.unit_status(dep, tid) == "done" else "blocked"
        if status[(dep, tid)] == "done":
            return "ready"
        return "wait" if tid in in_flight[dep] or tid in pending[dep] else "blocked"

    def finish(event: UnitEvent) -> None:
        in_flight[event.stage].discard(event.target)
        record = run.record(event.stage, event.target)
        final, detail = Board.DONE, event.detail
        dep = depends_on(event.stage)
        if record is None and dep in stages and status[(dep, event.target)] != "done":
            final, detail = Board.BLOCKED, f"{dep} did not finish"   # a streaming worker skipped it
        elif record is None or not record.done:
            final = Board.FAILED
            detail = (record.error if record else None) or detail or "no outputs were recorded"
        status[(event.stage, event.target)] = final
        reporter.update(event.stage, event.target, final, detail)

    try:
        while True:
            for stage in stages:
                ready, waiting = [], []
                for tid in pending[stage]:
                    state = readiness(stage, tid)
                    if state == "wait" and streams and tid in in_flight[depends_on(stage)]:
                        state = "ready"   # a streaming worker takes it once its input is in
                    if state == "blocked":
                        status[(stage, tid)] = Board.BLOCKED
                        reporter.update(stage, tid, Board.BLOCKED,
                                        f"{depends_on(stage)} did not finish")
                    else:
                        (ready if state == "ready" else waiting).append(tid)
                room = executor.capacity(stage, run) - len(in_flight[stage])
                batch = ready[:max(room, 0)]
                if batch:
                    executor.launch(run, stage, batch)
                    in_flight[stage].update(batch)
                    for tid in batch:
                        reporter.update(stage, tid, Board.QUEUED)
                pending[stage] = ready[len(batch):] + waiting
            ended = False
            for event in executor.poll():
                if event.state in (Event.RUNNING, Event.WAITING):
                    reporter.update(event.stage, event.target, event.state, event.detail)
                else:
                    finish(event)
                    ended = True
            if not any(in_flight.values()) and not any(pending.values()):
                break
            if not ended:   # a unit that ended frees room: launch its successor at once
                executor.wait(poll_interval)
    except KeyboardInterrupt:
        executor.cancel()
        reporter.close(interrupted=True)
        raise
    finally:
        executor.close()
    reporter.close()
    return status
