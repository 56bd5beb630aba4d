"""One call from a FASTA file to a finished run: :func:`run_pipeline`."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from .config import (AlignConfig, DatabaseConfig, InferConfig, RelaxConfig, RunConfig,
                     default_databases)
from .contracts import DEFAULT_PRESET, DEFAULT_WEIGHTS
from .executors import execute, get_executor
from .presets import get_preset
from .results import write_summary
from .run import Run
from .targets import Target, read_fasta, select
from .weights import is_untrained

log = logging.getLogger(__name__)


def load_targets_for_run(source, ids=None, limit=None, shortest=False, max_length=None):
    """Targets from a FASTA path or a list of Targets; returns (targets, rejected, inputs)."""
    rejected: list = []
    if isinstance(source, (str, Path)):
        targets = read_fasta(source, errors=rejected)
        data = Path(source).read_bytes()
        # Absolute: analysis run from elsewhere finds the target set (and its references) again.
        inputs = {"fasta": str(Path(source).resolve()), "fasta_sha256": hashlib.sha256(data).hexdigest()}
    else:
        targets, inputs = list(source), {"fasta": None}
    targets = select(targets, ids=ids, limit=limit, shortest=shortest, max_length=max_length)
    inputs.update(selection={"ids": ids, "limit": limit, "shortest": shortest,
                             "max_length": max_length})
    return targets, rejected, inputs


def run_pipeline(source: str | Path | list[Target], root: str, *, preset: str = DEFAULT_PRESET,
                 weights: str = DEFAULT_WEIGHTS, databases: DatabaseConfig | None = None,
                 align: AlignConfig | None = None, relax: bool | RelaxConfig | None = None,
                 device: str = "auto", seed: int = 0, settings: str = "auto",
                 executor: str = "local", executor_options: dict | None = None,
                 stages=None, ids=None, limit: int | None = None, shortest: bool = False,
                 max_length: int | None = None, reporter=None) -> Run:
    """Fold the targets of ``source`` into the run root ``root`` and write its summary table.

    Rerunning with the same arguments resumes: finished units are skipped, failed and missing
    ones are run again. ``relax`` adds the Amber relaxation stage (default: on for trained
    weights, off for untrained ones, whose structures cannot be minimised). Returns the :class:`~eksfold.run.Run`; read results with
    :func:`eksfold.results.load_summary`.
    """
    get_preset(preset)  # fail fast on a typo, before any work
    targets, rejected, inputs = load_targets_for_run(source, ids, limit, shortest, max_length)
    for problem in rejected:
        log.error("skipping invalid target: %s", problem)
    if not isinstance(relax, RelaxConfig):
        relax = RelaxConfig(enabled=not is_untrained(weights) if relax is None else bool(relax))
    config = RunConfig(databases=databases or default_databases(),
                       align=align or AlignConfig(),
                       infer=InferConfig(preset=preset, weights=weights, device=device, seed=seed,
                                         settings=settings),
                       relax=relax)
    run = Run.create(root, targets, config, inputs=inputs, rejected=rejected)
    if is_untrained(config.infer.weights):
        log.warning("weights=%s: UNTRAINED random weights - structures and pLDDT are meaningless; "
                    "runtime and memory figures are real", config.infer.weights)
    runner = get_executor(executor, **(executor_options or {}))
    try:
        execute(run, runner, stages=stages, reporter=reporter)
    finally:
        write_summary(run)  # also after Ctrl-C: the table shows what finished
    return run
