"""The optional ``relax`` stage: Amber relaxation (OpenFold's, with OpenMM) of the predicted model.

Runs only when the run asks for it (``--relax``; on by default for trained weights, off for
untrained ones, whose degenerate structures cannot be minimised). Each unit has a wall-time
limit and fails with a recorded reason instead of hanging (:mod:`eksfold.relaxation`).

Metrics: ``relax_s``, ``attempts``, ``energy_before``/``energy_after`` (kcal/mol),
``violations_before``/``violations_after``, ``ca_rmsd_moved`` (Å), ``platform``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import TargetError
from ..targets import Target
from .base import Resources, Stage

log = logging.getLogger(__name__)


class RelaxStage(Stage):
    name = "relax"
    title = "relaxation"
    depends_on = "infer"
    pool = "cpu"
    optional = True
    outputs = ("relaxed.pdb", "relaxed.cif")
    summary_columns = {"relax_s": "relax_s", "energy_before": "energy_before",
                       "energy_after": "energy_after", "violations_before": "violations_before",
                       "violations_after": "violations_after", "ca_rmsd_moved": "ca_rmsd_moved",
                       "relax_platform": "platform"}
    fixed_cost_s = 8.0   # imports, OpenFold's clean-up and the energies before/after

    def predicted_seconds(self, length: int) -> float:
        # 2 CPU cores (profiles/cpu-2core/relax.csv): ~2.5 s at 50 residues, ~L^1.6
        return 2.5 * (length / 50) ** 1.6

    @classmethod
    def enabled(cls, config) -> bool:
        return bool(config.relax.enabled)

    def resources(self, length: int) -> Resources:
        return Resources("cpu", cpu=2, memory_gb=4 if length <= 1000 else 8)

    def open(self) -> None:
        from .. import relaxation

        cfg = self.config.relax
        self.relaxation = relaxation
        # OpenMM would start one thread per node core and thrash inside a 2-CPU Pod limit
        threads = int(os.environ.get("EKSFOLD_THREADS") or self.resources(0).cpu)
        self.settings = relaxation.RelaxSettings(
            stiffness=cfg.stiffness, tolerance=cfg.tolerance, max_iterations=cfg.max_iterations,
            max_outer_iterations=cfg.max_outer_iterations, max_attempts=cfg.max_attempts,
            platform=cfg.platform, threads=threads, timeout_s=cfg.timeout_s)

    def run_unit(self, target: Target, inputs: Path | None, out: Path) -> dict:
        from ..structure_io import to_mmcif

        model = Path(inputs) / "unrelaxed.pdb"
        if not model.is_file():
            raise TargetError(target.id, "relaxation needs the infer stage's unrelaxed.pdb")
        try:
            result = self.relaxation.relax_structure(model.read_text(), self.settings, target.id)
        except self.relaxation.RelaxError as exc:
            # deterministic for this structure and settings: recorded, not retried
            if exc.log_tail:
                log.error("relaxation of %s, last lines:\n%s", target.id, exc.log_tail)
            raise TargetError(target.id, f"relaxation failed ({exc.kind}): {exc.reason}") from exc
        out.mkdir(parents=True, exist_ok=True)
        (out / "relaxed.pdb").write_text(result.relaxed_pdb)
        (out / "relaxed.cif").write_text(to_mmcif(result.relaxed_pdb, name=target.id))
        return dict(result.metrics)
