"""Memory as a scheduling input: a unit starts only when its predicted peak fits beside what is
already running on the machine. One rule (:func:`admit_choice`, :func:`fits_beside`) for the local
executor (:class:`Admission`) and the planner's simulation of it (:func:`hold_until_fits`).

* A unit alone on the machine always starts: whether it fits at all is the chooser's and the
  up-front refusal's business (:func:`eksfold.memory.chooser.refuse_unfit`), and holding it
  back would wait forever.
* Beside running units, it starts when the sum of their predicted peaks and its own, with the
  chooser's margin, fits the memory the workers may use: ``MemAvailable`` now plus what the
  running units' and the chosen worker's processes hold now (read per decision, not once).
* A process's holdings count its whole process tree: a family that folds in a child process
  (OpenFold3's runner, ``ModelBackend.folds_in_child``) holds most of a unit's memory there.
  Its cost model predicts the child's peak, so such a unit reserves that peak plus the
  worker's own resident memory (which the child's prediction does not include).
* Its predicted peak is the one of the setting the chooser picks for the memory left beside
  the running units' reservations; the worker is granted exactly that budget
  (``admission/<stage>/<target>.json`` in the run root, read by the inference stage's chooser),
  so the worker cannot pick a faster, larger setting than the one the executor reserved.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MARGIN = 0.15
GRANTS = "admission"


def fits_beside(predicted_mb: float, running_mb, capacity_mb: float,
                margin: float = MARGIN) -> bool:
    """Whether a unit predicted to peak at ``predicted_mb`` may start beside units predicted
    to peak at ``running_mb`` (an iterable) within ``capacity_mb``."""
    running = list(running_mb)
    return not running or (sum(running) + predicted_mb) * (1 + margin) <= capacity_mb


def admit_choice(length: int, model, capacity_mb: float, reserved_mb, margin: float = MARGIN,
                 own_mb: float = 0.0):
    """The chooser's setting for the memory left beside the running units' reservations
    (``reserved_mb``), or None when no setting fits beside them (:func:`fits_beside`, with the
    chooser's margin, widened past the sweep). A unit alone always gets a choice. ``own_mb``:
    memory the unit holds outside what ``model`` predicts (a child-folding worker's own)."""
    from .chooser import choose

    reserved = list(reserved_mb)
    left = capacity_mb / (1 + margin) - sum(reserved) - own_mb
    choice = choose(length, left * (1 + margin), model, margin)
    return choice if (choice.fits or not reserved) else None


def hold_until_fits(start: float, length: int, model, running, capacity_mb: float,
                    margin: float = MARGIN):
    """(earliest time from ``start`` at which the unit is admitted, its choice) beside
    ``running`` ([(start, end, predicted_mb)] of units already scheduled): the planner's use
    of :func:`admit_choice`."""
    t = start
    while True:
        now = [(s, e, p) for s, e, p in running if s <= t < e]
        choice = admit_choice(length, model, capacity_mb, (p for _, _, p in now), margin)
        if choice is not None:
            return t, choice
        t = min(e for _, e, _ in now)


def grant_path(stage: str, target_id: str) -> str:
    return f"{GRANTS}/{stage}/{target_id}.json"


def read_grant(store, stage: str, target_id: str) -> float | None:
    """The memory budget (MB) the executor granted this unit, or None (no admission)."""
    try:
        return float(store.read_json(grant_path(stage, target_id))["budget_mb"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise OSError("no MemAvailable in /proc/meminfo")


def _pid_rss_mb(pid: int | None) -> float:
    """Resident memory of ``pid``'s whole process tree, MB (the worker and any child folding
    for it: OpenFold3's runner). Shared pages are counted per process: an over-count, which
    errs towards holding a unit back."""
    from .usage import status_mb, tree_pids

    return sum(status_mb("VmRSS", p) or 0.0 for p in tree_pids(pid)) if pid else 0.0


def _own_rss_mb(pid: int | None) -> float:
    """Resident memory of ``pid`` alone (not its children), MB."""
    from .usage import status_mb

    return (status_mb("VmRSS", pid) or 0.0) if pid else 0.0


@dataclass
class Reservation:
    target: str
    length: int
    setting: str
    predicted_mb: float
    pid: int | None


class Admission:
    """The local executor's memory bookkeeping for one stage (inference) on this machine.

    ``admit`` before assigning a unit to a worker, ``done`` when the unit ends (finished or
    failed). ``available`` reads the machine's free memory (default ``MemAvailable``).
    """

    def __init__(self, model, stage: str = "infer", margin: float = MARGIN,
                 available=_mem_available_mb, rss=_pid_rss_mb, folds_in_child: bool = False,
                 own_rss=_own_rss_mb):
        self.model, self.stage, self.margin = model, stage, margin
        self.available, self.rss, self.own_rss = available, rss, own_rss
        self.folds_in_child = folds_in_child
        self.running: dict[str, Reservation] = {}

    @classmethod
    def for_run(cls, run, stage: str = "infer") -> "Admission | None":
        """For a run with automatic settings and a CPU cost model for its preset, else None
        (a named setting or a GPU: the worker's own device memory is not shared here)."""
        from ..models import get_backend
        from .chooser import usable_model

        config = run.config.infer
        gpu = config.device.startswith("cuda") or (config.device == "auto"
                                                   and Path("/dev/nvidiactl").exists())
        if stage != "infer" or config.settings != "auto" or gpu:
            return None
        model, _ = usable_model("cpu", config.preset)
        if model is None:
            return None
        return cls(model, stage, folds_in_child=get_backend(config.preset).folds_in_child)

    def capacity_mb(self, pid: int | None = None) -> float:
        """What the running units and the next one may use: free memory now plus what their
        processes (and the chosen worker, ``pid``) hold now."""
        pids = {r.pid for r in self.running.values()} | {pid}
        return self.available() + sum(self.rss(p) for p in pids if p)

    def admit(self, store, target_id: str, length: int, pid: int | None = None) -> bool:
        """Reserve memory for the unit and grant the worker its budget; False: not now."""
        capacity = self.capacity_mb(pid)
        reserved = [r.predicted_mb for r in self.running.values()]
        own = self.own_rss(pid) if self.folds_in_child else 0.0
        choice = admit_choice(length, self.model, capacity, reserved, self.margin, own)
        if choice is None:
            return False
        self.running[target_id] = Reservation(target_id, length, choice.setting,
                                              choice.predicted_mb + own, pid)
        if not reserved:   # alone: the worker reads its own budget
            store.delete(grant_path(self.stage, target_id))
        else:
            store.write_json(grant_path(self.stage, target_id),
                             {"budget_mb": round(choice.budget_mb, 1), "capacity_mb": round(capacity, 1),
                              "beside": sorted(set(self.running) - {target_id})})
        return True

    def done(self, store, target_id: str) -> None:
        if self.running.pop(target_id, None) is not None:
            store.delete(grant_path(self.stage, target_id))
