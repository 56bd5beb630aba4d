"""Executors run work units; the driver here does everything they have in common.

An executor only knows how to start units and report what happened to them
(:meth:`Executor.launch`, :meth:`Executor.poll`, :meth:`Executor.cancel`). The driver
:func:`execute` plans the units (skipping done ones), respects the align -> infer dependency,
keeps each stage within the executor's capacity, takes the run store's ``metrics.json`` as the
authority on success, reports progress, and stops everything cleanly on Ctrl-C.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import ConfigError
from ..plugins import load_registered
from ..run import DEPENDS_ON, STAGES, Run

_EXECUTORS = {
    "local": ("eksfold.executors.local:LocalExecutor", ""),
    "kubernetes": ("eksfold.executors.kubernetes:KubernetesExecutor",
                   "the Kubernetes executor needs the kubernetes client: run `make setup`"),
}


@dataclass(frozen=True)
class UnitEvent:
    """Something happened to a unit: "running", "waiting" (not placed yet, e.g. no free GPU;
    ``detail`` says why), "finished" (exit 0) or "failed"."""

    stage: str
    target: str
    state: str
    detail: str | None = None


class Executor:
    """Base class; subclasses implement the four hooks."""

    name = "base"

    def capacity(self, stage: str) -> int:
        """How many units of ``stage`` may be in flight at once."""
        raise NotImplementedError

    def launch(self, run: Run, stage: str, target_ids: list[str]) -> None:
        raise NotImplementedError

    def poll(self) -> list[UnitEvent]:
        raise NotImplementedError

    def cancel(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (clients, files); called once after :func:`execute`."""


def register_executor(name: str, target: str, hint: str = "") -> None:
    _EXECUTORS[name] = (target, hint)


def get_executor(name: str, **options) -> Executor:
    """Instantiate the executor registered as ``name`` with ``options``."""
    if name not in _EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; choose one of {', '.join(_EXECUTORS)}")
    return load_registered(*_EXECUTORS[name])(**options)


def plan(run: Run, stages=STAGES, target_ids=None) -> dict[tuple[str, str], str]:
    """Current status of every unit: "done", "failed" or "missing"."""
    ids = target_ids or [t.id for t in run.targets]
    return {(stage, tid): run.unit_status(stage, tid) for tid in ids for stage in stages}


def execute(run: Run, executor: Executor, stages=STAGES, reporter=None, target_ids=None,
            poll_interval: float = 0.5) -> dict[tuple[str, str], str]:
    """Run every unit of ``stages`` that is not done; returns the final status of each unit.

    Final statuses: "done", "failed" (with the reason in the unit's metrics.json or in
    ``details``), or "blocked" (its dependency failed).
    """
    from ..progress import make_reporter

    reporter = reporter or make_reporter("auto")
    status = plan(run, stages, target_ids)
    pending = {stage: [tid for (s, tid), st in status.items() if s == stage and st != "done"]
               for stage in stages}
    in_flight: dict[str, set[str]] = {stage: set() for stage in stages}
    reporter.start(run, status)

    def readiness(stage: str, tid: str) -> str:
        """"ready", "wait" (dependency still to run) or "blocked" (it will not finish)."""
        dep = DEPENDS_ON.get(stage)
        if dep is None:
            return "ready"
        if dep not in stages:
            return "ready" if run.unit_status(dep, tid) == "done" else "blocked"
        if status[(dep, tid)] == "done":
            return "ready"
        return "wait" if tid in in_flight[dep] or tid in pending[dep] else "blocked"

    def finish(event: UnitEvent) -> None:
        in_flight[event.stage].discard(event.target)
        final = run.unit_status(event.stage, event.target)
        detail = event.detail
        if final != "done":
            metrics = run.unit_metrics(event.stage, event.target) or {}
            detail = metrics.get("error") or detail or "no outputs were recorded"
            final = "failed"
        status[(event.stage, event.target)] = final
        reporter.update(event.stage, event.target, final, detail)

    try:
        while True:
            for stage in stages:
                ready, waiting = [], []
                for tid in pending[stage]:
                    state = readiness(stage, tid)
                    if state == "blocked":
                        status[(stage, tid)] = "blocked"
                        reporter.update(stage, tid, "blocked", f"{DEPENDS_ON[stage]} did not finish")
                    else:
                        (ready if state == "ready" else waiting).append(tid)
                room = executor.capacity(stage) - len(in_flight[stage])
                batch = ready[:max(room, 0)]
                if batch:
                    executor.launch(run, stage, batch)
                    in_flight[stage].update(batch)
                    for tid in batch:
                        reporter.update(stage, tid, "queued")
                pending[stage] = ready[len(batch):] + waiting
            for event in executor.poll():
                if event.state in ("running", "waiting"):
                    reporter.update(event.stage, event.target, event.state, event.detail)
                else:
                    finish(event)
            if not any(in_flight.values()) and not any(pending.values()):
                break
            time.sleep(poll_interval)
    except KeyboardInterrupt:
        executor.cancel()
        reporter.close(interrupted=True)
        raise
    finally:
        executor.close()
    reporter.close()
    return status
