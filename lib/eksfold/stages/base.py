"""The stage contract: one class per stage, everything about that stage in one place.

A stage says what it depends on, what it needs from a machine, how to run one target (after
loading its tools or model once per worker: :meth:`Stage.open`), which files it writes and
which of its measurements go into the summary table. The worker (:mod:`eksfold.worker`) drives
the lifecycle; executors, Job sizing and the planner read the class attributes and
:meth:`Stage.resources`.

Lifecycle in a worker process::

    stage = get_stage("infer")(run)      # cheap: no tools or models yet
    stage.open()                         # once: load model / check databases
    for target in shard:                 # each one its own unit, committed as it finishes
        metrics = stage.run_unit(target, inputs_dir, out_dir)
    stage.close()
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..targets import Target


@dataclass(frozen=True)
class Resources:
    """What one unit of a stage needs (a hint for executors, Job sizing and the planner)."""

    pool: str                   # "cpu" | "gpu"
    cpu: float
    memory_gb: float
    gpu: int = 0


class Stage:
    """Base class. Subclasses set the class attributes and implement :meth:`run_unit`."""

    name: str = ""
    title: str = ""                   # for messages: "alignment", "inference", ...
    depends_on: str | None = None     # the stage whose outputs this one reads
    pool: str = "cpu"
    optional: bool = False            # runs only when the run's config asks for it
    runs_model: bool = False          # loads the run's model back end (its worker image)
    outputs: tuple[str, ...] = ()     # files every successful unit writes (others may be added)
    # summary-table column -> key in the unit record's metrics (or a record field: "wall_s", ...)
    summary_columns: dict[str, str] = {}
    status_column: bool = True        # a "<stage>_status" column in the summary table
    summary_at_end: bool = False      # its columns after "error" (score: as before it was a stage)

    def __init__(self, run):
        self.run = run
        self.config = run.config

    @classmethod
    def enabled(cls, config) -> bool:
        """Whether a run with ``config`` includes this stage (optional stages ask it)."""
        return True

    def resources(self, length: int) -> Resources:
        """What a unit for a target of ``length`` residues needs."""
        return Resources(self.pool, cpu=2, memory_gb=4)

    # seconds a worker pays once (interpreter, imports, tools or model); used to size shards
    fixed_cost_s: float = 5.0

    def predicted_seconds(self, length: int) -> float:
        """Predicted seconds of one unit (shard packing, the planner); stages refine it."""
        return 1.0 + 0.001 * length

    def open(self) -> None:
        """Load what every unit of this worker shares (tools checked, model built)."""

    @classmethod
    def batch_units(cls, config) -> int:
        """How many units a warm worker should be handed at once (one ``prepare_batch``):
        more than 1 only where the stage's tool gains from searching many at once."""
        return 1

    def prepare_batch(self, targets: list[Target], scratch: Path) -> None:
        """Work on a whole shard at once before its units run (e.g. one MMseqs2 search for
        every query); each unit still commits on its own. Default: nothing."""

    def run_unit(self, target: Target, inputs: Path | None, out: Path) -> dict:
        """Compute one target's outputs into ``out``; return the stage's metrics.

        ``inputs`` is a local copy of the dependency's output folder (None without one).
        Raise :class:`~eksfold.errors.TargetError` for bad input (never retried).
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release what :meth:`open` loaded."""

    def summary(self, record) -> dict:
        """This stage's columns of the summary table for one unit record (None: no record)."""
        if record is None:
            return {col: None for col in self.summary_columns}
        fields = record.to_dict()
        return {col: record.metrics.get(key, fields.get(key))
                for col, key in self.summary_columns.items()}
