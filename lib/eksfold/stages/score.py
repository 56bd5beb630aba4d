"""The optional ``score`` stage: accuracy of the predicted model against its reference structure.

Enabled when the run has reference structures (``ScoreConfig.references``: a folder of
``<pdb>.<chain>.pdb``, set by the pipeline from ``$EKSFOLD_REFERENCES`` or a ``structures/``
folder beside the input FASTA). Workers score each prediction once, in parallel, locally or
in Pods; the summary table only joins the unit records. A target without a reference is done
with empty scores (nothing to compare); a reference that cannot be read fails the unit with
the reason, and the rest of the run goes on.

Metrics: :data:`eksfold.metrics.ACCURACY_COLUMNS` (``tm_score``, ``gdt_ts``, ``lddt_ca``,
``rmsd``, ``n_aligned``, ``seq_identity``) and ``reference`` (the file scored against).

A complex target (``Target.complex``, issue 24) is scored against ``<references>/<target
id>.cif`` (or ``.pdb``) with DockQ (:mod:`eksfold.complex_scores`): ``dockq`` (the mean over
the reference's interfaces), ``dockq_min``, ``ligand_rmsd`` (after superposing the receptor's
pocket) and every interface in ``interfaces``.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import TargetError
from ..metrics import ACCURACY_COLUMNS
from ..targets import Target
from .base import Resources, Stage


class ScoreStage(Stage):
    name = "score"
    title = "scoring"
    depends_on = "infer"
    pool = "cpu"
    optional = True
    outputs = ("scores.json",)
    # complexes' DockQ figures first: the single-chain accuracy columns still close the table
    summary_columns = {"dockq": "dockq", "dockq_min": "dockq_min", "ligand_rmsd": "ligand_rmsd",
                       **{c: c for c in ACCURACY_COLUMNS}}
    # the accuracy columns close the table, as they did before scoring was a stage
    status_column = False
    summary_at_end = True
    fixed_cost_s = 2.0   # imports (gemmi, Biopython, tmtools)

    @classmethod
    def enabled(cls, config) -> bool:
        return bool(config.score.references)

    def predicted_seconds(self, length: int) -> float:
        return 0.2 + 0.002 * length   # TM-score search and lDDT on Calpha atoms

    def resources(self, length: int) -> Resources:
        return Resources("cpu", cpu=1, memory_gb=2)

    def reference(self, target: Target) -> Path | None:
        from ..data.references import reference_path

        if target.complex is not None and self.config.score.references:
            folder = Path(self.config.score.references)
            return next((folder / f"{target.id}{ext}" for ext in (".cif", ".pdb")
                         if (folder / f"{target.id}{ext}").exists()), None)
        if not (target.pdb_id and target.chain and self.config.score.references):
            return None
        path = reference_path(self.config.score.references, target.pdb_id, target.chain)
        return path if path.exists() else None

    def run_unit(self, target: Target, inputs: Path | None, out: Path) -> dict:
        from ..metrics import compare_structures

        if target.complex is not None:
            return self._complex(target, inputs, out)

        model = Path(inputs) / "unrelaxed.pdb"
        if not model.is_file():
            raise TargetError(target.id, "scoring needs the infer stage's unrelaxed.pdb")
        folder = self.config.score.references
        if folder and not Path(folder).is_dir():   # e.g. a laptop path a Pod cannot see
            raise TargetError(target.id, f"references folder {folder} is not visible to this "
                                         "worker (put it on the shared volume)")
        reference = self.reference(target)
        scores = {c: None for c in ACCURACY_COLUMNS}
        if reference is not None:
            try:
                scores.update(compare_structures(model.read_text(), reference))
            except Exception as exc:   # a malformed reference fails this unit, not the run
                raise TargetError(target.id, f"reference {reference.name} not scored: "
                                             f"{type(exc).__name__}: {exc}") from exc
        scores = {c: scores[c] for c in ACCURACY_COLUMNS}
        metrics = {**scores, "reference": str(reference) if reference else None}
        out.mkdir(parents=True, exist_ok=True)
        (out / "scores.json").write_text(json.dumps(metrics, indent=1) + "\n")
        return metrics

    def _complex(self, target: Target, inputs: Path | None, out: Path) -> dict:
        from ..complex_scores import score_complex

        model = Path(inputs) / "unrelaxed.cif"
        if not model.is_file():
            raise TargetError(target.id, "scoring a complex needs the infer stage's "
                                         "unrelaxed.cif")
        reference = self.reference(target)
        metrics = {c: None for c in ACCURACY_COLUMNS}
        metrics.update(dockq=None, dockq_min=None, ligand_rmsd=None, interfaces=[],
                       reference=str(reference) if reference else None)
        if reference is not None:
            try:
                metrics.update(score_complex(model, reference))
            except Exception as exc:   # a reference without interfaces fails this unit only
                raise TargetError(target.id, f"reference {reference.name} not scored: "
                                             f"{type(exc).__name__}: {exc}") from exc
        out.mkdir(parents=True, exist_ok=True)
        (out / "scores.json").write_text(json.dumps(metrics, indent=1, default=str) + "\n")
        return metrics
