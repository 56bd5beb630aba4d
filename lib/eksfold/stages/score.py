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

    def reference(self, target: Target) -> Path | str | None:
        """The target's reference: a path, or a URI when the references are on S3."""
        from ..data.references import reference_path

        folder = self.config.score.references
        if target.complex is not None and folder:
            if "://" in str(folder):   # complexes: local references only, for now
                return None
            folder = Path(folder)
            return next((folder / f"{target.id}{ext}" for ext in (".cif", ".pdb")
                         if (folder / f"{target.id}{ext}").exists()), None)
        if not (target.pdb_id and target.chain and folder):
            return None
        if "://" in folder:   # s3://bucket/prefix: read through the storage layer
            from ..storage import open_store

            name = reference_path(".", target.pdb_id, target.chain).name
            return f"{folder.rstrip('/')}/{name}" if open_store(folder).exists(name) else None
        path = reference_path(folder, target.pdb_id, target.chain)
        return path if path.exists() else None

    def run_unit(self, target: Target, inputs: Path | None, out: Path) -> dict:
        from ..metrics import compare_structures

        if target.complex is not None:
            return self._complex(target, inputs, out)

        model = Path(inputs) / "unrelaxed.pdb"
        if not model.is_file():
            raise TargetError(target.id, "scoring needs the infer stage's unrelaxed.pdb")
        folder = self.config.score.references
        if folder and "://" not in folder and not Path(folder).is_dir():   # a laptop path
            raise TargetError(target.id, f"references folder {folder} is not visible to this "
                                         "worker (put it on the shared volume)")
        reference = self.reference(target)
        scores = {c: None for c in ACCURACY_COLUMNS}
        if reference is not None:
            try:
                scores.update(compare_structures(model.read_text(), _reference_text(reference)))
            except Exception as exc:   # a malformed reference fails this unit, not the run
                name = reference.rsplit("/", 1)[-1] if isinstance(reference, str) else reference.name
                raise TargetError(target.id, f"reference {name} not scored: "
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


def _reference_text(reference: Path | str):
    """A local reference as its path; one on S3 as its text (through :mod:`eksfold.storage`)."""
    if isinstance(reference, str) and "://" in reference:
        from ..storage import open_store

        folder, name = reference.rsplit("/", 1)
        return open_store(folder).read_text(name)
    return reference
