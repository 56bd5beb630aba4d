"""The optional ``relax`` stage: Amber relaxation (OpenFold's, with OpenMM) of the predicted model.

Runs only when the run asks for it (``--relax``; on by default for trained weights, off for
untrained ones, whose degenerate structures cannot be minimised). Each unit has a wall-time
limit and fails with a recorded reason instead of hanging (:mod:`eksfold.relaxation`).

Metrics: ``relax_s``, ``attempts``, ``energy_before``/``energy_after`` (kcal/mol),
``violations_before``/``violations_after``, ``ca_rmsd_moved`` (Å), ``platform``.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import TargetError
from ..targets import Target
from .base import Resources, Stage


class RelaxStage(Stage):
    name = "relax"
    title = "relaxation"
    depends_on = "infer"
    pool = "cpu"
    optional = True
    outputs = ("relaxed.pdb", "relaxed.cif")
    summary_columns = {"relax_s": "relax_s", "energy_before": "energy_before",
                       "energy_after": "energy_after", "violations_after": "violations_after",
                       "ca_rmsd_moved": "ca_rmsd_moved"}

    @classmethod
    def enabled(cls, config) -> bool:
        return bool(config.relax.enabled)

    def resources(self, length: int) -> Resources:
        return Resources("cpu", cpu=2, memory_gb=4 if length <= 1000 else 8)

    def open(self) -> None:
        from .. import relaxation

        cfg = self.config.relax
        self.relaxation = relaxation
        self.settings = relaxation.RelaxSettings(
            stiffness=cfg.stiffness, tolerance=cfg.tolerance, max_iterations=cfg.max_iterations,
            timeout_s=cfg.timeout_s)

    def run_unit(self, target: Target, inputs: Path | None, out: Path) -> dict:
        from ..structures import to_mmcif

        model = Path(inputs) / "unrelaxed.pdb"
        if not model.is_file():
            raise TargetError(target.id, "relaxation needs the infer stage's unrelaxed.pdb")
        try:
            result = self.relaxation.relax_structure(model.read_text(), self.settings, target.id)
        except self.relaxation.RelaxError as exc:
            raise TargetError(target.id, str(exc.reason if hasattr(exc, "reason") else exc)) from exc
        out.mkdir(parents=True, exist_ok=True)
        (out / "relaxed.pdb").write_text(result.relaxed_pdb)
        (out / "relaxed.cif").write_text(to_mmcif(result.relaxed_pdb))
        return dict(result.metrics)
