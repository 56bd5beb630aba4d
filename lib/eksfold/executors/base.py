"""The executor interface: where units run. One class per back end, registered by name.

An executor starts units and reports what happened to them (:meth:`Executor.launch`,
:meth:`Executor.poll`, :meth:`Executor.cancel`); the driver (:mod:`.driver`) does everything
back ends have in common. Both back ends answer the same administrative verbs about a run
(:meth:`Executor.status`, :meth:`Executor.unit_failure`, :meth:`Executor.cancel_run`,
:meth:`Executor.resubmit`); the base class gives the answers the run store alone allows.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import ConfigError
from ..plugins import load_registered
from ..errors import UnitError
from ..run import Run

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

    def capacity(self, stage: str, run: Run | None = None) -> int:
        """How many units of ``stage`` (of ``run``) may be in flight at once."""
        raise NotImplementedError

    def launch(self, run: Run, stage: str, target_ids: list[str]) -> None:
        raise NotImplementedError

    def poll(self) -> list[UnitEvent]:
        raise NotImplementedError

    def wait(self, timeout: float) -> None:
        """Block until there may be news for :meth:`poll`, at most ``timeout`` seconds.
        Back ends that are told of events (a worker's pipe) return early."""
        time.sleep(timeout)

    def cancel(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (clients, files); called once after :func:`execute`."""

    # -- administration of a run (the same verbs for every back end) ------------------
    def status(self, run: Run, stages=None) -> dict[tuple[str, str], str]:
        """Every unit's state from the store: "done", "failed" or "missing"."""
        from .driver import plan
        return plan(run, stages)

    def unit_failure(self, run: Run, stage: str, target_id: str) -> UnitError | None:
        """Why a unit failed (its record's error and exit code, the log tail); None if done."""
        record = run.record(stage, target_id)
        if record is not None and record.done:
            return None
        reason = record.error if record else "not run yet"
        return UnitError(stage, target_id, record.exit_code if record else None,
                         run.read_log(stage, target_id), reason)

    def cancel_run(self, run: Run) -> list[str]:
        """Stop this executor's units of ``run``; returns what was stopped."""
        self.cancel()
        return []

    def resubmit(self, run: Run, stages=None, reporter=None, target_ids=None) -> dict:
        """Run again only the units that are failed or missing (done ones are skipped)."""
        from ..results import write_summary
        from .driver import execute
        try:
            return execute(run, self, stages=stages, reporter=reporter, target_ids=target_ids)
        finally:
            write_summary(run)


def register_executor(name: str, target: str, hint: str = "") -> None:
    _EXECUTORS[name] = (target, hint)


def get_executor(name: str, **options) -> Executor:
    """Instantiate the executor registered as ``name`` with ``options``."""
    if name not in _EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; choose one of {', '.join(_EXECUTORS)}")
    return load_registered(*_EXECUTORS[name])(**options)


